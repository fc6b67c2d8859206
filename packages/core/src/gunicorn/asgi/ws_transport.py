"""What a WebSocket session needs from what carries it: the seam between
:class:`gunicorn.asgi.websocket.WebSocketSession` and a connection.

RFC 6455 runs a WebSocket over a whole HTTP/1.1 connection (its ``101`` switches the
connection); RFC 8441 runs one over a single HTTP/2 stream (an extended CONNECT answered
``200``). The session, its codec, limits, pings and timers are the same for both; only the
carrier differs::

                      HTTP/1.1 (HTTP1Transport, here)     HTTP/2 (gunicorn.http2.ws_stream)
    check_handshake   Sec-WebSocket-Key and -Version      :protocol and Sec-WebSocket-Version
    send_accept       101 Switching Protocols             HEADERS :status 200
    send_refusal      4xx/5xx response, then close        HEADERS + DATA, END_STREAM
    send_denial_*     the app's response (chunked)        HEADERS, DATA
    write             bytes on the socket                 DATA within the flow-control windows
    write_eof         shutdown(SHUT_WR), keep reading     END_STREAM, keep reading
    close             flush, then close the socket        flush, then END_STREAM
    abort             drop the socket now                 RST_STREAM CANCEL
    pause_reading     stop reading the socket             stop returning flow-control credit

and in the other direction the carrier calls the session's ``data_received``,
``eof_received`` (TCP FIN / END_STREAM), ``connection_lost`` (the socket closed / the stream
closed or was reset), ``pause_writing`` and ``resume_writing``, as asyncio calls a protocol's.
The byte-stream half is exactly a subset of ``asyncio.Transport``, so the HTTP/1.1 carrier
hands the session its transport's own methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from gunicorn.asgi.ws_handshake import (
    DenialResponse,
    accept_response,
    check_handshake,
    extension_offers,
    refusal_response,
)
from gunicorn.http.events import Request

__all__ = ["HTTP1Transport", "WebSocketTransport"]


class WebSocketTransport(Protocol):
    """The carrier of one WebSocket (see the module docstring for what each call means on
    HTTP/1.1 and HTTP/2).

    Handshake calls come first and once each (a denial may have several bodies); the session
    calls them only while the carrier is neither closing nor lost. The byte-stream calls have
    ``asyncio.Transport``'s meaning: ``close`` flushes the buffered output first and the carrier
    reports ``connection_lost`` afterwards; ``abort`` drops it; ``get_write_buffer_size`` is the
    output not yet taken by the peer (the write timeout watches it shrink).
    """

    def check_handshake(self) -> None:
        """Raise :class:`~gunicorn.asgi.ws_errors.HandshakeRefused` unless the request is a
        valid opening handshake."""

    def extension_offers(self) -> list[str]:
        """The request's ``Sec-WebSocket-Extensions`` values, in order."""

    def send_accept(self, subprotocol: Any, offered: Iterable[str], headers: Any,
                    extensions: str | None) -> int:
        """Accept (``websocket.accept``): validate, send, return the HTTP status used.
        Raises :class:`~gunicorn.asgi.errors.ProtocolViolation` (nothing is sent then)."""

    def send_refusal(self, status: int, reason: str,
                     headers: Iterable[tuple[str, str]] = ()) -> None:
        """A complete error answer to the handshake (the session closes afterwards)."""

    def send_denial_start(self, message: dict[str, Any]) -> int:
        """The head of a ``websocket.http.response``; returns its status. Raises
        ProtocolViolation."""

    def send_denial_body(self, message: dict[str, Any]) -> bool:
        """A body message of the denial; True after the last one. Raises ProtocolViolation."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def can_write_eof(self) -> bool: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...


class HTTP1Transport:
    """The HTTP/1.1 carrier: the connection's asyncio transport after an ``Upgrade: websocket``
    request, which it answers with the bytes of :mod:`gunicorn.asgi.ws_handshake`.

    The byte-stream methods are the transport's own bound methods (no call in between on every
    frame); uvloop's transports have the same ones.
    """

    __slots__ = ("_transport", "_request", "_key", "_denial", "write", "write_eof",
                 "can_write_eof", "close", "abort", "is_closing", "pause_reading",
                 "resume_reading", "get_write_buffer_size")

    def __init__(self, transport: Any, request: Request) -> None:
        self._transport = transport
        self._request = request
        self._key = ""
        self._denial: DenialResponse | None = None
        self.write = transport.write
        self.write_eof = transport.write_eof
        self.can_write_eof = transport.can_write_eof
        self.close = transport.close
        self.abort = transport.abort
        self.is_closing = transport.is_closing
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.get_write_buffer_size = transport.get_write_buffer_size

    def check_handshake(self) -> None:
        self._key = check_handshake(self._request)

    def extension_offers(self) -> list[str]:
        return extension_offers(self._request)

    def send_accept(self, subprotocol: Any, offered: Iterable[str], headers: Any,
                    extensions: str | None) -> int:
        self._transport.write(accept_response(self._key, subprotocol, offered, headers,
                                              extensions=extensions))
        return 101

    def send_refusal(self, status: int, reason: str,
                     headers: Iterable[tuple[str, str]] = ()) -> None:
        self._transport.write(refusal_response(status, reason, headers))

    def send_denial_start(self, message: dict[str, Any]) -> int:
        denial = DenialResponse()
        self._transport.write(denial.start(message))
        self._denial = denial
        return denial.status or 0

    def send_denial_body(self, message: dict[str, Any]) -> bool:
        denial = self._denial
        assert denial is not None, "send_denial_start comes first"
        self._transport.write(denial.body(message))
        return denial.finished
