"""The liveness timers of one WebSocket session: the event-loop side of
:mod:`gunicorn.asgi.ws_keepalive`.

The session tells the :class:`Watchdog` what happens (accepted, bytes arrived, writing paused or
resumed, closing, transport lost); the watchdog arms one loop timer per clock and calls back the
session to send a ping or to give the connection up, after logging why (with the peer's
address). The write clock outlives the session: a transport closed with output still buffered
(a peer that sent its Close frame but reads nothing) must drain too, or be dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gunicorn.asgi.ws_codec import CloseCode
from gunicorn.asgi.ws_keepalive import Keepalive, KeepaliveAction, WriteProgress
from gunicorn.asgi.ws_limits import WebSocketLimits

__all__ = ["Watchdog"]


class Watchdog:
    """Keepalive pings (``ping_interval`` / ``ping_timeout``) and the write timeout of one
    session.

    Arguments:
        loop, transport: the session's; the transport's buffered byte count is the write
            progress.
        limits: the worker's WebSocket limits (times in seconds, 0 is off).
        log: the worker's logger; peer: the client's address, for the log lines.
        send_ping: sends a Ping with the given payload; returns False once the connection can
            no longer send (the keepalive then stops).
        give_up: ``give_up(code, reason)`` closes with ``code`` and drops the transport.
    """

    __slots__ = ("_loop", "_transport", "_limits", "_log", "_peer", "_send_ping", "_give_up",
                 "_keepalive", "_ping_timer", "_write_watch", "_write_timer", "_closing")

    def __init__(self, *, loop: asyncio.AbstractEventLoop, transport: Any,
                 limits: WebSocketLimits, log: Any, peer: str,
                 send_ping: Callable[[bytes], bool],
                 give_up: Callable[[int, str], None]) -> None:
        self._loop = loop
        self._transport = transport
        self._limits = limits
        self._log = log
        self._peer = peer
        self._send_ping = send_ping
        self._give_up = give_up
        self._keepalive: Keepalive | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._write_watch: WriteProgress | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._closing = False

    # -- keepalive ------------------------------------------------------------------------------

    def start_keepalive(self) -> None:
        """The WebSocket is open: ping it once it has been quiet for ``ping_interval``."""
        interval = self._limits.ping_interval
        if interval > 0 and self._keepalive is None:
            keepalive = self._keepalive = Keepalive(interval, self._limits.ping_timeout,
                                                    self._loop.time())
            self._ping_timer = self._loop.call_at(keepalive.first_deadline(), self._ping_due)

    def seen(self) -> None:
        """Bytes arrived from the peer."""
        if self._keepalive is not None:
            self._keepalive.seen(self._loop.time())

    def _ping_due(self) -> None:
        self._ping_timer = None
        keepalive = self._keepalive
        assert keepalive is not None
        action, at = keepalive.poll(self._loop.time())
        if action is KeepaliveAction.PING:
            if not self._send_ping(keepalive.payload()):
                return
        elif action is KeepaliveAction.GONE:
            self._log.info("websocket %s: no answer to a ping within %gs, closing",
                           self._peer, self._limits.ping_timeout)
            self._give_up(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            return
        if at is not None:
            self._ping_timer = self._loop.call_at(at, self._ping_due)

    # -- write progress -------------------------------------------------------------------------

    def paused(self) -> None:
        """The transport refuses more output (``pause_writing``): it must drain from now on."""
        timeout = self._limits.write_timeout
        if timeout > 0 and self._write_timer is None:
            watch = self._write_watch = WriteProgress(timeout)
            at = watch.start(self._loop.time(), self._transport.get_write_buffer_size())
            self._write_timer = self._loop.call_at(at, self._write_due)

    def resumed(self) -> None:
        """``resume_writing``: the buffer drained below its low-water mark."""
        if self._write_timer is not None and not self._closing:
            self._write_timer.cancel()
            self._write_timer = None

    def closing(self) -> None:
        """The session closed the transport (it flushes, then closes): no more pings, and the
        buffered output, if any, must drain until :meth:`lost`."""
        self._closing = True
        self._stop_keepalive()
        if self._transport.get_write_buffer_size() > 0:
            self.paused()

    def _write_due(self) -> None:
        self._write_timer = None
        watch = self._write_watch
        assert watch is not None
        at = watch.poll(self._loop.time(), self._transport.get_write_buffer_size())
        if at is not None:
            self._write_timer = self._loop.call_at(at, self._write_due)
            return
        self._log.warning("websocket %s: the client read nothing for %gs, dropping the "
                          "connection (write_timeout)", self._peer, self._limits.write_timeout)
        self._give_up(CloseCode.POLICY_VIOLATION, "write timeout")

    # -- end ------------------------------------------------------------------------------------

    def _stop_keepalive(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        self._keepalive = None

    def session_over(self) -> None:
        """The session ended: no more pings; the write clock keeps watching a closing
        transport."""
        self._stop_keepalive()
        if not self._closing:
            self.lost()

    def lost(self) -> None:
        """The transport is gone: no more timers."""
        self._stop_keepalive()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
