"""The WebSocket settings of one asgi worker, read once, and its count of open WebSockets.

A WebSocket holds its ``worker_connections`` slot for as long as it is open (hours, often), while
plain HTTP connections come and go. So WebSockets may fill only ``websocket_max_connections``
of a worker's slots (by default nine tenths); an upgrade beyond that is answered
``503 Service Unavailable`` and the remaining slots stay for plain HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

from gunicorn.instrument.live import NULL_WEBSOCKETS, NullWebSockets, WebSocketCount

__all__ = ["WebSocketLimits", "default_max_connections"]


def default_max_connections(worker_connections: int) -> int:
    """``websocket_max_connections = 0``: a tenth of the slots (at least one) stays for plain
    HTTP, unless the worker has a single slot."""
    worker_connections = max(worker_connections, 1)
    return max(worker_connections - max(worker_connections // 10, 1), 1)


@dataclass(slots=True)
class WebSocketLimits:
    """What every WebSocket session of a worker shares (see docs/asgi.md, "WebSockets").

    Times are in seconds, 0 meaning "off"; ``max_connections`` is the resolved cap (> 0).
    :meth:`acquire` / :meth:`release` count the sessions past their handshake check.
    ``sessions`` records accepted sessions in the metrics
    (:class:`~gunicorn.instrument.live.WebSocketCount`; records nothing by default).
    """

    max_message_size: int
    per_message_deflate: bool
    deflate_level: int
    ping_interval: float
    ping_timeout: float
    write_timeout: float
    max_connections: int
    open: int = 0
    full: bool = False  # the cap was hit and no session closed since (one warning per episode)
    sessions: WebSocketCount | NullWebSockets = NULL_WEBSOCKETS

    @classmethod
    def from_config(cls, cfg: CoreSettings) -> WebSocketLimits:
        """The limits a :class:`~gunicorn.config.Config` sets."""
        cap = int(cfg.websocket_max_connections)
        if cap <= 0:
            cap = default_max_connections(int(cfg.worker_connections))
        return cls(
            max_message_size=int(cfg.websocket_max_message_size),
            per_message_deflate=bool(cfg.websocket_per_message_deflate),
            deflate_level=int(cfg.websocket_deflate_level),
            ping_interval=float(cfg.websocket_ping_interval),
            ping_timeout=float(cfg.websocket_ping_timeout),
            write_timeout=float(cfg.write_timeout),
            max_connections=cap,
        )

    def acquire(self) -> bool:
        """Count one more open WebSocket; False (nothing counted) at the cap."""
        if self.open >= self.max_connections:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """A session counted by :meth:`acquire` is over."""
        self.open -= 1
        self.full = False
