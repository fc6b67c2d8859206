"""The asyncio HTTP/2 driver for the ``asgi`` worker.

::

    transport ──data_received──> H2Protocol ──Session.receive──> events
                                   │ RequestReady: a Stream, its ASGI app run as a task
                                   │ BodyChunk / BodyEnd: queued, the stream's receive() woken
                                   │ StreamGone: http.disconnect, send() raises
                                   │ WindowChanged: senders blocked on the peer's window retry
                                   │ ConnectionGone: every stream disconnected, then close
    Stream.send() ──Session.send_*──> frames ──one write per loop turn──> transport

Everything runs on the worker's loop, so the session needs no lock. The protocol work is the
shared :class:`~gunicorn.http2.session.Session` (the gthread driver uses the same one); this
module only moves bytes and runs the ASGI cycle of each stream:

* each stream's ASGI cycle (:mod:`gunicorn.http2.asgi`) runs as a task, so streams are served
  concurrently; the connection is read at all times, so WINDOW_UPDATE and RST_STREAM are seen
  while applications run;
* the scope is the HTTP/1.1 one (same builder) with ``http_version`` "2" and the RFC 7540
  priority of the stream in ``extensions["http.response.priority"]``;
* the frames produced in one loop iteration, by every stream, leave in one write; a response
  head is held until its first body message, so a small response is HEADERS + DATA;
* an extended CONNECT (RFC 8441, announced when the worker can serve WebSockets) is a
  WebSocket on its stream (:mod:`gunicorn.http2.ws_stream`), driven like the other streams;
* graceful stop: GOAWAY naming the last accepted stream; those finish (WebSockets close with
  1001), then the connection closes. Idle past ``keepalive`` (at least 1 s) with no stream:
  GOAWAY and close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from gunicorn.asgi.context import WorkerContext
from gunicorn.asgi.messages import DrainWaiter
from gunicorn.asgi.scope import socket_address
from gunicorn.hooks import call_user_hook
from gunicorn.http2.asgi import Stream
from gunicorn.http2.errors import StreamClosed
from gunicorn.http2.metrics import NO_METRICS, H2Metrics
from gunicorn.http2.request import SWITCHING, upgraded_request
from gunicorn.http2.session import (
    BodyChunk,
    BodyEnd,
    ConnectionGone,
    RequestReady,
    Session,
    SessionConfig,
    StreamGone,
    WindowChanged,
)
from gunicorn.http2.ws_stream import WebSocketStream, websockets_available
from gunicorn.protocols import Handoff


class CreditWaiter(Protocol):
    """A stream whose output waits for flow-control credit (an ASGI or a WebSocket stream)."""

    def wake_sender(self) -> None: ...


class AsyncioEntry:
    """``ConnectionProtocol.asyncio``: ``entry(ctx, transport, handoff)`` starts serving a
    connection and returns its protocol. Holds the per-worker session settings."""

    def __init__(self, metrics: H2Metrics | None = None) -> None:
        self._config: SessionConfig | None = None
        self._metrics = metrics or NO_METRICS

    def __call__(self, ctx: WorkerContext, transport: Any, handoff: Handoff) -> H2Protocol:
        config = self._config
        if config is None:
            config = self._config = SessionConfig.from_config(
                ctx.cfg, ctx.options, self._metrics,
                enable_connect_protocol=websockets_available())
        conn = H2Protocol(ctx, transport, config)
        conn.start(handoff)
        return conn


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection of the asgi worker.

    Also what the worker sees in ``ctx.connections``: ``deadline``, ``expire()``,
    ``shutdown()``, ``abort()``."""

    __slots__ = ("ctx", "loop", "transport", "session", "peer", "client", "server", "streams",
                 "deadline", "idle", "write_paused", "closed", "_held", "_blocked",
                 "_flush_handle", "_drain_waiter", "_extensions")

    def __init__(self, ctx: WorkerContext, transport: Any, config: SessionConfig) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.transport = transport
        peer = self.peer = transport.get_extra_info("peername")
        self.client = socket_address(peer)
        self.server = socket_address(transport.get_extra_info("sockname"))
        self.session = Session(config, trusted=ctx.forwarded.allows(peer), is_ssl=ctx.is_ssl,
                               now=self.loop.time())
        self.streams: dict[int, Stream | WebSocketStream] = {}
        self.idle = max(ctx.keepalive, 1.0)
        self.deadline = 0.0
        self.write_paused = False
        self.closed = False
        self._held: list[Stream] = []         # streams whose response head waits for a body
        self._blocked: set[CreditWaiter] = set()    # streams waiting for flow-control credit
        self._flush_handle: asyncio.Handle | None = None
        self._drain_waiter = DrainWaiter(ctx.loop)
        base = ctx.scopes.extensions
        self._extensions = {**base, "http.response.priority": {"weight": 16, "depends_on": 0}}

    def start(self, handoff: Handoff) -> None:
        ctx = self.ctx
        ctx.connections.add(self)
        session = self.session
        req = handoff.request
        if handoff.how == "upgrade" and req is not None:
            self.transport.write(SWITCHING)
            events = session.initiate(*upgraded_request(req))
        else:
            events = session.initiate()
        if handoff.data:
            events += session.receive(handoff.data, self.loop.time())
        self._dispatch(events)
        if ctx.stopping:
            session.goaway()
        if not self.streams:
            self.deadline = self.loop.time() + self.idle
        self.flush_now()

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        pass  # started by AsyncioEntry on a transport that is already connected

    def data_received(self, data: bytes) -> None:
        events = self.session.receive(data, self.loop.time())
        if events:
            self._dispatch(events)
        if not self.streams:
            self.deadline = self.loop.time() + self.idle
        self.want_flush()

    def eof_received(self) -> bool | None:
        return None  # the peer is done: close (streams still running see http.disconnect)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.deadline = 0.0
        self.session.closed = True
        streams = list(self.streams.values())
        for stream in streams:
            stream.disconnect()
        self._drain_waiter.release()
        self.ctx.connection_closed(self)
        # Forget every stream (tasks still running keep their own) and break h2's cycle: the
        # connection is freed by reference counting, not by a later full collection.
        self.streams.clear()
        self._held.clear()
        self._blocked.clear()
        self.session.discard()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._drain_waiter.release()
        self._wake_blocked()  # WebSocket output waits for the socket as for a window

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark (or closed)."""
        if self.write_paused and not self.closed:
            await self._drain_waiter.wait()

    # -- what the worker calls ----------------------------------------------------------------

    def expire(self) -> None:
        """Idle past ``keepalive`` (at least 1 s) with no stream: GOAWAY and close."""
        self.deadline = 0.0
        if not self.streams:
            self.session.goaway()
            self.flush_now()
            self._close()

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY(NO_ERROR); accepted streams finish, then the connection closes."""
        for stream in list(self.streams.values()):
            stream.shutdown()  # WebSockets: their Close frames go before the GOAWAY
        self.session.goaway()
        self.flush_now()

    def abort(self) -> None:
        if not self.closed:
            self.transport.abort()

    # -- events -------------------------------------------------------------------------------

    def _dispatch(self, events: list[Any]) -> None:
        handlers = self._HANDLERS
        for ev in events:
            handlers[type(ev)](self, ev)  # every session event has an entry

    def _on_chunk(self, ev: BodyChunk) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.chunks.append(ev.data)
            stream.wake()

    def _on_body_end(self, ev: BodyEnd) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.ended = True
            stream.wake()

    def _on_stream_gone(self, ev: StreamGone) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.disconnect()

    def _on_window(self, ev: WindowChanged) -> None:
        self._wake_blocked()

    def _on_connection_gone(self, ev: ConnectionGone) -> None:
        self.ctx.log.debug("h2 connection from %r ends: %s", self.peer, ev.reason)
        for stream in list(self.streams.values()):
            stream.disconnect()

    def _start_stream(self, ev: RequestReady) -> None:
        if ev.request.upgrade is not None:
            self._start_websocket(ev)
            return
        ctx = self.ctx
        request = ev.request
        stream = self.streams[ev.stream_id] = Stream(self, ev.stream_id, request, ev.ended)
        self.deadline = 0.0
        ctx.count_request()
        if ctx.pre_request is not None:
            call_user_hook(ctx.log, "pre_request hook", ctx.pre_request, ctx.worker, stream.info)
        scope = ctx.scopes.http(request, self.client, self.server)
        scope["http_version"] = "2"
        if ev.weight != 16 or ev.depends_on:
            scope["extensions"] = {**self._extensions, "http.response.priority": {
                "weight": ev.weight, "depends_on": ev.depends_on}}
        else:
            scope["extensions"] = self._extensions
        task = stream.task = self.loop.create_task(stream.run(ctx.app, scope))
        ctx.tasks.add(task)

    def _start_websocket(self, ev: RequestReady) -> None:
        """An extended CONNECT (the session maps one only where it was announced)."""
        self.deadline = 0.0
        self.streams[ev.stream_id] = WebSocketStream.start(self, ev)

    # Session event -> handler(self, event).
    _HANDLERS: Mapping[type[Any], Callable[[H2Protocol, Any], None]] = MappingProxyType({
        RequestReady: _start_stream,
        BodyChunk: _on_chunk,
        BodyEnd: _on_body_end,
        StreamGone: _on_stream_gone,
        WindowChanged: _on_window,
        ConnectionGone: _on_connection_gone,
    })

    def stream_done(self, stream: Stream) -> None:
        """The application of ``stream`` has ended: free the stream, log it."""
        self.streams.pop(stream.sid, None)
        self._blocked.discard(stream)
        self.session.finish(stream.sid)
        ctx = self.ctx
        if stream.status_code and ctx.logs_requests:
            ctx.log_access(stream, time.perf_counter() - stream.started_at)
        if not self.streams:
            self.deadline = self.loop.time() + self.idle
        self.want_flush()

    def block(self, stream: CreditWaiter) -> None:
        """``stream`` waits for flow-control credit (woken by the next WindowChanged)."""
        self._blocked.add(stream)

    def unblock(self, stream: CreditWaiter) -> None:
        self._blocked.discard(stream)

    def _wake_blocked(self) -> None:
        blocked = self._blocked
        if blocked:
            self._blocked = set()
            for stream in blocked:
                stream.wake_sender()

    # -- output -------------------------------------------------------------------------------

    def hold(self, stream: Stream) -> None:
        self._held.append(stream)
        self.want_flush()

    def want_flush(self) -> None:
        """Write what the session produced at the end of this loop iteration (one write for
        the frames of every stream that produced some meanwhile)."""
        if self._flush_handle is None and not self.closed:
            self._flush_handle = self.loop.call_soon(self.flush_now)

    def flush_now(self) -> None:
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        if self.closed:
            return
        held = self._held
        if held:
            self._held = []
            for stream in held:
                try:
                    stream.release_head()
                except StreamClosed:
                    pass  # the connection ended meanwhile
        session = self.session
        data = session.data_to_send()
        if data:
            self.transport.write(data)
        if session.closed or (session.going_away and not self.streams):
            self._close()

    def _close(self) -> None:
        if not self.closed and not self.transport.is_closing():
            self.transport.close()  # flushes what is buffered first
