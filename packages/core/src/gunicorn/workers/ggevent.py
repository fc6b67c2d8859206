"""The ``gevent`` worker: one greenlet per connection, at most ``worker_connections`` of them.

::

    main greenlet                  acceptor (one per listener)      connection greenlets (Pool)
    ─────────────                  ───────────────────────────      ───────────────────────────
    every 0.5 s: notify,           wait for a free slot and a       RequestHandler.serve(conn):
      tick HTTP/2 drivers,           readable listener, accept,       the WSGI exchange, as on
      check the parent               spawn a connection greenlet      sync and gthread
    TERM: drain (below)                                             PARK -> wait until readable
                                                                      (keepalive, header_timeout)
                                                                    DETACHED -> read for HTTP/2

Requests are served by the same HTTP/1.1 engine and WSGI exchange as the other workers
(:class:`~gunicorn.workers.handler.RequestHandler`, :class:`~gunicorn.workers.connection.
Connection`): its sockets are non-blocking and every wait goes through ``Connection.wait``,
that is ``select.poll``, which monkey-patching makes cooperative (``gevent.select.poll``). So a
greenlet simply waits for a slow client, within ``header_timeout``, ``write_timeout`` and the
I/O timeout, as a sync worker would, while the others run.

Monkey-patching: :meth:`GeventWorker.patch` (``gevent.monkey.patch_all()``) runs first thing in
the worker process, before the application is imported, as in gunicorn. The master is never
patched (its signals, self-pipe and fork stay plain). With ``preload_app`` the application is
imported in the master, before any patching: patch at the top of the application module or the
config file yourself (see docs/migrating.md).

Heartbeat: only the main greenlet notifies the arbiter. A request that waits cooperatively
(patched ``time.sleep``, sockets, locks) lets it run; one that blocks the hub (a CPU loop, an
unpatched blocking call) stops every greenlet, and the arbiter kills the worker after
``timeout``, as gunicorn does.

Stopping: TERM stops accepting; in-flight requests finish within ``graceful_timeout``; idle
keep-alive connections get ``DRAIN_IDLE_GRACE`` (a request already on its way is served with
``Connection: close``) and are then closed. QUIT/INT exit at once.

HTTP/2 (gunicorn-http2): the worker is the ``ThreadedHost`` of the plugin's threaded driver
(:mod:`gunicorn.protocols`), with greenlets for threads: ``submit`` spawns a greenlet per
stream job, and the connection's own greenlet calls the driver's ``readable()`` whenever the
socket is readable once it ``adopt``\\s it; the driver's locks and conditions are
``threading``'s, made cooperative by the patching.
"""

from __future__ import annotations

import errno
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import gevent
from gevent import monkey
from gevent.pool import Group, Pool
from gevent.socket import wait_read
from gunicorn import protocols
from gunicorn.http.persistence import DRAIN_IDLE_GRACE, FIRST_REQUEST_WAIT
from gunicorn.workers.base import Worker
from gunicorn.workers.connection import Connection, accept_nowait
from gunicorn.workers.handler import Outcome, RequestHandler

# How often the main greenlet notifies the arbiter and ticks protocol drivers (their contract:
# about twice a second, see gunicorn.protocols.ConnectionDriver.tick).
TICK_INTERVAL = 0.5
# Connections one wake-up of an acceptor may take. With several workers on one listener a
# worker takes one at a time, so the others (woken too: no EPOLLEXCLUSIVE here) get their share.
MAX_ACCEPT = 100
# accept() failing for lack of resources (descriptors, buffers): wait this long and retry.
ACCEPT_BACKOFF = 0.1
_ACCEPT_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Expired(Exception):
    """A cooperative wait reached its timeout (raised by gevent inside the wait)."""


class _Woken(Exception):
    """Thrown into a greenlet blocked in a :class:`_Waits` wait to end it early."""


def _readable(fd: int, timeout: float | None) -> bool:
    """Wait cooperatively until ``fd`` is readable; False after ``timeout`` seconds."""
    try:
        wait_read(fd, timeout, timeout_exc=_Expired)
    except _Expired:
        return False
    return True


class _Waits:
    """Greenlets blocked waiting for a connection to become readable, which another greenlet
    may end early (the graceful stop closes idle connections; a driver releasing a connection
    ends its reader's wait)."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[Connection, Any] = {}  # -> the greenlet waiting on it

    def readable(self, conn: Connection, timeout: float | None) -> bool:
        """Wait until ``conn`` is readable: False on timeout or when interrupted."""
        self._waiting[conn] = gevent.getcurrent()
        try:
            return _readable(conn.fd, timeout)
        except _Woken:
            return False
        finally:
            del self._waiting[conn]

    def interrupt(self, conn: Connection) -> None:
        """End the wait on ``conn`` in progress when the hub next runs (none: nothing)."""
        gevent.get_hub().loop.run_callback(self._throw, conn)

    def interrupt_all(self) -> None:
        for conn in list(self._waiting):
            self.interrupt(conn)

    def _throw(self, conn: Connection) -> None:
        # Runs in the hub. A greenlet resumed meanwhile left the dict before running anything
        # else, so the exception can only land in the wait itself, never in a request.
        greenlet = self._waiting.get(conn)
        if greenlet is not None:
            greenlet.throw(_Woken)


class GeventWorker(Worker):
    """Serves up to ``worker_connections`` connections concurrently, a greenlet each.

    Also the ``ThreadedHost`` of protocol drivers (``handler``, ``keepalive``, ``submit``,
    ``adopt``, ``release``; see :mod:`gunicorn.protocols`).
    """

    app_interface = "wsgi"

    # -- start-up -------------------------------------------------------------------------------

    def patch(self) -> None:
        """Monkey-patch the standard library (gunicorn's method: a subclass may patch more, or
        less, e.g. ``psycogreen``)."""
        monkey.patch_all()

    def init_process(self) -> None:
        self.patch()
        # A hub the master made before forking (a preloaded app that used gevent) shares its
        # event loop with the master: give the child its own.
        gevent.reinit()
        super().init_process()

    def run(self) -> None:
        cfg = self.cfg
        timeout = cfg.timeout
        io_timeout = float(timeout) if timeout > 0 else None
        self.keepalive = float(cfg.keepalive)
        self.head_timeout = float(cfg.header_timeout)
        self.write_timeout = float(cfg.write_timeout) or io_timeout
        offered = None
        if cfg.protocol == "http":
            offered = protocols.ProtocolSet(cfg.http_protocols,
                                            protocols.load(cfg, self.plugins), "threaded")
        self.handler = RequestHandler(self, multithread=True, keepalive=self.keepalive > 0,
                                      io_timeout=io_timeout, protocols=offered, host=self)
        self.pool = Pool(max(int(cfg.worker_connections), 1))
        self.jobs = Group()  # protocol drivers' jobs (HTTP/2 streams)
        self.drivers: dict[Connection, protocols.ConnectionDriver] = {}
        self.idle = _Waits()  # connections between requests (or in a request head)
        self.readers = _Waits()  # connections adopted by a driver
        self.max_accept = 1 if cfg.workers > 1 else MAX_ACCEPT
        acceptors = []
        for listener in self.sockets:
            listener.sock.setblocking(False)
            acceptors.append(gevent.spawn(self._accept_loop, listener.sock))
        interval = min(TICK_INTERVAL, self.timeout) if self.timeout and self.timeout > 0 \
            else TICK_INTERVAL
        while self.alive:
            self.notify()
            if _readable(self.wakeup_fd, interval):
                self.drain_wakeup()
            self._tick_drivers()
            self.check_parent()
        gevent.killall(acceptors)
        self._drain()

    # -- signals --------------------------------------------------------------------------------

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        self._off_the_hub(self._hook_then_exit, self.cfg.worker_int, 0)

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        self.aborted = True
        self._off_the_hub(self._hook_then_exit, self.cfg.worker_abort, 1)

    def _hook_then_exit(self, hook: Callable[[Worker], Any], code: int) -> None:
        # The hook runs before ``alive`` is cleared (the base worker clears it first): a hook
        # that waits lets the other greenlets run, and the main one would end the process
        # with a normal stop before the hook is done.
        self._run_hook(hook)
        self.alive = False
        sys.exit(code)

    def _off_the_hub(self, handler: Callable[..., None], *args: Any) -> None:
        # A Python signal handler runs in whichever greenlet is running. In the hub the user's
        # hook could not wait for anything (the hub cannot switch out), so it gets a greenlet
        # of its own, as in gunicorn; in any other greenlet it runs at once, so the signal also
        # stops a worker stuck in a greenlet that never yields. Its SystemExit reaches the
        # main greenlet either way (gevent re-raises it there).
        if gevent.getcurrent() is gevent.get_hub():
            gevent.spawn(handler, *args)
        else:
            handler(*args)

    # -- accepting ------------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        pool = self.pool
        fd = listener.fileno()
        while self.alive:
            pool.wait_available()  # at worker_connections new clients wait in the backlog
            if not _readable(fd, None):
                continue
            for _ in range(self.max_accept):
                if pool.full() or not self.alive:
                    # Stopping (max_requests was just reached): the client waits in the backlog
                    # for another worker.
                    break
                try:
                    accepted = accept_nowait(listener)
                except OSError as exc:
                    if exc.errno not in _ACCEPT_RETRY:
                        # The listener itself is broken: stop, so the arbiter starts a worker
                        # that may have better luck, instead of living on without accepting.
                        self.log.error("accept failed, stopping the worker: %s", exc)
                        self.alive = False
                        self._wake()
                        return
                    self.log.error("accept failed (retrying in %ss): %s", ACCEPT_BACKOFF, exc)
                    gevent.sleep(ACCEPT_BACKOFF)
                    break
                if accepted is None:
                    break
                pool.spawn(self._serve_client, *accepted)

    # -- one connection -------------------------------------------------------------------------

    def _serve_client(self, sock: socket.socket, peer: Any) -> None:
        if isinstance(peer, tuple):
            # The head and body of a streamed response go out in separate sends; Nagle
            # would hold the second one for the client's delayed ACK.
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        handler = self.handler
        try:
            conn = handler.connection(sock, peer)
        except OSError as exc:  # the client left before its socket could be set up (TLS)
            self.log.debug("closing connection from %r: %s", peer, exc)
            sock.close()
            return
        conn.head_timeout = self.head_timeout
        conn.write_timeout = self.write_timeout
        try:
            if conn.is_ssl:
                conn.handshake()  # header_timeout in all, like a request head
            # A new client gets a few seconds to send its first request, whatever keepalive says.
            idle = max(self.keepalive, FIRST_REQUEST_WAIT)
            fresh = True
            outcome = Outcome.PARK
            while outcome is Outcome.PARK:
                if not self._await_request(conn, idle):
                    conn.close()
                    return
                outcome = handler.serve(conn, 0, fresh)
                fresh = False
                idle = self.keepalive if self.alive else min(self.keepalive, DRAIN_IDLE_GRACE)
            if outcome is Outcome.DETACHED:
                self._read_for_driver(conn)
        except OSError as exc:  # the TLS handshake failed or timed out (ssl.SSLError included)
            self.log.debug("closing connection from %r: %s", peer, exc)
            conn.abort()
        except Exception:  # noqa: BLE001 - a handler bug must not end without a trace
            self.log.exception("Unexpected error serving %r", peer)
            conn.abort()

    def _await_request(self, conn: Connection, idle: float) -> bool:
        """Wait until ``conn`` has bytes: ``idle`` seconds between requests, or within the
        deadline of a request head in progress. False: expired, or closed by the drain."""
        if conn.pending():
            return True  # TLS holds decrypted bytes the socket no longer reports
        now = time.monotonic()
        deadline = conn.park_deadline(now, idle)
        left = None if deadline == float("inf") else max(deadline - now, 0.0)
        if self.idle.readable(conn, left):
            return True
        if conn.head_deadline:
            self.log.debug("closing %r: request head not complete in time", conn.peer)
        return False

    def _read_for_driver(self, conn: Connection) -> None:
        """The connection's greenlet reads for the protocol driver that adopted it, until the
        driver releases it."""
        while True:
            driver = self.drivers.get(conn)
            if driver is None:
                return
            if self.readers.readable(conn, None):
                self._guarded(driver.readable)

    # -- the ThreadedHost interface (gunicorn.protocols) ----------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` in a greenlet of its own."""
        self.jobs.spawn(self._guarded, job)

    def adopt(self, conn: Any, driver: protocols.ConnectionDriver) -> None:
        """``driver.readable()`` is called whenever ``conn`` is readable from now on."""
        self.drivers[conn] = driver

    def release(self, conn: Any) -> None:
        """The driver is done with ``conn`` (it closes the socket itself)."""
        if self.drivers.pop(conn, None) is not None:
            self.readers.interrupt(conn)

    def _tick_drivers(self) -> None:
        now = time.monotonic()
        for driver in list(self.drivers.values()):
            self._guarded(driver.tick, now)

    def _guarded(self, call: Callable[..., None], *args: Any) -> None:
        """Run a protocol driver's entry point or job."""
        try:
            call(*args)
        except Exception:  # noqa: BLE001 - a protocol driver bug must not end without a trace
            self.log.exception("Unexpected error in a connection driver")

    # -- stopping -------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Graceful stop: in-flight requests finish within ``graceful_timeout``; idle
        connections are closed after ``DRAIN_IDLE_GRACE``; drivers send GOAWAY."""
        now = time.monotonic()
        deadline = now + float(self.cfg.graceful_timeout)
        grace = now + DRAIN_IDLE_GRACE
        for driver in list(self.drivers.values()):
            self._guarded(driver.shutdown)  # in-flight streams finish, new ones are refused
        pool, jobs = self.pool, self.jobs
        next_tick = now + TICK_INTERVAL
        while len(pool) or len(jobs):
            now = time.monotonic()
            if now >= deadline:
                self.log.warning("graceful timeout: %d connection(s) still open", len(pool))
                return
            self.notify()
            if now >= grace:
                self.idle.interrupt_all()
            if now >= next_tick:
                next_tick = now + TICK_INTERVAL
                self._tick_drivers()
            wake = min(next_tick, deadline, grace if grace > now else next_tick)
            (pool if len(pool) else jobs).join(timeout=max(wake - now, 0.01))
