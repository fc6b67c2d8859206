"""The WebSocket branch of the ASGI layer's errors (the rest of the tree is in
:mod:`gunicorn.asgi.errors`, whose classes the WebSocket session raises too)::

    GunicornError                                gunicorn.errors
    └── ASGIError                                gunicorn.asgi.errors
        ├── ProtocolViolation                    local: the app sent a malformed message or one
        │                                        the session state does not allow
        └── HandshakeRefused                     remote: not a valid RFC 6455 opening handshake;
                                                 carries the HTTP status, reason and headers
    OSError
    └── ClientDisconnected                       remote: send() after the connection closed
"""

from __future__ import annotations

from gunicorn.asgi.errors import ASGIError, ClientDisconnected, ProtocolViolation

__all__ = ["ClientDisconnected", "HandshakeRefused", "ProtocolViolation"]


class HandshakeRefused(ASGIError):
    """The upgrade request is not an acceptable RFC 6455 opening handshake.

    ``status`` and ``reason`` form the HTTP answer; ``headers`` are extra response fields
    (``Sec-WebSocket-Version: 13`` with 426). ``str(err)`` is for the error log only.
    """

    def __init__(self, status: int, reason: str, message: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        super().__init__(message)
