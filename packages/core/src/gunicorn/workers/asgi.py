"""The ``asgi`` worker: one event loop (asyncio or uvloop) serving ASGI 3 applications.

::

    run():  new loop (asgi_loop) -> tick every <= 0.5 s: heartbeat, parent check, deadlines
            lifespan startup (failure: exit 4, the arbiter halts)
            accept: add_reader on each listener; at worker_connections the readers are removed,
                    so new clients wait in the kernel backlog (never dropped) until a slot frees
            wait for stop (TERM / max_requests / parent gone / reload)
            graceful: stop accepting, close idle connections, finish in-flight responses and
                    websocket sessions (1001) up to graceful_timeout, then lifespan shutdown
    INT/QUIT: the base worker exits at once (no lifespan shutdown).

Connections are :class:`gunicorn.asgi.connection.HTTPConnection` protocols made from accepted
sockets with ``loop.connect_accepted_socket`` (which also runs the TLS handshake). When
``http_protocols`` names a plugin protocol with an asyncio driver (HTTP/2), connections start as
:class:`gunicorn.asgi.switch.ConnectionStart` instead, which picks the protocol (ALPN, preface).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from types import FrameType
from typing import Any

from gunicorn import protocols, tls
from gunicorn.asgi.connection import HTTPConnection
from gunicorn.asgi.context import WorkerContext
from gunicorn.asgi.errors import LifespanFailure
from gunicorn.asgi.lifespan import Lifespan
from gunicorn.asgi.switch import ConnectionStart
from gunicorn.workers.base import APP_LOAD_ERROR, WORKER_BOOT_ERROR, Worker
from gunicorn.workers.connection import accept_nowait

TICK = 0.5
# Connections accepted per listener wake-up. Every worker is woken for a new connection; taking
# one at a time lets a burst of clients spread over the workers instead of landing on whichever
# woke first (the listener stays readable, so the rest are taken on the next loop iterations).
ACCEPT_BATCH = 1
# Accept pacing when plugin protocols (HTTP/2) are offered: after an accept, a worker holding n
# connections waits min(n, PACE_MAX) * PACE_STEP seconds before the next one (at most 1 ms).
PACE_STEP = 0.0001
PACE_MAX = 10


def new_event_loop(choice: str, log: Any) -> asyncio.AbstractEventLoop:
    """The loop ``asgi_loop`` asks for: uvloop, asyncio, or uvloop when importable (auto)."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                log.error("asgi_loop is 'uvloop' but uvloop is not installed "
                          "(pip install 'gunicorn-core[uvloop]')")
                sys.exit(WORKER_BOOT_ERROR)
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ASGIWorker(Worker):
    """Serves up to ``worker_connections`` concurrent connections on one event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ctx: WorkerContext | None = None
        self._stop: asyncio.Future[None] | None = None
        self._listeners: list[socket.socket] = []
        self._accepting = False
        self._accept_failed = False
        self._ssl_context: Any = None
        self._tick_handle: asyncio.TimerHandle | None = None
        # Tasks running connect_accepted_socket (TLS handshakes): the loop only keeps weak
        # references to tasks.
        self._connecting: set[asyncio.Task[None]] = set()
        self._tick_interval = TICK
        self.max_conns = 1
        self._accept_batch = ACCEPT_BATCH
        self._pace = False
        # Set by QUIT/INT before the base handler raises SystemExit: however the loop meets
        # that exception (uvloop may first run callbacks already due, such as the tick that
        # starts a graceful stop once alive is False), a quick stop never runs the graceful
        # stop or the lifespan shutdown.
        self._quitting = False

    # -- process ------------------------------------------------------------------------------

    def run(self) -> None:
        loop = self.loop = new_event_loop(self.cfg.asgi_loop, self.log)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except LifespanFailure as exc:
            self.log.error("Application startup failed, stopping the worker: %s", exc)
            self._close_loop(loop)
            sys.exit(APP_LOAD_ERROR)
        self._close_loop(loop)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvloop takes the signal wakeup fd over while it runs: wake our loop ourselves.
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.request_stop)

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        self._quitting = True
        super().handle_quit(sig, frame)

    def handle_usr1(self, sig: int, frame: FrameType | None) -> None:
        super().handle_usr1(sig, frame)
        loop = self.loop  # as for handle_exit: the loop reopens the logs in _on_wakeup
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_wakeup)

    def request_stop(self) -> None:
        """Begin the graceful stop (idempotent)."""
        stop = self._stop
        if stop is not None and not stop.done():
            stop.set_result(None)

    # -- the loop's main coroutine --------------------------------------------------------------

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        if cfg.threads > 1:
            self.log.warning("the asgi worker ignores threads=%s (it serves on one event loop)",
                             cfg.threads)
        ctx = self.ctx = WorkerContext(self, loop, self.wsgi)
        ctx.on_stop = self.request_stop
        ctx.on_slot_free = self._slot_free
        self._stop = loop.create_future()
        self.max_conns = max(int(cfg.worker_connections), 1)
        if cfg.protocol == "http":
            offered = protocols.ProtocolSet(cfg.http_protocols,
                                            protocols.load(cfg, self.plugins), "asyncio")
            ctx.protocols = offered if offered else None
            self._pace = ctx.protocols is not None
        if cfg.is_ssl:
            try:
                self._ssl_context = tls.ssl_context(
                    cfg, ctx.protocols.alpn if ctx.protocols is not None else None)
            except (OSError, ValueError, TypeError) as exc:
                self.log.error("Cannot build the TLS context: %s", exc)
                sys.exit(WORKER_BOOT_ERROR)
        timeout = float(cfg.timeout)
        self._tick_interval = min(TICK, max(timeout / 4, 0.1)) if timeout > 0 else TICK
        self._tick()
        loop.add_reader(self.wakeup_fd, self._on_wakeup)
        lifespan = Lifespan(ctx.app, cfg.asgi_lifespan, self.log, timeout=cfg.asgi_lifespan_timeout)
        try:
            await lifespan.startup()
            if lifespan.supported:
                ctx.scopes.state = lifespan.state
            self._listeners = [listener.sock for listener in self.sockets]
            for sock in self._listeners:
                sock.setblocking(False)
            self._set_accepting(True)
            if self.alive:
                await self._stop
            if self._quitting:
                return
            await self._graceful()
            await lifespan.shutdown()
        finally:
            self._set_accepting(False)
            loop.remove_reader(self.wakeup_fd)
            if self._tick_handle is not None:
                self._tick_handle.cancel()

    def _tick(self) -> None:
        self.notify()
        if self.alive:
            self.check_parent()
        if not self.alive:
            self.request_stop()
        ctx = self.ctx
        assert ctx is not None and self.loop is not None
        ctx.sweep(self.loop.time())
        if self._accept_failed:
            self._accept_failed = False
            self._slot_free()
        self._tick_handle = self.loop.call_later(self._tick_interval, self._tick)

    def _on_wakeup(self) -> None:
        self.drain_wakeup()
        if not self.alive:
            self.request_stop()

    # -- accepting ------------------------------------------------------------------------------

    def _set_accepting(self, on: bool) -> None:
        if on == self._accepting or self.loop is None:
            return
        self._accepting = on
        for sock in self._listeners:
            if on:
                self.loop.add_reader(sock.fileno(), self._accept, sock)
            else:
                self.loop.remove_reader(sock.fileno())

    def _slot_free(self) -> None:
        ctx = self.ctx
        if (ctx is not None and not self._accepting and self.alive and not ctx.stopping
                and not self._accept_failed and ctx.open_count < self.max_conns):
            self._set_accepting(True)

    def _accept(self, listener: socket.socket) -> None:
        ctx = self.ctx
        assert ctx is not None and self.loop is not None
        for _ in range(self._accept_batch):
            if ctx.open_count >= self.max_conns:
                # New clients wait in the listen backlog until a connection closes.
                self._set_accepting(False)
                return
            try:
                accepted = accept_nowait(listener)
            except OSError as exc:  # EMFILE and friends: back off until the next tick
                self.log.error("accept() failed: %s", exc)
                self._set_accepting(False)
                self._accept_failed = True
                return
            if accepted is None:
                return
            ctx.open_count += 1
            task = self.loop.create_task(self._connect(accepted[0]))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
            if self._pace and ctx.open_count > 1:
                # Long-lived multiplexed connections (HTTP/2) arrive in bursts: pause a little,
                # longer the more connections this worker holds, so the other workers take
                # their share instead of the first one awake taking them all.
                self._set_accepting(False)
                self.loop.call_later(min(ctx.open_count, PACE_MAX) * PACE_STEP, self._slot_free)
                return

    async def _connect(self, sock: socket.socket) -> None:
        ctx = self.ctx
        assert ctx is not None and self.loop is not None
        conn = HTTPConnection(ctx) if ctx.protocols is None else ConnectionStart(ctx)
        kwargs: dict[str, Any] = {}
        if self._ssl_context is not None:
            kwargs["ssl"] = self._ssl_context
            timeout = float(self.cfg.timeout)
            kwargs["ssl_handshake_timeout"] = timeout if timeout > 0 else 60.0
        try:
            await self.loop.connect_accepted_socket(lambda: conn, sock, **kwargs)
        except OSError as exc:  # TLS handshake failure or timeout, reset (ssl.SSLError is one)
            self.log.debug("connection failed before its first request: %s", exc)
            sock.close()
            if not conn.made:
                ctx.connection_closed(conn)

    # -- stopping -------------------------------------------------------------------------------

    async def _graceful(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        ctx.stopping = True
        self._set_accepting(False)
        for conn in list(ctx.connections):
            conn.shutdown()
        if not ctx.connections and not ctx.tasks:
            return
        ctx.idle.clear()
        timeout = float(self.cfg.graceful_timeout)
        try:
            await asyncio.wait_for(ctx.idle.wait(), timeout)
        except asyncio.TimeoutError:
            self.log.warning("graceful timeout: %d connection(s), %d task(s) still open",
                             len(ctx.connections), len(ctx.tasks))
            for conn in list(ctx.connections):
                conn.abort()
            tasks = list(ctx.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)

    def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what is left (tasks outliving the graceful stop) and close the loop."""
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
