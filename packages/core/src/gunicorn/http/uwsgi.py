"""The request side of the uwsgi binary protocol (``protocol = "uwsgi"``), as a sans-IO parser.

A front end such as nginx (``uwsgi_pass``) parses the client's HTTP request itself and forwards
it as one packet of CGI-style variables, followed by the body. All integers are little-endian::

    +-----------+----------------+-----------+--------------------------------------+---------+
    | modifier1 | datasize (u16) | modifier2 | vars: datasize bytes                 | body    |
    |  u8 = 0   |                |  u8       |                                      |         |
    +-----------+----------------+-----------+--------------------------------------+---------+
                                             | klen u16 | key | vlen u16 | value | ... repeat |

    body = CONTENT_LENGTH bytes; the packet does not frame it, nginx has already removed any
           chunked coding of the client's request

The response is plain HTTP/1.x bytes that the front end parses. nginx's uwsgi module does not
undo a chunked coding and does not expect interim (1xx) responses, so every request is reported
as HTTP/1.0: the response framer then sends a Content-Length body or closes the connection after
the body, and never sends 100 Continue or 103 Early Hints. The front end answers the client in
whatever HTTP version the client speaks.

Mapping to :class:`~gunicorn.http.events.Request`, so that the application sees no difference
from a direct HTTP/1.1 request:

* ``REQUEST_URI`` is the request target exactly as the client sent it (still percent-encoded),
  so ``path``/``query`` are what the HTTP parser would produce; ``PATH_INFO`` (already decoded by
  nginx) and ``QUERY_STRING`` are only used when ``REQUEST_URI`` is missing.
* ``HTTP_*`` become header fields (``HTTP_X_FOO`` -> ``X-FOO``). ``CONTENT_TYPE`` and
  ``CONTENT_LENGTH`` are the fields of the same name; their ``HTTP_`` twins (nginx sends both)
  are only a fallback. ``HTTP_TRANSFER_ENCODING`` is dropped: the body we read is not chunked.
* The scheme is the front end's word, never a client's header: ``UWSGI_SCHEME`` (http or
  https) when present, else https when ``HTTPS`` is on/1/true/yes or ``REQUEST_SCHEME`` is
  https, else https only when our own socket is TLS. nginx's stock ``uwsgi_params`` forwards
  the client's ``X-Forwarded-Proto`` as ``HTTP_X_FORWARDED_PROTO``, and nginx is a trusted
  forwarder by default, so ``secure_scheme_headers`` do not apply under uwsgi: any client could
  claim https. The header still reaches the application as a header.
* ``REMOTE_ADDR``/``REMOTE_PORT`` become ``Request.proxy`` (protocol ``"UWSGI"``): the peer is a
  front end admitted by ``uwsgi_allow_ips``, which vouches for the client's address as a PROXY
  protocol header would.
* ``SCRIPT_NAME`` becomes a ``SCRIPT_NAME`` field, which the WSGI environ treats as the mount
  point (as it does for that header from a trusted forwarder).

The HTTP limits apply: the request line rebuilt from method and target against
``limit_request_line`` (414), the number of header variables against ``limit_request_fields``
and each ``NAME: value`` against ``limit_request_field_size`` (431). Syntax is checked by the
HTTP parser's own functions (method token, target characters, field names and values,
Content-Length digits, duplicate Host / Content-Type).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from gunicorn.http import errors
from gunicorn.http.body import LengthReader
from gunicorn.http.buffered import BufferedParser
from gunicorn.http.events import NEED_DATA, EndOfMessage, Event, Headers, ProxyInfo, Request
from gunicorn.http.fields import FIELD_VALUE_RE, TOKEN_RE
from gunicorn.http.message import build_request, parse_request_line
from gunicorn.http.options import ParserOptions

HEADER_SIZE: Final = 4
MAX_DATASIZE: Final = 0xFFFF
# Variables that are not header fields: nginx's uwsgi_params sends 14, deployments add a few.
MAX_CGI_VARS: Final = 64
# The version every request is reported with; see the module docstring.
HOP_VERSION: Final = (1, 0)

_TARGET_VARS = frozenset({"REQUEST_URI", "PATH_INFO", "QUERY_STRING"})
# Variables whose meaning we take; a second copy is ambiguous, as a second Content-Length is.
_SINGLETONS = frozenset({"REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING",
                         "CONTENT_LENGTH", "CONTENT_TYPE", "HTTPS", "REQUEST_SCHEME",
                         "UWSGI_SCHEME",
                         "REMOTE_ADDR", "REMOTE_PORT", "SERVER_ADDR", "SERVER_NAME",
                         "SERVER_PORT", "SCRIPT_NAME"})
# nginx forwards the client's framing headers next to the CGI variables; these describe the hop
# between client and nginx, not the body nginx sends us.
_DROPPED_FIELDS = frozenset({"TRANSFER-ENCODING"})
_TWINS = {"CONTENT-LENGTH": "CONTENT_LENGTH", "CONTENT-TYPE": "CONTENT_TYPE"}
_TRUE = frozenset({"on", "1", "true", "yes"})


class InvalidUWSGIPacket(errors.RequestError):
    """A malformed uwsgi packet: variable lengths past the end, empty or duplicate names."""


class UnsupportedModifier(InvalidUWSGIPacket):
    """``modifier1`` is not 0 (the WSGI/HTTP request type)."""


class ForbiddenUWSGIRequest(errors.RequestError):
    """The peer is not in ``uwsgi_allow_ips``."""

    status = 403
    reason = "Forbidden"


class UWSGIParser(BufferedParser):
    """Parse the uwsgi requests of one connection; same interface as
    :class:`~gunicorn.http.parser.RequestParser`.

    Arguments:
        options: limits and leniency switches shared with the HTTP parser.
        forwarded_trusted: accepted for interface compatibility; the scheme comes from the
            front end's variables, never from ``secure_scheme_headers`` (module docstring).
        proxy_trusted: accepted for interface compatibility; uwsgi has no PROXY header.
        is_ssl: the connection from the front end is TLS.
        allowed: the peer is in ``uwsgi_allow_ips``; when False the first ``next_event`` raises
            :class:`ForbiddenUWSGIRequest` without looking at the bytes.

    ``next_event`` returns ``Request``, then ``Data`` events, then ``EndOfMessage``, then the
    next request of a kept-alive connection. Errors are :class:`~gunicorn.http.errors.RequestError`
    subclasses and make the parser terminal.
    """

    __slots__ = ("_options", "_is_ssl", "_reader", "_max_datasize")

    def __init__(self, options: ParserOptions, *, forwarded_trusted: bool = False,
                 proxy_trusted: bool = False, is_ssl: bool = False, allowed: bool = True) -> None:
        self._buf = bytearray()
        self._eof = False
        self._proxy: ProxyInfo | None = None
        self._error: errors.RequestError | None = None
        self._options = options
        self._is_ssl = is_ssl
        self._reader: LengthReader | None = None
        if not allowed:
            self._error = ForbiddenUWSGIRequest("peer not in uwsgi_allow_ips")
        self._max_datasize = max_datasize(options)

    # -- public API -----------------------------------------------------------------------------

    # proxy_info (the client address the front end announced for the latest request), at_eof,
    # feed (the peer is the front end) and trailing_data come from BufferedParser.

    def next_event(self, max_data: int | None = None) -> Event:
        """The next event, or ``NEED_DATA``; ``max_data`` bounds the size of one ``Data``.

        Raises a :class:`~gunicorn.http.errors.RequestError` subclass for a bad packet (the
        parser is terminal afterwards). :class:`~gunicorn.http.errors.IncompleteRequest` with
        ``received == 0`` is an idle connection closed by the front end.
        """
        if self._error is not None:
            raise self._error
        try:
            reader = self._reader
            if reader is not None:
                event = reader.next_event(self._buf, self._eof, max_data)
                if type(event) is EndOfMessage:
                    self._reader = None
                return event
            return self._next_packet()
        except errors.RequestError as exc:
            self._error = exc
            raise

    # -- packets --------------------------------------------------------------------------------

    def _next_packet(self) -> Event:
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            if self._eof:
                raise errors.IncompleteRequest(len(buf), "connection closed inside a uwsgi header")
            return NEED_DATA
        # The header alone is enough to refuse a packet, before its variables are buffered.
        if buf[0] != 0:
            raise UnsupportedModifier(f"uwsgi modifier1 {buf[0]} is not 0 (WSGI)")
        datasize = buf[1] | buf[2] << 8
        if datasize > self._max_datasize:
            raise errors.LimitRequestHeaders(
                f"uwsgi variables block of {datasize} bytes exceeds {self._max_datasize}")
        end = HEADER_SIZE + datasize
        if len(buf) < end:
            if self._eof:
                raise errors.IncompleteRequest(len(buf), "connection closed inside a uwsgi packet")
            return NEED_DATA
        block = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        request = self._build(parse_vars(block, self._options))
        self._proxy = request.proxy
        self._reader = LengthReader(request.content_length or 0)
        return request

    def _build(self, parsed: tuple[dict[str, bytes], Headers]) -> Request:
        cgi, headers = parsed
        options = self._options
        method = cgi.get("REQUEST_METHOD") or b"GET"
        target = cgi.get("REQUEST_URI")
        if not target:
            # Re-encode "%" so that the environ's percent-decoding gives back nginx's PATH_INFO.
            target = (cgi.get("PATH_INFO") or b"/").replace(b"%", b"%25")
            query = cgi.get("QUERY_STRING")
            if query:
                target += b"?" + query
        line = b"%s %s HTTP/1.0" % (method, target)
        limit = options.limit_request_line
        if limit and len(line) > limit:
            raise errors.LimitRequestLine(f"request line longer than {limit} bytes")
        parts = parse_request_line(line, options)
        for name, var in _TWINS.items():
            value = cgi.get(var)
            if value is not None:
                # The CGI variable wins; its HTTP_ twin (nginx sends both) is dropped.
                headers = [(n, v) for n, v in headers if n != name]
                if value:
                    headers.append((name, _field_value(var, value)))
        script_name = cgi.get("SCRIPT_NAME")
        if script_name:
            headers.append(("SCRIPT_NAME", _field_value("SCRIPT_NAME", script_name)))
        request = build_request(parts, headers, options, forwarded_trusted=False,
                                is_ssl=_front_end_https(cgi, self._is_ssl), proxy=_client(cgi))
        # Persistence and upgrades are decided by the front end on its own connection to the
        # client; on ours, the connection stays open until the front end closes it.
        if not request.keep_alive or request.upgrade is not None:
            request = replace(request, keep_alive=True, upgrade=None)
        return request


def _front_end_https(cgi: dict[str, bytes], is_ssl: bool) -> bool:
    """Whether the client reached the front end over https, as the front end says."""
    scheme = cgi.get("UWSGI_SCHEME")
    if scheme is not None:
        value = scheme.strip().lower()
        if value not in (b"http", b"https"):
            raise InvalidUWSGIPacket(f"UWSGI_SCHEME must be http or https, not {scheme[:16]!r}")
        return value == b"https"
    return (cgi.get("HTTPS", b"").lower().decode("latin-1") in _TRUE
            or cgi.get("REQUEST_SCHEME", b"").lower() == b"https" or is_ssl)


def max_datasize(options: ParserOptions) -> int:
    """The largest variables block the limits allow (at most the format's 65535)."""
    line = options.limit_request_line
    size = options.limit_request_field_size
    if not line:
        return MAX_DATASIZE
    # Three target variables, the fields and the CGI variables, each with its two length words.
    bound = 3 * (line + 4) + (options.limit_request_fields + MAX_CGI_VARS) * (size + 4)
    return min(bound, MAX_DATASIZE)


def parse_vars(block: bytes, options: ParserOptions) -> tuple[dict[str, bytes], Headers]:
    """Split a variables block into (CGI variables, header fields) and check their limits.

    Header fields come out as ``[(NAME, value)]`` in packet order, like the HTTP parser's.
    Raises InvalidUWSGIPacket, LimitRequestHeaders, LimitRequestLine, InvalidHeaderName or
    InvalidHeader.
    """
    cgi: dict[str, bytes] = {}
    headers: Headers = []
    size = len(block)
    pos = 0
    max_fields = options.limit_request_fields
    field_limit = options.limit_request_field_size
    # "NAME: value" plus the CRLF it would end with counts against the limit, as over HTTP.
    line_room = options.field_line_limit
    line_limit = options.limit_request_line
    others = 0
    while pos < size:
        if pos + 2 > size:
            raise InvalidUWSGIPacket("uwsgi variable name length past the end of the packet")
        klen = block[pos] | block[pos + 1] << 8
        kend = pos + 2 + klen
        if kend + 2 > size:
            raise InvalidUWSGIPacket("uwsgi variable name past the end of the packet")
        vlen = block[kend] | block[kend + 1] << 8
        vend = kend + 2 + vlen
        if vend > size:
            raise InvalidUWSGIPacket("uwsgi variable value past the end of the packet")
        if klen == 0:
            raise InvalidUWSGIPacket("uwsgi variable with an empty name")
        key = block[pos + 2:kend]
        value = block[kend + 2:vend]
        pos = vend
        if key.startswith(b"HTTP_") and klen > 5:
            if len(headers) >= max_fields:
                raise errors.LimitRequestHeaders("too many header fields")
            # "NAME: value" is the field line this variable stands for.
            if klen - 5 + 2 + vlen > line_room:
                raise errors.LimitRequestHeaders(f"header field longer than {field_limit} bytes")
            raw_name = key[5:].replace(b"_", b"-")
            if TOKEN_RE.fullmatch(raw_name) is None:
                raise errors.InvalidHeaderName(f"header name is not a token: {raw_name[:64]!r}")
            name = raw_name.upper().decode("latin-1")
            if name in _DROPPED_FIELDS:
                continue
            headers.append((name, _field_value(name, value)))
            continue
        others += 1
        if others > MAX_CGI_VARS:
            raise errors.LimitRequestHeaders(f"more than {MAX_CGI_VARS} uwsgi variables")
        name = key.decode("latin-1")
        if name in _TARGET_VARS:
            if line_limit and vlen > line_limit:
                raise errors.LimitRequestLine(f"{name} longer than {line_limit} bytes")
        elif klen + 2 + vlen > line_room:
            raise errors.LimitRequestHeaders(f"uwsgi variable longer than {field_limit} bytes")
        if name in _SINGLETONS:
            if name in cgi:
                raise InvalidUWSGIPacket(f"uwsgi variable {name} sent twice")
            cgi[name] = value
    return cgi, headers


def _field_value(name: str, value: bytes) -> str:
    # RFC 9110 §5.5: no CTL but HTAB in a field value, wherever the front end took it from.
    if FIELD_VALUE_RE.fullmatch(value) is None:
        raise errors.InvalidHeader(f"control character in the value of {name[:64]!r}")
    return value.strip(b" \t").decode("latin-1")


def _port(value: bytes | None) -> int:
    # nginx sends an empty REMOTE_PORT for clients on a UNIX socket; 0 stands for "none".
    if value and value.isdigit() and len(value) <= 5 and int(value) <= 0xFFFF:
        return int(value)
    return 0


def _client(cgi: dict[str, bytes]) -> ProxyInfo | None:
    """The client address the front end announced, if it announced one."""
    addr = cgi.get("REMOTE_ADDR")
    if not addr:
        return None
    server = cgi.get("SERVER_ADDR") or cgi.get("SERVER_NAME") or b""
    return ProxyInfo(_field_value("REMOTE_ADDR", addr), _port(cgi.get("REMOTE_PORT")),
                     _field_value("SERVER_ADDR", server), _port(cgi.get("SERVER_PORT")), "UWSGI")
