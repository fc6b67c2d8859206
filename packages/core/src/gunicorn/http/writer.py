"""The response side of an HTTP/1.1 server connection: head, body framing, error pages.

::

    HTTP/1.1 200 OK\\r\\n                 status line (always HTTP/1.1, RFC 9110 §2.5)
    Server: gunicorn/x.y.z\\r\\n          added here
    Date: Sun, 06 Nov 1994 08:49:37 GMT\\r\\n
    Connection: keep-alive\\r\\n          or close; the final persistence decision
    <application headers>\\r\\n           validated, hop-by-hop ones removed
    Transfer-Encoding: chunked\\r\\n      only when HTTP/1.1 and no Content-Length
    \\r\\n
    body: raw (Content-Length, truncated at it), chunked ("%x\\r\\n" data "\\r\\n" ... "0\\r\\n\\r\\n"),
          or close-delimited (HTTP/1.0 without Content-Length)
"""

from __future__ import annotations

import html
import re
from enum import Enum

from gunicorn.http.dates import http_date
from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.fields import TCHAR
from gunicorn.version import SERVER_SOFTWARE

# RFC 9110 §5.1 field names are tokens: the request parser's character class, for str names.
_TOKEN_RE = re.compile(f"[{TCHAR.decode('ascii')}]+")
# RFC 9110 §5.5 field-value chars; the upper bound \xff also guarantees latin-1 encodability.
_VALUE_RE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")
_STATUS_RE = re.compile(r"([1-9][0-9]{2})(?: ([ \t\x21-\x7e\x80-\xff]*))?")
_DIGITS_RE = re.compile(r"[0-9]{1,18}")
# RFC 9110 §7.6.1 hop-by-hop fields, plus Server and Date which the server writes itself.
_DROPPED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                      "te", "trailers", "transfer-encoding", "upgrade", "server", "date"})


class _Framing(Enum):
    NONE = 1      # HEAD, 1xx, 204, 304: no body whatever the headers say
    LENGTH = 2
    CHUNKED = 3
    CLOSE = 4     # HTTP/1.0 without Content-Length: the body ends when the connection does


def field_lines(headers: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Validate response fields (RFC 9110 §5: token names, field-value characters).

    Returns ``(name, lower-case name, value without surrounding blanks)`` triples; raises
    InvalidResponseHeader naming the first bad pair. Every protocol's responses (and HTTP/2
    trailers) are checked by this one rule.
    """
    out = []
    for item in headers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidResponseHeader(f"header is not a (name, value) pair: {item!r}") from None
        if not isinstance(name, str) or _TOKEN_RE.fullmatch(name) is None:
            raise InvalidResponseHeader(f"invalid header name {name!r}")
        if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
            raise InvalidResponseHeader(f"invalid value for header {name!r}")
        out.append((name, name.lower(), value.strip(" \t")))
    return out


def _status_text(match: re.Match[str]) -> str:
    # RFC 9112 §4: the SP after the code is mandatory even when the reason phrase is empty.
    return match.group(0) if match.group(2) is not None else f"{match.group(1)} "


def _content_length(value: str, previous: str | None) -> bool:
    """Check one Content-Length value; False when it repeats ``previous`` (drop the copy)."""
    if _DIGITS_RE.fullmatch(value) is None:
        raise InvalidResponseHeader(f"invalid Content-Length {value!r}")
    if previous is None:
        return True
    if int(value) != int(previous):
        raise InvalidResponseHeader("conflicting Content-Length headers")
    return False


def check_head(status: str, headers: list[tuple[str, str]]
               ) -> tuple[int, list[tuple[str, str, str]], int | None]:
    """Validate a final response head by the rules of :meth:`ResponseFramer.start`, for a
    protocol that frames it differently (HTTP/2).

    Returns the status code, the :func:`field_lines` triples (a repeated, equal Content-Length
    left out) and the Content-Length (None when absent). Raises InvalidResponseHeader.
    """
    match = _STATUS_RE.fullmatch(status) if isinstance(status, str) else None
    if match is None:
        raise InvalidResponseHeader(f"invalid status {status!r}")
    triples = field_lines(headers)
    length: str | None = None
    out = []
    for triple in triples:
        if triple[1] == "content-length":
            if not _content_length(triple[2], length):
                continue
            length = triple[2]
        out.append(triple)
    return int(match.group(1)), out, None if length is None else int(length)


def _informational(status: str) -> re.Match[str]:
    match = _STATUS_RE.fullmatch(status) if isinstance(status, str) else None
    if match is None or not 100 <= int(match.group(1)) < 200 or match.group(1) == "101":
        raise InvalidResponseHeader(f"not an informational status: {status!r}")
    return match


def check_informational(status: str, headers: list[tuple[str, str]]
                        ) -> tuple[int, list[tuple[str, str, str]]]:
    """Validate an interim (1xx, not 101) response head; the code and :func:`field_lines`."""
    return int(_informational(status).group(1)), field_lines(headers)


def accepts_trailers(te: str | None) -> bool:
    """RFC 9110 §6.5.1: trailers go only to a client that said ``TE: trailers``."""
    if not te:
        return False
    return "trailers" in (token.strip().lower() for token in te.split(","))


def _encode_headers(lines: list[str]) -> bytes:
    return "".join(lines).encode("latin-1")


class ResponseFramer:
    """Frame one response to a request with ``method`` and ``version``.

    ``keep_alive`` is the wish of both sides (the request's ``keep_alive`` and not
    ``must_close``, and the worker's own reasons); :attr:`keep_alive` after :meth:`start` is the
    final decision, which the driver follows once :meth:`end` returned.
    """

    __slots__ = ("_method", "_version", "_keep_alive", "_framing", "_remaining", "_finished",
                 "status_code", "content_length", "body_bytes", "headers_sent", "body_dropped",
                 "upgraded")

    def __init__(self, method: str, version: tuple[int, int], keep_alive: bool) -> None:
        self._method = method
        self._version = version
        self._keep_alive = keep_alive
        self._framing = _Framing.NONE
        self._remaining = 0
        self._finished = False
        self.status_code: int | None = None
        self.content_length: int | None = None  # of a body that may be sent, once started
        self.body_bytes = 0            # body payload bytes written, for the access log
        self.headers_sent = False
        self.body_dropped = False      # the app wrote a body the status / method forbids
        self.upgraded = False          # 101 Switching Protocols: the connection changes hands

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive

    @property
    def chunked(self) -> bool:
        return self._framing is _Framing.CHUNKED

    def informational(self, status: str, headers: list[tuple[str, str]]) -> bytes:
        """Bytes of an interim response (``100 Continue``, ``103 Early Hints``).

        Returns ``b""`` for HTTP/1.0 clients, which must not receive 1xx (RFC 9110 §15.2).
        Raises InvalidResponseHeader; RuntimeError once the final head was produced.
        """
        if self.headers_sent:
            raise RuntimeError("informational response after the final response head")
        lines = [f"HTTP/1.1 {_status_text(_informational(status))}\r\n"]
        for name, _, value in field_lines(headers):
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        if self._version < (1, 1):
            return b""
        return _encode_headers(lines)

    def start(self, status: str, headers: list[tuple[str, str]], *, date: str | None = None) -> bytes:
        """Validate the status and headers and return the response head.

        ``status`` is ``"NNN reason"``; ``date`` is a ready http-date (drivers pass one from a
        :class:`~gunicorn.http.dates.DateCache`), default: formatted now. Raises
        InvalidResponseHeader with nothing changed, so the caller can still send a 500.
        """
        if self.headers_sent:
            raise RuntimeError("response head already produced")
        match = _STATUS_RE.fullmatch(status) if isinstance(status, str) else None
        if match is None:
            raise InvalidResponseHeader(f"invalid status {status!r}")
        code = int(match.group(1))
        triples = field_lines(headers)
        keep_alive = self._keep_alive
        content_length: str | None = None
        upgrade = connection_upgrade = False
        out: list[str] = []
        for name, lower, value in triples:
            if lower == "content-length":
                if not _content_length(value, content_length):
                    continue
                content_length = value
            elif lower in _DROPPED:
                # The one hop-by-hop pair an application may set: a WebSocket handshake.
                if lower == "upgrade" and value.lower() == "websocket":
                    upgrade = True
                elif lower == "connection" and value.lower() == "upgrade":
                    connection_upgrade = True
                    continue
                else:
                    continue
            out.append(f"{name}: {value}\r\n")
        no_body = self._method == "HEAD" or code < 200 or code in (204, 304)
        if content_length is not None and (code < 200 or code == 204):
            # RFC 9110 §8.6: these responses must not carry Content-Length.
            out = [line for line in out if line[:15].lower() != "content-length:"]
            content_length = None
        if no_body:
            framing = _Framing.NONE
        elif content_length is not None:
            framing = _Framing.LENGTH
            self._remaining = self.content_length = int(content_length)
        elif self._version >= (1, 1):
            framing = _Framing.CHUNKED
            out.append("Transfer-Encoding: chunked\r\n")
        else:
            framing = _Framing.CLOSE
            keep_alive = False
        head = [f"HTTP/1.1 {_status_text(match)}\r\nServer: {SERVER_SOFTWARE}\r\n"
                f"Date: {http_date() if date is None else date}\r\n"]
        if upgrade and connection_upgrade and code == 101:
            head.append("Connection: upgrade\r\n")
            self.upgraded = True
            keep_alive = False
        else:
            if upgrade:
                out = [line for line in out if line[:8].lower() != "upgrade:"]
            head.append("Connection: keep-alive\r\n" if keep_alive else "Connection: close\r\n")
        head.extend(out)
        head.append("\r\n")
        data = _encode_headers(head)
        self._framing = framing
        self._keep_alive = keep_alive
        self.status_code = code
        self.headers_sent = True
        return data

    def body(self, data: bytes) -> bytes:
        """Frame a piece of body; bytes beyond Content-Length and bodies of HEAD / 1xx / 204 /
        304 responses are dropped (``body_dropped`` is then set, for one warning)."""
        if not self.headers_sent or self._finished:
            raise RuntimeError("body() outside start() ... end()")
        if not data:
            return b""
        framing = self._framing
        if framing is _Framing.LENGTH:
            if len(data) > self._remaining:
                data = data[:self._remaining]
            self._remaining -= len(data)
        elif framing is _Framing.CHUNKED:
            self.body_bytes += len(data)
            return b"%x\r\n%b\r\n" % (len(data), data)
        elif framing is _Framing.NONE:
            self.body_dropped = True
            return b""
        self.body_bytes += len(data)
        return data if type(data) is bytes else bytes(data)

    def end(self, trailers: list[tuple[str, str]] | None = None) -> bytes:
        """Finish the body. A length-delimited body shorter than announced forces the
        connection closed, since the client would read the next response as body."""
        if not self.headers_sent:
            raise RuntimeError("end() before start()")
        if self._finished:
            return b""
        self._finished = True
        if self._framing is _Framing.CHUNKED:
            lines = ["0\r\n"]
            for name, _, value in field_lines(trailers or []):
                lines.append(f"{name}: {value}\r\n")
            lines.append("\r\n")
            return _encode_headers(lines)
        if self._framing is _Framing.LENGTH and self._remaining:
            self._keep_alive = False
        return b""

    def error_response(self, status: int, reason: str, *, date: str | None = None) -> bytes:
        """A complete error response replacing this one (see :func:`error_response`)."""
        if self.headers_sent:
            raise RuntimeError("response head already produced")
        data = error_response(status, reason, date=date)
        self.status_code = status
        self.headers_sent = True
        self._finished = True
        self._keep_alive = False
        self.body_bytes = len(data) - data.index(b"\r\n\r\n") - 4
        return data


def error_response(status: int, reason: str, *, date: str | None = None) -> bytes:
    """A tiny HTML error page that closes the connection. It shows only ``status`` and
    ``reason`` (the standard phrase): never exception text, which may leak internals."""
    if not 100 <= status <= 999 or _VALUE_RE.fullmatch(reason) is None:
        raise ValueError(f"invalid error status {status!r} {reason!r}")
    text = html.escape(f"{status} {reason}")
    body = (f"<html>\n  <head>\n    <title>{text}</title>\n  </head>\n"
            f"  <body>\n    <h1>{text}</h1>\n  </body>\n</html>\n").encode("latin-1")
    head = (f"HTTP/1.1 {status} {reason}\r\nServer: {SERVER_SOFTWARE}\r\n"
            f"Date: {http_date() if date is None else date}\r\nConnection: close\r\n"
            f"Content-Type: text/html; charset=latin-1\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body
