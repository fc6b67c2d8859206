"""The HTTP side of a WebSocket: the opening handshake and its answers (RFC 6455 §4), sans-IO.

The request head was already parsed by :class:`gunicorn.http.parser.RequestParser`; this module
checks it and builds the response bytes with :class:`gunicorn.http.writer.ResponseFramer`, so the
headers an application adds are validated exactly like any HTTP response's::

    GET /chat HTTP/1.1                          HTTP/1.1 101 Switching Protocols
    Host: example.com                           Server: gunicorn/x.y.z
    Upgrade: websocket                          Date: ...
    Connection: Upgrade                         Connection: upgrade
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== Upgrade: websocket
    Sec-WebSocket-Version: 13                   Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
    Sec-WebSocket-Protocol: chat, superchat     Sec-WebSocket-Protocol: chat
    Sec-WebSocket-Extensions: permessage-       Sec-WebSocket-Extensions: permessage-deflate
      deflate; client_max_window_bits           <headers from websocket.accept>

(the extension answer comes from :mod:`gunicorn.asgi.ws_extensions`). Over HTTP/2 (RFC 8441) the
same checks and fields serve an extended CONNECT, without the key and accept token:
:func:`check_opening`, :func:`accept_fields`, :func:`denial_head` and :func:`denial_body` are
what the HTTP/2 carrier uses. Instead of 101 the server
may answer 400 / 426 (bad handshake), 503 (the worker's ``websocket_max_connections`` are in
use), 403 (the application sent ``websocket.close`` before accepting), 500 (the application
failed before answering) or any response the application chose through the
``websocket.http.response`` extension.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from gunicorn.asgi.ws_errors import HandshakeRefused, ProtocolViolation
from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.events import Request
from gunicorn.http.writer import ResponseFramer, error_response

# RFC 6455 §1.3: appended to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_VERSION = "13"
# Fields the handshake itself writes; an application setting them would corrupt it.
_RESERVED = frozenset({"sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions",
                       "upgrade", "connection", "content-length", "transfer-encoding"})


def is_websocket_upgrade(request: Request) -> bool:
    """True when ``request`` asks to switch to the WebSocket protocol.

    That is a GET on HTTP/1.1 whose ``Upgrade`` token list names ``websocket`` (any case) and
    whose ``Connection`` names ``upgrade``; the parser sets ``Request.upgrade`` only in that last
    case. Whether the handshake is *valid* is decided later by :func:`check_handshake`, so a
    broken one gets a WebSocket-specific answer (400 / 426) rather than a plain HTTP response.
    """
    upgrade = request.upgrade
    if upgrade is None or request.method != "GET" or request.version != (1, 1):
        return False
    return any(token.strip().lower() == "websocket" for token in upgrade.split(","))


def accept_token(key: str) -> str:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()  # noqa: S324 - mandated by RFC
    return base64.b64encode(digest).decode("ascii")


def _single(request: Request, name: str) -> str | None:
    values = [value for key, value in request.headers if key == name]
    if len(values) > 1:
        raise HandshakeRefused(400, "Bad Request", f"more than one {name} header")
    return values[0] if values else None


def check_opening(request: Request) -> None:
    """The checks an opening handshake gets on HTTP/1.1 and on HTTP/2 alike (RFC 6455 §4.2.1,
    which RFC 8441 §5 keeps for ``Sec-WebSocket-Version``).

    Raises :class:`HandshakeRefused`: 426 with ``Sec-WebSocket-Version: 13`` for another protocol
    version (§4.4), 400 for a missing Host (on HTTP/2: ``:authority``) or version, or a request
    that carries a body (its bytes would be read as frames).
    """
    if request.header("HOST") is None:
        raise HandshakeRefused(400, "Bad Request", "handshake without Host")
    if request.chunked or request.content_length:
        raise HandshakeRefused(400, "Bad Request", "handshake with a request body")
    version = _single(request, "SEC-WEBSOCKET-VERSION")
    if version is None:
        raise HandshakeRefused(400, "Bad Request", "handshake without Sec-WebSocket-Version")
    if version != SUPPORTED_VERSION:
        raise HandshakeRefused(426, "Upgrade Required", f"unsupported version {version[:16]!r}",
                               (("Sec-WebSocket-Version", SUPPORTED_VERSION),))


def check_handshake(request: Request) -> str:
    """Validate an HTTP/1.1 upgrade request (RFC 6455 §4.2.1) and return its
    ``Sec-WebSocket-Key``.

    Raises :class:`HandshakeRefused`: as :func:`check_opening`, and 400 for a missing key or a
    key that is not 16 base64-encoded bytes.
    """
    check_opening(request)
    key = _single(request, "SEC-WEBSOCKET-KEY")
    if key is None:
        raise HandshakeRefused(400, "Bad Request", "handshake without Sec-WebSocket-Key")
    try:
        nonce = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeRefused(400, "Bad Request", "Sec-WebSocket-Key is not a 16-byte nonce")
    return key


def refusal_response(status: int, reason: str, headers: Iterable[tuple[str, str]] = (), *,
                     date: str | None = None) -> bytes:
    """A complete error answer to the handshake that closes the connection."""
    extra = list(headers)
    if not extra:
        return error_response(status, reason, date=date)
    body = f"{status} {reason}\n".encode("latin-1")
    framer = ResponseFramer("GET", (1, 1), keep_alive=False)
    extra += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return framer.start(f"{status} {reason}", extra, date=date) + framer.body(body)


def asgi_headers(raw: Any) -> list[tuple[str, str]]:
    """Convert ASGI ``headers`` (an iterable of ``[name, value]`` byte strings) to the framer's
    ``(str, str)`` pairs. The framer validates the characters; this only checks the shape."""
    if raw is None:
        return []
    out = []
    try:
        for name, value in raw:
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                raise ProtocolViolation(f"header {name!r}: names and values must be bytes")
            out.append((name.decode("latin-1"), value.decode("latin-1")))
    except (TypeError, ValueError) as exc:
        raise ProtocolViolation(f"headers must be [name, value] pairs: {exc}") from None
    return out


def extension_offers(request: Request) -> list[str]:
    """The values of the request's ``Sec-WebSocket-Extensions`` fields, in order."""
    return [value for name, value in request.headers if name == "SEC-WEBSOCKET-EXTENSIONS"]


def accept_fields(subprotocol: Any, offered: Iterable[str], headers: Any,
                  extensions: str | None = None) -> list[tuple[str, str]]:
    """The fields of an accepting answer that do not depend on the carrier: the chosen
    subprotocol, the negotiated extensions and the ``websocket.accept`` message's ``headers``.

    ``subprotocol`` must be one the client offered (RFC 6455 §4.2.2 /subprotocol/); ``headers``
    may not set a field the handshake owns. ``extensions`` is the negotiated
    ``Sec-WebSocket-Extensions`` value, if any (RFC 6455 §9.1). Raises
    :class:`ProtocolViolation` for either fault. Characters are checked by the carrier's
    response rules afterwards.
    """
    fields = []
    if subprotocol is not None:
        if not isinstance(subprotocol, str) or subprotocol not in offered:
            raise ProtocolViolation(f"subprotocol {subprotocol!r} was not offered by the client")
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    for name, value in asgi_headers(headers):
        if name.lower() in _RESERVED:
            raise ProtocolViolation(f"websocket.accept may not set the {name!r} header")
        fields.append((name, value))
    return fields


def accept_response(key: str, subprotocol: Any, offered: Iterable[str], headers: Any, *,
                    extensions: str | None = None, date: str | None = None) -> bytes:
    """The ``101 Switching Protocols`` head for a ``websocket.accept`` message (the fields of
    :func:`accept_fields` after the upgrade's own). Raises :class:`ProtocolViolation` as
    :func:`accept_fields` does, or for an invalid header (nothing is written then).
    """
    fields = [("Upgrade", "websocket"), ("Connection", "upgrade"),
              ("Sec-WebSocket-Accept", accept_token(key)),
              *accept_fields(subprotocol, offered, headers, extensions)]
    framer = ResponseFramer("GET", (1, 1), keep_alive=False)
    try:
        return framer.start("101 Switching Protocols", fields, date=date)
    except InvalidResponseHeader as exc:
        raise ProtocolViolation(str(exc)) from None


def denial_head(message: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The status line and headers of a ``websocket.http.response.start`` message (shape only;
    the carrier's response rules check the characters). Raises :class:`ProtocolViolation`."""
    status = message.get("status")
    # A 1xx would not end the exchange and 101 would be an accept in disguise.
    if type(status) is not int or not 200 <= status <= 599:
        raise ProtocolViolation(f"invalid denial response status {status!r}")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{status} {phrase}", asgi_headers(message.get("headers"))


def denial_body(message: dict[str, Any]) -> tuple[bytes, bool]:
    """The body of a ``websocket.http.response.body`` message, and whether it is the last."""
    body = message.get("body", b"")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtocolViolation("websocket.http.response.body 'body' must be bytes")
    return bytes(body), not message.get("more_body", False)


class DenialResponse:
    """The HTTP response an application sends instead of accepting, through the
    ``websocket.http.response`` extension (``...response.start`` then ``...response.body``)."""

    __slots__ = ("_framer", "finished")

    def __init__(self) -> None:
        self._framer = ResponseFramer("GET", (1, 1), keep_alive=False)
        self.finished = False

    @property
    def status(self) -> int | None:
        return self._framer.status_code

    def start(self, message: dict[str, Any], *, date: str | None = None) -> bytes:
        """Bytes of the head for a ``websocket.http.response.start`` message."""
        status, headers = denial_head(message)
        try:
            return self._framer.start(status, headers, date=date)
        except InvalidResponseHeader as exc:
            raise ProtocolViolation(str(exc)) from None

    def body(self, message: dict[str, Any]) -> bytes:
        """Bytes for a ``websocket.http.response.body`` message; sets :attr:`finished` on the
        last one (``more_body`` false)."""
        body, last = denial_body(message)
        data = self._framer.body(body)
        if last:
            self.finished = True
            data += self._framer.end()
        return data
