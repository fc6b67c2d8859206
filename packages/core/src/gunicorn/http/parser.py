"""The request side of an HTTP/1.1 server connection, as a sans-IO state machine.

::

    p = RequestParser(options, forwarded_trusted=..., proxy_trusted=..., is_ssl=...)
    p.feed(data)               # b"" marks EOF
    event = p.next_event()     # Request | Data | EndOfMessage | NEED_DATA

States (anything not listed is a bug and the parser turns terminal)::

    PROXY --header or none--> HEAD --Request--> BODY --EndOfMessage--> HEAD ...
      any state --RequestError--> ERROR (every later call re-raises the same error)

The head is located with one ``bytes.find`` for the blank line. While it is incomplete, the
limits and the CRLF line endings are checked on the lines seen so far, resuming where the
previous feed stopped, so feeding byte by byte stays linear, an oversized head is refused before
it is buffered whole and a bare LF is refused when it arrives. Complete heads are checked in a
fixed order (request-line length and syntax, field count and lengths, then field syntax), which
gives the same error whatever the feed pattern.
"""

from __future__ import annotations

from enum import Enum

from gunicorn.http import errors, proxy
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.buffered import BufferedParser
from gunicorn.http.events import NEED_DATA, EndOfMessage, Event, ProxyInfo, Request
from gunicorn.http.fields import parse_field_block
from gunicorn.http.message import build_request, parse_request_line
from gunicorn.http.options import ParserOptions


class _State(Enum):
    PROXY = 1
    HEAD = 2
    BODY = 3
    ERROR = 4


class RequestParser(BufferedParser):
    """Parse the requests of one connection, pipelined or not.

    Arguments:
        options: the limits and leniency switches (:class:`ParserOptions`).
        forwarded_trusted: the peer is in ``forwarded_allow_ips``; enables
            ``secure_scheme_headers`` and keeps ``forwarder_headers`` with underscores.
        proxy_trusted: the peer is in ``proxy_allow_ips``; a PROXY header from anyone else is
            refused with :class:`ForbiddenProxyRequest`.
        is_ssl: the connection is TLS (``Request.scheme`` is then ``"https"`` unless a trusted
            scheme header says otherwise).

    After ``EndOfMessage`` the next call parses the next pipelined request. The parser does not
    stop by itself after an ``Upgrade`` or CONNECT request: a driver that switches protocols
    stops calling ``next_event`` and takes :meth:`trailing_data`.
    """

    __slots__ = ("_options", "_forwarded_trusted", "_proxy_trusted", "_is_ssl", "_state",
                 "_reader", "_head_scan", "_line_start", "_line_scan", "_fields",
                 "_request_line_done")

    def __init__(self, options: ParserOptions, *, forwarded_trusted: bool = False,
                 proxy_trusted: bool = False, is_ssl: bool = False) -> None:
        self._buf = bytearray()
        self._eof = False
        self._proxy: ProxyInfo | None = None
        self._error: errors.RequestError | None = None
        self._options = options
        self._forwarded_trusted = forwarded_trusted
        self._proxy_trusted = proxy_trusted
        self._is_ssl = is_ssl
        self._state = _State.HEAD if options.proxy_protocol == "off" else _State.PROXY
        self._reader: LengthReader | ChunkedReader | None = None
        self._reset_head_scan()

    def _reset_head_scan(self) -> None:
        self._head_scan = 0
        self._line_start = 0
        self._line_scan = 0
        self._fields = 0
        self._request_line_done = False

    # -- public API -----------------------------------------------------------------------------

    # proxy_info (the PROXY header, set for every request after it was read), at_eof, feed and
    # trailing_data come from BufferedParser.

    def next_event(self, max_data: int | None = None) -> Event:
        """The next event, or ``NEED_DATA``. ``max_data`` bounds the size of one ``Data``.

        Raises a :class:`~gunicorn.http.errors.RequestError` subclass for a bad request; the
        parser is terminal afterwards. :class:`IncompleteRequest` with ``received == 0`` is an
        idle connection closed by the client, which needs no response.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_event(max_data)
        except errors.RequestError as exc:
            self._error = exc
            self._state = _State.ERROR
            raise

    # -- states ---------------------------------------------------------------------------------

    def _next_event(self, max_data: int | None) -> Event:
        state = self._state
        if state is _State.BODY:
            assert self._reader is not None
            event = self._reader.next_event(self._buf, self._eof, max_data)
            if type(event) is EndOfMessage:
                self._state = _State.HEAD
                self._reader = None
            return event
        if state is _State.HEAD:
            return self._next_head()
        if state is _State.PROXY:
            if not self._read_proxy_header():
                return NEED_DATA
            return self._next_head()
        raise RuntimeError(f"parser in unexpected state {state}")

    def _read_proxy_header(self) -> bool:
        buf = self._buf
        version = proxy.detect(buf, self._options.proxy_protocol)
        if version is None:
            if not self._eof:
                return False
            version = 0
        if version:
            if not self._proxy_trusted:
                raise errors.ForbiddenProxyRequest("PROXY header from an untrusted peer")
            parsed = proxy.parse(buf, version)
            if parsed is None:
                if self._eof:
                    raise errors.IncompleteRequest(len(buf), "connection closed inside a PROXY header")
                return False
            consumed, self._proxy = parsed
            del buf[:consumed]
        self._state = _State.HEAD
        return True

    def _next_head(self) -> Event:
        buf = self._buf
        if self._head_scan == 0:
            # RFC 9112 §2.2: ignore empty lines before a request line (old clients send a CRLF
            # after a POST body).
            while buf[:2] == b"\r\n":
                del buf[:2]
        end = buf.find(b"\r\n\r\n", self._head_scan)
        if end == -1:
            if buf != b"\r":
                self._check_partial_head(buf)
            self._head_scan = max(0, len(buf) - 3)
            if self._eof:
                raise errors.IncompleteRequest(0 if not buf or buf == b"\r" else len(buf))
            return NEED_DATA
        head = bytes(buf[:end])
        del buf[:end + 4]
        self._reset_head_scan()
        try:
            request = self._parse_head(head)
        except errors.RequestError:
            if head.count(b"\n") != head.count(b"\r\n"):
                # A bare LF makes every head fail somewhere; report what a byte-by-byte feed
                # would have met first in stream order (a limit, or the bare LF itself).
                self._check_partial_head(head + b"\r\n")
            raise
        if request.chunked:
            self._reader = ChunkedReader(self._options)
        else:
            self._reader = LengthReader(request.content_length or 0)
        self._state = _State.BODY
        return request

    def _parse_head(self, head: bytes) -> Request:
        line_end = head.find(b"\r\n")
        if line_end == -1:
            request_line, block = head, b""
        else:
            request_line, block = head[:line_end], head[line_end + 2:]
        options = self._options
        limit = options.limit_request_line
        if limit and len(request_line) > limit:
            raise errors.LimitRequestLine(f"request line longer than {limit} bytes")
        line = parse_request_line(request_line, options)
        if block and block.count(b"\r\n") >= options.limit_request_fields:
            raise errors.LimitRequestHeaders("too many header fields")
        size = options.field_line_limit
        # Splitting is only needed when the block could hold a line over the limit.
        if len(block) > size and max(map(len, block.split(b"\r\n"))) > size:
            raise errors.LimitRequestHeaders(
                f"header field longer than {options.limit_request_field_size} bytes with its "
                "CRLF")
        headers = parse_field_block(block, options, forwarder_trusted=self._forwarded_trusted)
        return build_request(line, headers, options, forwarded_trusted=self._forwarded_trusted,
                             is_ssl=self._is_ssl, proxy=self._proxy)

    def _check_partial_head(self, buf: bytes | bytearray) -> None:
        """Enforce the limits and the CRLF line endings on the incomplete head, in stream
        order, scanning only bytes not seen before.

        RFC 9112 §2.2 lets a server accept a bare LF as a line terminator; we refuse it as soon
        as it arrives (a head that never ends in CRLF CRLF would otherwise wait for EOF), since
        parsers that disagree on line endings are a request-smuggling vector. The limits of a
        line are checked before its ending, so the first error is the same for any feed.
        """
        options = self._options
        line_limit = options.limit_request_line
        size = options.field_line_limit
        while True:
            lf = buf.find(b"\n", self._line_scan)
            if lf == -1:
                break
            bare = lf == 0 or buf[lf - 1] != 13  # 13: CR
            length = (lf if bare else lf - 1) - self._line_start
            if not self._request_line_done:
                if line_limit and length > line_limit:
                    raise errors.LimitRequestLine(f"request line longer than {line_limit} bytes")
                if bare:
                    raise errors.InvalidRequestLine("request line ends with a bare LF")
                # Checked as soon as it is complete, as a whole head checks it first.
                parse_request_line(bytes(buf[self._line_start:lf - 1]), options)
                self._request_line_done = True
            else:
                self._fields += 1
                if self._fields > options.limit_request_fields:
                    raise errors.LimitRequestHeaders("too many header fields")
                if length > size:
                    raise errors.LimitRequestHeaders(
                        f"header field longer than {options.limit_request_field_size} bytes "
                        "with its CRLF")
                if bare:
                    raise errors.InvalidHeader("header line ends with a bare LF")
            self._line_start = self._line_scan = lf + 1
        # The unfinished last line: its final byte may be the CR of its CRLF.
        pending = len(buf) - self._line_start
        if not self._request_line_done:
            if line_limit and pending > line_limit + 1:
                raise errors.LimitRequestLine(f"request line longer than {line_limit} bytes")
        elif pending > size + 1:
            raise errors.LimitRequestHeaders(
                f"header field longer than {options.limit_request_field_size} bytes with its "
                "CRLF")
        self._line_scan = len(buf)
