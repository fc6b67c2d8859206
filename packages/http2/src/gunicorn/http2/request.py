"""From the header block of an HTTP/2 request to a core :class:`~gunicorn.http.events.Request`.

The same policy as HTTP/1.1, by running the same code: the pseudo-headers make a request line
for :func:`gunicorn.http.message.parse_request_line` (method token rules, target characters and
forms), the fields go through :func:`gunicorn.http.fields.parse_field_lines` (value characters,
``header_map`` for underscores, the forwarder trust gate) and
:func:`gunicorn.http.message.build_request` (duplicate Host / Content-Type, Content-Length
syntax, trusted secure-scheme headers). HTTP/2 specifics on top (RFC 9113 §8.3, §8.2.2):

* pseudo-headers: only the four request ones, once each, before the fields; ``:method``,
  ``:scheme`` and ``:path`` required except for CONNECT; violations are *malformed*
  (stream error), not HTTP errors;
* ``:protocol`` (RFC 8441 §4, extended CONNECT) only where the server announced
  SETTINGS_ENABLE_CONNECT_PROTOCOL (``connect_protocol``), only with CONNECT, and then with
  ``:scheme`` and ``:path`` as for any request; it becomes ``Request.upgrade``;
* field names must be lower case; connection-specific fields are malformed; ``te`` may only
  say ``trailers``;
* ``:authority`` replaces Host; ``:scheme`` is believed only from a trusted peer (a proxy
  terminating TLS in front of an h2c listener), otherwise the transport decides;
* several ``cookie`` fields are joined with ``"; "`` (§8.2.3), not with commas.
"""

from __future__ import annotations

from dataclasses import replace

from gunicorn.http.events import Headers, Request
from gunicorn.http.fields import parse_field_lines
from gunicorn.http.message import build_request, parse_request_line
from gunicorn.http.options import ParserOptions
from gunicorn.http2.errors import MalformedRequest

_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority", b":protocol"})
_CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                  b"transfer-encoding", b"upgrade"})
_SCHEMES = frozenset({"http", "https"})
VERSION = (2, 0)


def map_request(fields: list[tuple[bytes, bytes]], options: ParserOptions, *, trusted: bool,
                is_ssl: bool, connect_protocol: bool = False) -> Request:
    """Build the request of one stream from its decoded header block.

    ``connect_protocol``: the server announced SETTINGS_ENABLE_CONNECT_PROTOCOL, so an
    extended CONNECT is a request (its ``:protocol`` in ``Request.upgrade``).
    Raises MalformedRequest (reset the stream) or a core HTTPError (answer with its status).
    """
    pseudo: dict[bytes, bytes] = {}
    lines: list[bytes] = []
    cookies: list[bytes] = []
    regular = False
    for name, value in fields:
        if name[:1] == b":":
            if regular:
                raise MalformedRequest("pseudo-header after a regular field")
            if name not in _PSEUDO:
                raise MalformedRequest(f"unknown pseudo-header {name[:32]!r}")
            if name in pseudo:
                raise MalformedRequest(f"repeated pseudo-header {name!r}")
            pseudo[name] = value
            continue
        regular = True
        if name.lower() != name:
            raise MalformedRequest("upper-case field name")
        if name in _CONNECTION_SPECIFIC:
            raise MalformedRequest(f"connection-specific field {name!r}")
        if name == b"te" and value.strip().lower() != b"trailers":
            raise MalformedRequest("te other than trailers")
        if name == b"cookie":
            cookies.append(value)
            continue
        lines.append(name + b":" + value)
    if cookies:
        lines.append(b"cookie:" + b"; ".join(cookies))

    method = pseudo.get(b":method")
    if not method:
        raise MalformedRequest("no :method")
    authority = pseudo.get(b":authority")
    protocol = pseudo.get(b":protocol")
    if protocol is not None:
        # RFC 8441 §3: a :protocol the server did not enable is malformed; §4: only on
        # CONNECT, which then names its target with :scheme and :path.
        if not connect_protocol:
            raise MalformedRequest(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL")
        if method != b"CONNECT" or not protocol:
            raise MalformedRequest(":protocol on a request that is no extended CONNECT")
        target = pseudo.get(b":path") or b""
        if not target or b":scheme" not in pseudo:
            raise MalformedRequest("extended CONNECT without :path or :scheme")
    elif method == b"CONNECT":
        if b":scheme" in pseudo or b":path" in pseudo or not authority:
            raise MalformedRequest("CONNECT needs :authority and no :scheme or :path")
        target = authority
    else:
        target = pseudo.get(b":path") or b""
        if not target or b":scheme" not in pseudo:
            raise MalformedRequest("missing or empty :path or :scheme")

    line = parse_request_line(method + b" " + target + b" HTTP/1.1", options)
    headers: Headers = parse_field_lines(lines, options, forwarder_trusted=trusted)
    policy = build_request(line, headers, options, forwarded_trusted=trusted, is_ssl=is_ssl,
                           proxy=None)
    if authority:
        # RFC 9113 §8.3.1: :authority wins over Host (checked for duplicates above).
        host = authority.decode("latin-1")
        headers = [("HOST", host), *(h for h in headers if h[0] != "HOST")]
    transport = "https" if is_ssl else "http"
    scheme = policy.scheme
    if scheme == transport and trusted:
        claimed = pseudo.get(b":scheme", b"").decode("latin-1").lower()
        if claimed in _SCHEMES:
            scheme = claimed
    method_s, uri, path, query, fragment, _ = line
    upgrade = protocol.decode("latin-1") if protocol is not None else None
    return Request(method_s, uri, path, query, fragment, VERSION, headers, scheme,
                   policy.content_length, False, True, False, None, False, upgrade)


# RFC 7540 §3.2: the answer to an ``Upgrade: h2c`` request, before the server preface.
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
# Fields of the upgrade request that belong to the HTTP/1.1 hop, not to stream 1.
_UPGRADE_FIELDS = frozenset({"CONNECTION", "UPGRADE", "HTTP2-SETTINGS", "KEEP-ALIVE"})


def upgraded_request(request: Request) -> tuple[Request, bytes]:
    """An HTTP/1.1 ``Upgrade: h2c`` request as the request of stream 1 (RFC 7540 §3.2), and
    its ``HTTP2-Settings`` value for :meth:`gunicorn.http2.session.Session.initiate`."""
    settings = (request.header("HTTP2-Settings") or "").encode("latin-1")
    headers = [h for h in request.headers if h[0] not in _UPGRADE_FIELDS]
    # Stream 1 switches nothing more: its ``upgrade`` ("h2c") was the connection's.
    return replace(request, version=VERSION, headers=headers, keep_alive=True,
                   upgrade=None), settings
