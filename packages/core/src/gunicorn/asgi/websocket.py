"""One WebSocket of the ``asgi`` worker: the asyncio driver of the ASGI websocket scope.

The worker's connection protocol parses the upgrade request with the HTTP/1.1 parser, sees
:func:`is_websocket_upgrade`, builds the ``websocket`` scope and hands the connection over::

    session = WebSocketSession(transport=HTTP1Transport(transport, request), scope=...,
                               app=..., cfg=..., log=..., loop=..., on_close=callback)
    session.data_received(parser.trailing_data())   # then every later transport callback
    task = loop.create_task(session.run())
    session.shutdown()                               # graceful server stop: close 1001

The same session serves a WebSocket over one HTTP/2 stream (RFC 8441): the http2 plugin's
stream is the ``transport`` then. What a carrier must do is
:class:`gunicorn.asgi.ws_transport.WebSocketTransport`.

Phases (anything else is an :class:`ProtocolViolation` from ``send``)::

    CONNECTING --websocket.accept--> OPEN --(close handshake, EOF, failure)--> DONE
        |  --websocket.close--> 403 ------------------------------------------> DONE
        |  --websocket.http.response.start--> DENYING --last body--> ---------> DONE
        '  --app error / returns--> 500 --------------------------------------> DONE

The byte-level work is sans-IO: :mod:`gunicorn.asgi.ws_handshake` (HTTP answers),
:mod:`gunicorn.asgi.ws_extensions` (permessage-deflate negotiation), :mod:`gunicorn.asgi.ws_codec`
(frames <-> ASGI messages) and :mod:`gunicorn.asgi.ws_keepalive` (when to ping, when a peer is
gone). This module only moves bytes, queues messages for ``receive()``, applies flow control and
keeps the timers:

* close: the wait for the peer's Close frame (5 s), also the most a failed connection lingers;
* keepalive (``websocket_ping_interval`` / ``websocket_ping_timeout``, in
  :class:`~gunicorn.asgi.ws_watchdog.Watchdog`): an unanswered ping closes with 1011 and drops
  the transport;
* write progress (``write_timeout``, in the watchdog too): while the transport is paused, output
  must drain; a peer that stops reading is closed with 1008 (the Close frame is queued behind
  the unread bytes, so it rarely arrives) and the transport is dropped, which releases an
  application blocked in ``send()``;
* the disconnect grace period of the application.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from gunicorn.asgi.ws_codec import (
    CloseCode,
    Message,
    MessageCodec,
    disconnect_message,
)
from gunicorn.asgi.ws_errors import ClientDisconnected, HandshakeRefused, ProtocolViolation
from gunicorn.asgi.ws_extensions import negotiate_deflate
from gunicorn.asgi.ws_handshake import is_websocket_upgrade
from gunicorn.asgi.ws_limits import WebSocketLimits
from gunicorn.asgi.ws_transport import WebSocketTransport
from gunicorn.asgi.ws_watchdog import Watchdog

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

__all__ = ["WebSocketSession", "is_websocket_upgrade"]

# RFC 6455 §7.1.1 leaves the wait for the peer's Close frame to the server; 5 s as gunicorn.
CLOSE_TIMEOUT = 5.0
# Bytes a client may send before the application accepts, and messages queued for an
# application that does not call receive(), before the server stops reading from the socket.
PENDING_LIMIT = 64 * 1024
INBOX_HIGH_WATER = 1024 * 1024

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]


class _Phase(Enum):
    CONNECTING = 1   # the application has not answered the handshake yet
    DENYING = 2      # a websocket.http.response is being sent
    OPEN = 3         # 101 sent: frames flow; the codec knows whether it is closing
    DONE = 4         # the connection is over or being torn down


class WebSocketSession:
    """Serve one WebSocket opening handshake with an ASGI application.

    Arguments (all keyword-only):
        transport: its carrier (:class:`~gunicorn.asgi.ws_transport.WebSocketTransport`: an
            HTTP/1.1 connection or an HTTP/2 stream), which holds the opening request; the
            session answers, writes and closes through it.
        scope: the ``websocket`` scope built by the worker; the session adds the
            ``websocket.http.response`` extension.
        app: the ASGI 3 application.
        cfg: the worker's Config (``asgi_disconnect_grace_period``).
        log: the worker's logger; loop: the running event loop.
        on_close: called once, without arguments, when :meth:`run` ends.
        limits: the worker's shared :class:`WebSocketLimits` (message size, deflate, pings,
            write timeout, and the count of open WebSockets); None reads them from ``cfg``
            (a private count).

    The carrier forwards ``data_received``, ``eof_received``, ``connection_lost``,
    ``pause_writing`` and ``resume_writing``. :meth:`run` never raises (except
    ``CancelledError`` when its own task is cancelled, which also cancels the application).

    :attr:`status` is the HTTP status that answered the handshake (101 or 200 on HTTP/2, 403,
    426, a denial's status...), None while the application has not answered; for the access log.
    """

    def __init__(self, *, transport: WebSocketTransport, scope: dict[str, Any], app: ASGIApp,
                 cfg: CoreSettings, log: Any, loop: asyncio.AbstractEventLoop,
                 on_close: Callable[[], object], limits: WebSocketLimits | None = None) -> None:
        self._transport = transport
        # A copy: the worker may share one extensions dict between scopes.
        extensions = dict(scope.get("extensions") or {})
        extensions["websocket.http.response"] = {}
        scope["extensions"] = extensions
        self._scope = scope
        self._app = app
        self._log = log
        self._loop = loop
        self._on_close = on_close
        self._limits = limits if limits is not None else WebSocketLimits.from_config(cfg)
        self._slot = False
        self._grace = float(cfg.asgi_disconnect_grace_period)
        self._phase = _Phase.CONNECTING
        self._pending = bytearray()
        self._codec: MessageCodec | None = None
        self._inbox: deque[Message] = deque([{"type": "websocket.connect"}])
        self._inbox_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._final: Message | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        self._lost = False
        self._lingering = False
        self._closed: asyncio.Future[None] = loop.create_future()
        self._close_timer: asyncio.TimerHandle | None = None
        self._grace_timer: asyncio.TimerHandle | None = None
        self._watchdog = Watchdog(loop=loop, transport=transport, limits=self._limits, log=log,
                                  peer=_peer(scope), send_ping=self._send_ping,
                                  give_up=self._give_up)
        self._app_task: asyncio.Task[None] | None = None
        self._grace_expired = False
        self._shutdown_requested = False
        self.status: int | None = None

    # -- the session ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Check the handshake, run the application, finish the close; then ``on_close()``."""
        try:
            try:
                self._transport.check_handshake()
            except HandshakeRefused as exc:
                self._log.debug("websocket handshake refused (%s %s): %s", exc.status,
                                exc.reason, exc)
                self.status = exc.status
                self._refuse(exc.status, exc.reason, exc.headers)
                self._finish_transport()
                return
            if not self._take_slot():
                return
            self._app_task = self._loop.create_task(self._call_app())
            await self._app_task
            await self._closed
        finally:
            self._cancel_timers()
            if self._app_task is not None and not self._app_task.done():
                self._app_task.cancel()
            if self._slot:
                self._slot = False
                self._limits.release()
            if self._codec is not None:  # it was accepted: count how it ended
                disconnect = self._codec.disconnect or {}
                self._limits.sessions.closed(disconnect.get("code", CloseCode.ABNORMAL))
            self._on_close()

    def _take_slot(self) -> bool:
        """Count this WebSocket against ``websocket_max_connections``; at the cap answer 503
        so that the worker's remaining slots stay for plain HTTP."""
        limits = self._limits
        if limits.acquire():
            self._slot = True
            return True
        if not limits.full:
            limits.full = True
            self._log.warning("websocket_max_connections (%d) reached: upgrades are answered "
                              "503 until a WebSocket closes", limits.max_connections)
        self.status = 503
        self._refuse(503, "Service Unavailable")
        self._finish_transport()
        return False

    async def _call_app(self) -> None:
        error: BaseException | None = None
        try:
            await self._app(self._scope, self._receive, self._send)
        except asyncio.CancelledError:
            if not self._grace_expired:
                raise
            self._log.debug("websocket application cancelled after the disconnect grace period")
        except Exception as exc:  # noqa: BLE001 - user code: any error becomes 500/1011 + log
            error = exc
        self._app_finished(error)

    def _app_finished(self, error: BaseException | None) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        if error is not None and not isinstance(error, ClientDisconnected):
            self._log.exception("Error in ASGI websocket application", exc_info=error)
        phase = self._phase
        if phase is _Phase.CONNECTING:
            if error is None:
                self._log.error("ASGI websocket application returned without accepting or "
                                "closing the connection")
            self.status = 500
            self._refuse(500, "Internal Server Error")
            self._finish_transport()
        elif phase is _Phase.DENYING:
            # A half-sent denial response: only closing the connection can end it.
            self._finish_transport()
        elif phase is _Phase.OPEN:
            assert self._codec is not None
            if error is None or isinstance(error, ClientDisconnected):
                self._start_close(CloseCode.NORMAL, "")
            else:
                self._start_close(CloseCode.INTERNAL_ERROR, "")
        else:
            self._finish_transport()

    def shutdown(self) -> None:
        """Graceful server stop: close an open WebSocket with 1001 (going away). A handshake
        still waiting for the application is closed the same way right after its accept."""
        self._shutdown_requested = True
        if self._phase is _Phase.OPEN:
            self._start_close(CloseCode.GOING_AWAY, "server shutting down")

    # -- ASGI receive / send ----------------------------------------------------------------------

    async def _receive(self) -> Message:
        while not self._inbox:
            if self._final is not None:
                return self._final
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        message = self._inbox.popleft()
        if message["type"] == "websocket.receive":
            self._inbox_bytes -= _size(message)
            if self._reading_paused and self._inbox_bytes <= INBOX_HIGH_WATER // 2:
                self._resume_reading()
        elif message["type"] == "websocket.disconnect":
            self._final = message
        return message

    async def _send(self, message: Message) -> None:
        if not isinstance(message, dict):
            raise ProtocolViolation(f"ASGI messages are dicts, not {type(message).__name__}")
        kind = message.get("type")
        phase = self._phase
        if phase is _Phase.OPEN:
            assert self._codec is not None
            self._write(self._codec.encode(message))
            self._after_codec()
        elif phase is _Phase.CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                # ASGI: closing before accepting rejects the handshake with 403.
                self.status = 403
                self._refuse(403, "Forbidden")
                self._finish_transport()
            elif kind == "websocket.http.response.start":
                self.status = self._transport.send_denial_start(message)
                self._phase = _Phase.DENYING
            else:
                raise ProtocolViolation(f"unexpected ASGI message {kind!r} before the "
                                        "websocket handshake was answered")
        elif phase is _Phase.DENYING:
            if kind != "websocket.http.response.body":
                raise ProtocolViolation(f"expected websocket.http.response.body, got {kind!r}")
            if self._transport.send_denial_body(message):
                self._finish_transport()
        elif kind != "websocket.close":
            # ASGI 2.4: sending on a closed connection raises an IOError subclass.
            raise ClientDisconnected(f"{kind} on a closed WebSocket")
        if not self._writable.is_set():
            await self._writable.wait()

    def _accept(self, message: Message) -> None:
        limits = self._limits
        transport = self._transport
        deflate = None
        if limits.per_message_deflate:
            deflate = negotiate_deflate(transport.extension_offers())
        self.status = transport.send_accept(
            message.get("subprotocol"), self._scope.get("subprotocols") or (),
            message.get("headers"), deflate.header if deflate is not None else None)
        self._phase = _Phase.OPEN
        self._codec = MessageCodec(limits.max_message_size, deflate, limits.deflate_level)
        limits.sessions.opened()
        self._watchdog.start_keepalive()
        early = bytes(self._pending)
        self._pending.clear()
        if self._reading_paused:
            self._resume_reading()
        if early:
            self._feed(early)
        if self._shutdown_requested and self._phase is _Phase.OPEN:
            self._start_close(CloseCode.GOING_AWAY, "server shutting down")

    # -- transport callbacks ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Bytes from the client (after the request head)."""
        if not data:
            return
        phase = self._phase
        if phase is _Phase.OPEN:
            self._watchdog.seen()
            self._feed(data)
        elif phase is _Phase.CONNECTING:
            # Frames sent before our 101 (optimistic clients): kept for the codec, bounded.
            self._pending += data
            if len(self._pending) > PENDING_LIMIT:
                self._pause_reading()
        # DENYING / DONE: nothing more is read from this connection.

    def eof_received(self) -> None:
        """The client shut down its sending side: the WebSocket cannot go on."""
        if self._phase is _Phase.OPEN:
            self._feed(None)
        elif self._phase is not _Phase.DONE:
            self._connection_over()
        self._lingering = False
        self._finish_transport()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The transport is closed (by either side)."""
        self._lost = True
        self._watchdog.lost()
        self._connection_over()
        self._writable.set()
        self._set_closed()
        task = self._app_task
        if task is not None and not task.done() and self._grace_timer is None:
            self._grace_timer = self._loop.call_later(self._grace, self._grace_over)

    def pause_writing(self) -> None:
        self._writable.clear()
        if not self._lost:
            self._watchdog.paused()

    def resume_writing(self) -> None:
        self._writable.set()
        self._watchdog.resumed()

    # -- internals --------------------------------------------------------------------------------

    def _feed(self, data: bytes | None) -> None:
        assert self._codec is not None
        messages = self._codec.feed(data)
        self._write(self._codec.take_output())
        if messages:
            self._deliver(messages)
        self._after_codec()

    def _after_codec(self) -> None:
        codec = self._codec
        assert codec is not None
        if codec.finished:
            self._finish_transport(linger=codec.failed)
        elif codec.closing and self._close_timer is None:
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)

    def _start_close(self, code: int, reason: str) -> None:
        assert self._codec is not None
        self._write(self._codec.close(code, reason))
        self._after_codec()

    def _send_ping(self, payload: bytes) -> bool:
        codec = self._codec
        if codec is None or not codec.can_send or self._lost or self._lingering:
            return False
        self._write(codec.ping(payload))
        return True

    def _give_up(self, code: int, reason: str) -> None:
        """Close with ``code`` (the frame is queued, and sent if the socket takes it) and drop
        the transport now; the application receives the disconnect with ``code``."""
        codec = self._codec
        if self._phase is _Phase.OPEN and codec is not None:
            self._deliver(codec.terminate(code, reason))
            self._write(codec.take_output())
        else:
            self._connection_over()
        self._phase = _Phase.DONE
        if not self._lost:
            self._transport.abort()
        self._set_closed()

    def _close_timed_out(self) -> None:
        self._close_timer = None
        self._log.debug("websocket close handshake timed out")
        if self._codec is not None:
            self._deliver(self._codec.abort())
        self._phase = _Phase.DONE
        if not self._lost:
            self._transport.abort()
        self._set_closed()

    def _connection_over(self) -> None:
        """Deliver the final disconnect (1006 unless a code is known) and stop sending."""
        if self._codec is not None:
            self._deliver(self._codec.abort())
        elif self._final is None and not any(
                m["type"] == "websocket.disconnect" for m in self._inbox):
            self._deliver([disconnect_message(CloseCode.ABNORMAL)])
        self._phase = _Phase.DONE

    def _deliver(self, messages: list[Message]) -> None:
        for message in messages:
            if message["type"] == "websocket.receive":
                self._inbox_bytes += _size(message)
            self._inbox.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._inbox_bytes > INBOX_HIGH_WATER:
            self._pause_reading()

    def _can_write(self) -> bool:
        return not self._lost and not self._lingering and not self._transport.is_closing()

    def _write(self, data: bytes) -> None:
        if data and self._can_write():
            self._transport.write(data)

    def _refuse(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer the handshake with an error, unless the peer is gone already (it may leave
        before the application answers, or even before the handshake is checked)."""
        if self._can_write():
            self._transport.send_refusal(status, reason, headers)

    def _finish_transport(self, linger: bool = False) -> None:
        """Close the connection after the buffered bytes are flushed (the server closes TCP
        first, RFC 6455 §7.1.1); the session is then over.

        ``linger``: the peer may still be sending (we failed the connection, §7.1.7). Closing a
        socket with unread bytes makes the kernel reset the connection, destroying our Close
        frame; so the sending side is shut down instead, and what arrives is discarded until
        the peer's EOF, for at most ``CLOSE_TIMEOUT``.
        """
        if self._phase is not _Phase.DONE:
            self._connection_over()
        if self._lost:
            self._set_closed()
            return
        transport = self._transport
        if self._lingering:
            return  # until the peer's EOF, connection_lost or the close timer
        if linger and transport.can_write_eof() and not transport.is_closing():
            self._lingering = True
            transport.write_eof()
            self._resume_reading()
            if self._close_timer is None:
                self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)
            return
        transport.close()
        self._watchdog.closing()
        self._set_closed()

    def _set_closed(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if not self._closed.done():
            self._closed.set_result(None)

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self._lost:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost and not self._transport.is_closing():
                self._transport.resume_reading()

    def _grace_over(self) -> None:
        self._grace_timer = None
        task = self._app_task
        if task is not None and not task.done():
            self._grace_expired = True
            task.cancel()

    def _cancel_timers(self) -> None:
        for timer in (self._close_timer, self._grace_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._grace_timer = None
        self._watchdog.session_over()


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "(unix socket)"


def _size(message: Message) -> int:
    data = message.get("bytes")
    return len(data) if data is not None else len(message.get("text") or "")
