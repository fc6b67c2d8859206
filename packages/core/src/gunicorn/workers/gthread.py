"""The ``gthread`` worker: a pool of ``threads`` serving connections, one poller thread.

::

    poller thread (main)                          pool threads (cfg.threads)
    ────────────────────                          ──────────────────────────
    epoll_wait ──> listener readable: accept,     conn = queue.get()
                   register conn (ONESHOT)        RequestHandler.serve(conn):
               ──> conn readable ──> queue.put      requests while bytes are there
               ──> every ~0.5 s: close parked     PARK  -> deadline = now + keepalive,
                   conns past their deadline,              re-arm the ONESHOT (one syscall)
                   heartbeat, parent check        CLOSED -> release the slot

EPOLLONESHOT means a connection is reported once, then stays silent until the thread that
served it re-arms it, so no two threads ever hold the same connection and no wake-up pipe is
needed per request. ``worker_connections`` caps open connections: at the cap the listeners are
taken out of the poller and new clients wait in the kernel backlog (never dropped) until a slot
frees. On platforms without epoll a selectors-based poller emulates ONESHOT.

Slow clients never hold a pool thread while they dawdle:

* a request head (or TLS handshake) that is not all there yet is parked in the poller with its
  ``header_timeout`` deadline, counted from its first byte; each byte that arrives costs a pool
  thread one non-blocking read, and the sweep closes the connection once the deadline passes;
* response output the client does not take is kept for it (within ``DEFERRED_OUTPUT_LIMIT``
  bytes per worker) and flushed by the poller thread when the socket is writable; the sweep
  drops a client that took no byte for ``write_timeout`` seconds. Past the budget, or while
  the application's iterator is still producing, the thread waits for the client, at most
  ``write_timeout`` per byte taken;
* saturation: while every pool thread is busy the worker does not accept (the listeners leave
  the poller until a thread frees), so the kernel hands new connections to workers that can
  serve them. Keep-alive connections already accepted are still served. The connection whose
  arrival woke a saturated worker woke no other (EPOLLEXCLUSIVE): the sweep of a worker with
  a free thread tries an accept, so it waits at most ``SWEEP_INTERVAL``.

Stopping: TERM stops accepting and lets in-flight requests finish for up to
``graceful_timeout``; parked keep-alive connections are closed after at most ``DRAIN_IDLE_GRACE``
seconds of idleness, and a request that arrives on one before that is served with
``Connection: close`` (see ``_drain``); QUIT/INT exit at once (base worker).

Other protocols (HTTP/2 from gunicorn-http2, see :mod:`gunicorn.protocols`): a pool thread that
finds a connection switching (ALPN, h2c preface, ``Upgrade``) hands it to the protocol's
threaded driver, which ``adopt``s it: the poller then watches it level-triggered and calls the
driver's ``readable()`` itself (no pool thread is held by an idle or busy connection), calls
``tick(now)`` at each sweep, and ``shutdown()`` on graceful stop; the driver ``submit``s its
per-stream jobs to the same pool and ``release``s the connection when it closes.
"""

from __future__ import annotations

import functools
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn import protocols
from gunicorn.http.persistence import DRAIN_IDLE_GRACE, FIRST_REQUEST_WAIT
from gunicorn.instrument.live import worker_gauges
from gunicorn.workers.base import Worker
from gunicorn.workers.connection import Connection, accept_nowait
from gunicorn.workers.handler import Outcome, RequestHandler
from gunicorn.workers.output import OutputBudget
from gunicorn.workers.poller import make_poller

SWEEP_INTERVAL = 0.5
# Accept pacing step when plugin protocols (HTTP/2) are offered (see _accept).
ACCEPT_PACE = 0.0001
# Response bytes one worker may keep for clients that do not read them yet, instead of holding
# a pool thread per such client (see OutputBudget).
DEFERRED_OUTPUT_LIMIT = 64 << 20


class ThreadWorker(Worker):
    """Serves up to ``worker_connections`` connections with ``threads`` threads.

    ``deferred_output_limit``: response bytes the worker may keep for clients that do not read
    them yet (a subclass may change it; 0 makes every slow write wait on its pool thread).
    """

    deferred_output_limit = DEFERRED_OUTPUT_LIMIT

    def run(self) -> None:
        cfg = self.cfg
        timeout = cfg.timeout
        io_timeout = float(timeout) if timeout > 0 else None
        self.keepalive = float(cfg.keepalive)
        self.head_timeout = float(cfg.header_timeout)
        self.write_timeout = float(cfg.write_timeout) or io_timeout
        self.budget = OutputBudget(self.deferred_output_limit)
        # gunicorn_keepalive_connections: parked between requests (a no-op when metrics are off).
        self.keepalive_count = worker_gauges(self.log).keepalive()
        offered = None
        if cfg.protocol == "http":
            offered = protocols.ProtocolSet(cfg.http_protocols,
                                            protocols.load(cfg, self.plugins), "threaded")
        # fds of protocol-driven connections (HTTP/2) -> their driver; fds never served yet.
        self.drivers: dict[int, protocols.ConnectionDriver] = {}
        self.fresh: set[int] = set()
        self.accept_resume = 0.0
        self.nr_lock = threading.Lock()
        self.handler = RequestHandler(self, multithread=True, keepalive=self.keepalive > 0,
                                      io_timeout=io_timeout, protocols=offered, host=self)
        self.max_conns = max(int(cfg.worker_connections), 1)
        self.poller = make_poller()
        # fd -> open connection; its size is the number of open connections (the cap's count).
        self.conns: dict[int, Connection] = {}
        self.lock = threading.Lock()
        self.jobs: queue.SimpleQueue[Connection | Callable[[], None] | None] = \
            queue.SimpleQueue()
        self.listeners = {listener.sock.fileno(): listener.sock for listener in self.sockets}
        for sock in self.listeners.values():
            sock.setblocking(False)
        self.accepting = False
        # busy[i]: pool thread i is running a job. saturated: every thread was busy when a
        # client knocked, so the listeners left the poller until a thread frees.
        nthreads = max(cfg.threads, 1)
        self.busy = [False] * nthreads
        self.saturated = False
        self._set_accepting(True)
        self.poller.watch(self.wakeup_fd)
        self.pool = [threading.Thread(target=self._serve_forever, args=(i,), name=f"gthread-{i}",
                                      daemon=True)
                     for i in range(nthreads)]
        for thread in self.pool:
            thread.start()
        try:
            self._poll_loop()
            self._drain()
        finally:
            for _ in self.pool:
                self.jobs.put(None)
            self.poller.close()

    # -- the poller thread --------------------------------------------------------------------

    def _poll_loop(self) -> None:
        wait = min(SWEEP_INTERVAL, self.timeout) if self.timeout and self.timeout > 0 \
            else SWEEP_INTERVAL
        listeners = self.listeners
        wakeup = self.wakeup_fd
        conns = self.conns
        jobs = self.jobs
        drivers = self.drivers
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while self.alive:
            self.notify()
            resume = self.accept_resume
            timeout = wait if not resume else max(min(wait, resume - time.monotonic()), 0.0)
            for fd in self.poller.poll(timeout):
                driver = drivers.get(fd)
                if driver is not None:
                    self._drive(driver)
                    continue
                conn = conns.get(fd)
                if conn is not None:
                    if conn.out:
                        self._flush(conn)
                    else:
                        conn.deadline = 0.0  # busy: the sweep leaves it alone
                        jobs.put(conn)
                elif fd in listeners:
                    self._accept(listeners[fd])
                elif fd == wakeup:
                    self.drain_wakeup()
            now = time.monotonic()
            if resume and now >= resume:
                self.accept_resume = 0.0
                with self.lock:
                    self._resume_accepting()
            if now >= next_sweep:
                next_sweep = now + SWEEP_INTERVAL
                self._close_parked(now)
                self._tick_drivers(now)
                self.check_parent()
                if self.accepting and not all(self.busy):
                    # A client that knocked while another worker was saturated woke only that
                    # worker (EPOLLEXCLUSIVE), which left it in the queue: look for it.
                    for sock in listeners.values():
                        self._accept(sock)

    def _drive(self, driver: protocols.ConnectionDriver) -> None:
        self._guarded(driver.readable)

    def _tick_drivers(self, now: float) -> None:
        for driver in list(self.drivers.values()):
            self._guarded(driver.tick, now)

    def _guarded(self, call: Callable[..., None], *args: Any) -> None:
        """Run a protocol driver's entry point on the poller thread."""
        try:
            call(*args)
        except Exception:  # noqa: BLE001 - a protocol driver bug must not stop the poller
            self.log.exception("Unexpected error in a connection driver")

    # -- the ThreadedHost interface (gunicorn.protocols) --------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on a pool thread."""
        self.jobs.put(job)

    def adopt(self, conn: Any, driver: protocols.ConnectionDriver) -> None:
        """The poller reports ``conn`` to ``driver`` from now on (level-triggered)."""
        conn.deadline = 0.0
        with self.lock:
            self.drivers[conn.fd] = driver
        self.poller.discard(conn.fd)
        self.poller.watch(conn.fd)

    def release(self, conn: Any) -> None:
        """A driver is done with ``conn`` (it closes the socket itself)."""
        self.poller.discard(conn.fd)
        with self.lock:
            self.drivers.pop(conn.fd, None)
        self._release(conn)

    def _accept(self, listener: socket.socket) -> None:
        if all(self.busy):
            # No thread could serve a new client before one frees: leave it in the kernel's
            # queue for a worker that can (EPOLLEXCLUSIVE wakes the others once we stop
            # watching), instead of accepting connections we cannot serve.
            self._saturate()
            return
        head_timeout, write_timeout, budget = self.head_timeout, self.write_timeout, self.budget
        while len(self.conns) < self.max_conns:
            accepted = accept_nowait(listener)
            if accepted is None:
                return
            sock, peer = accepted
            if isinstance(peer, tuple):
                # The head and body of a streamed response go out in separate sends; Nagle
                # would hold the second one for the client's delayed ACK.
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            conn = self.handler.connection(sock, peer)
            conn.head_timeout = head_timeout
            conn.write_timeout = write_timeout
            conn.budget = budget
            self.fresh.add(conn.fd)
            # A new client gets a few seconds to send its first request, whatever keepalive says.
            conn.deadline = time.monotonic() + max(self.keepalive, FIRST_REQUEST_WAIT)
            with self.lock:
                self.conns[conn.fd] = conn
            self.poller.add(conn.fd)
            if self.handler.protocols is not None and len(self.conns) > 1:
                # Long-lived HTTP/2 connections arrive in bursts and EPOLLEXCLUSIVE wakes the
                # same worker first: pause accepting a little (longer the more connections we
                # hold, at most 1 ms) so the other workers take their share.
                with self.lock:
                    self._set_accepting(False)
                self.accept_resume = time.monotonic() + min(len(self.conns), 10) * ACCEPT_PACE
                return
        with self.lock:
            if len(self.conns) >= self.max_conns:
                self._set_accepting(False)

    def _saturate(self) -> None:
        """Every pool thread is busy: stop accepting until one frees (see _unsaturate)."""
        with self.lock:
            self.saturated = True
            self._set_accepting(False)
            if not all(self.busy):
                # A thread freed between our look and the flag, and may not have seen it.
                self.saturated = False
                self._resume_accepting()

    def _unsaturate(self) -> None:
        """A pool thread freed while the worker was saturated: accept again."""
        with self.lock:
            if self.saturated:
                self.saturated = False
                self._resume_accepting()

    def _resume_accepting(self) -> None:
        """Watch the listeners again unless something still forbids it (lock held)."""
        if not self.accepting and self.alive and not self.saturated and not self.accept_resume \
                and len(self.conns) < self.max_conns:
            self._set_accepting(True)

    def _set_accepting(self, on: bool) -> None:
        """Put the listeners in or out of the poller (called with the lock held, or at start)."""
        if on == self.accepting:
            return
        self.accepting = on
        for fd in self.listeners:
            if on:
                self.poller.watch(fd, exclusive=True)
            else:
                self.poller.unwatch(fd)

    def _close_parked(self, now: float) -> None:
        """Close parked connections past their deadline: idle keep-alive, a request head not
        complete in time, a client that stopped taking its response."""
        for conn in list(self.conns.values()):
            deadline = conn.deadline
            if deadline and deadline <= now:
                if conn.out:
                    self.log.debug("dropping %r: it took no response byte for %ss", conn.peer,
                                   conn.write_timeout)
                elif conn.head_deadline:
                    self.log.debug("closing %r: request head not complete in time", conn.peer)
                self.poller.discard(conn.fd)  # the fd is still open: safe to unregister
                conn.abort()
                self._release(conn)

    def _flush(self, conn: Connection) -> None:
        """Poller thread: ``conn``'s deferred output can move on. Once it is all written the
        connection waits for its next request, or closes as its handler asked."""
        try:
            done = conn.flush_nowait()
        except OSError as exc:
            self.log.debug("client %r went away: %s", conn.peer, exc)
            conn.abort()
            self._release(conn)
            return
        if not done:
            self._park(conn)  # progress restarts the write_timeout clock
        elif not conn.close_pending:
            self.keepalive_count.idle(conn)
            self._park(conn)  # keep-alive
        elif conn.linger_pending:
            # Lingering reads for up to a second: a pool thread's job, not the poller's.
            conn.deadline = 0.0
            self.jobs.put(functools.partial(self._close_lingering, conn))
        else:
            conn.close()
            self._release(conn)

    def _close_lingering(self, conn: Connection) -> None:
        conn.close(linger=True)
        self._release(conn)

    def _drain(self) -> None:
        """Graceful stop: no new connections; in-flight requests finish; parked ones wind down.

        A parked keep-alive connection is not closed the instant TERM arrives: under load its
        client has usually already sent the next request, and closing then loses that request
        (the classic keep-alive close race, seen as dropped requests during a HUP). Instead each
        parked connection gets ``DRAIN_IDLE_GRACE`` seconds (less if its keep-alive expires
        sooner): a request arriving meanwhile is served with ``Connection: close`` (the worker
        is no longer alive, so the handler refuses keep-alive), an idle one is closed.
        """
        with self.lock:
            self._set_accepting(False)
        now = time.monotonic()
        deadline = now + float(self.cfg.graceful_timeout)
        for parked in list(self.conns.values()):
            if parked.deadline and not parked.out:  # a response still being written may finish
                parked.deadline = min(parked.deadline, now + DRAIN_IDLE_GRACE)
        for adopted in list(self.drivers.values()):
            adopted.shutdown()  # GOAWAY: in-flight streams finish, new ones are refused
        conns, jobs, wakeup, drivers = self.conns, self.jobs, self.wakeup_fd, self.drivers
        next_tick = now + SWEEP_INTERVAL
        while True:
            now = time.monotonic()
            self._close_parked(now)
            if now >= next_tick:
                next_tick = now + SWEEP_INTERVAL
                self._tick_drivers(now)
            if not conns or now >= deadline:
                break
            self.notify()
            for fd in self.poller.poll(0.05):
                driver = drivers.get(fd)
                if driver is not None:
                    self._drive(driver)
                    continue
                conn = conns.get(fd)
                if conn is not None:
                    if conn.out:
                        self._flush(conn)
                    else:
                        conn.deadline = 0.0  # busy: its pool thread closes it after the response
                        jobs.put(conn)
                elif fd == wakeup:
                    self.drain_wakeup()
        if conns:
            self.log.warning("graceful timeout: %d connection(s) still open", len(conns))

    # -- pool threads -------------------------------------------------------------------------

    def _serve_forever(self, index: int) -> None:
        jobs = self.jobs
        busy = self.busy
        while True:
            job = jobs.get()
            if job is None:
                return
            busy[index] = True
            if type(job) is Connection:
                self._serve(job)
            else:
                try:
                    job()  # type: ignore[operator]  # a protocol driver's job
                except Exception:  # noqa: BLE001 - a driver job bug must not kill a pool thread
                    self.log.exception("Unexpected error in a connection driver job")
            # An idle thread must not keep its last job (and what it refers to, such as a
            # closed HTTP/2 connection) alive until the next one arrives.
            job = None
            busy[index] = False
            if self.saturated:
                self._unsaturate()

    def _serve(self, conn: Connection) -> None:
        self.keepalive_count.busy(conn)
        first = conn.fd in self.fresh
        if first:
            self.fresh.discard(conn.fd)
        if not conn.handshaken and not self._handshake_step(conn):
            return
        try:
            outcome = self.handler.serve(conn, 0, first)
        except Exception:  # noqa: BLE001 - a handler bug must not kill a pool thread
            self.log.exception("Unexpected error serving %r", conn.peer)
            conn.abort()
            outcome = Outcome.CLOSED
        if outcome is Outcome.DETACHED:
            return  # a protocol driver owns the connection and will release it
        if outcome is Outcome.PARK or conn.close_pending:
            # Parked even while stopping: the drain serves or expires it (see _drain). A closed
            # connection with output still deferred waits in the poller for it to be written.
            if outcome is Outcome.PARK and not conn.out and not conn.head_deadline:
                self.keepalive_count.idle(conn)  # before the poller may hand it on
            self._park(conn)
            return
        self._release(conn)

    def _handshake_step(self, conn: Connection) -> bool:
        """Advance a TLS handshake without waiting; True once it is complete. Otherwise the
        connection is parked until the client moves (bounded like a request head, by
        header_timeout from its first byte) or closed."""
        try:
            want = conn.handshake_nowait()
            if not want:
                conn.head_deadline = 0.0  # the request head gets a deadline of its own
                return True
            conn.head_wait()  # starts the handshake's clock; raises once it is late
        except OSError as exc:  # ssl.SSLError and ConnectionTimeout are OSErrors
            self.log.debug("TLS handshake with %r failed: %s", conn.peer, exc)
            conn.abort()
            self._release(conn)
            return False
        self._park(conn, writable=want == select.POLLOUT)
        return False

    def _park(self, conn: Connection, writable: bool = False) -> None:
        """Give ``conn`` back to the poller until it is readable (writable: deferred output,
        a handshake that must write) or its deadline passes."""
        idle = self.keepalive if self.alive else min(self.keepalive, DRAIN_IDLE_GRACE)
        conn.deadline = conn.park_deadline(time.monotonic(), idle)
        try:
            self.poller.rearm(conn.fd, writable or bool(conn.out))
        except OSError:
            conn.deadline = 0.0
            conn.abort()
            self._release(conn)

    def _release(self, conn: Connection) -> None:
        """Free the slot of a closed connection; resume accepting below the cap."""
        self.keepalive_count.busy(conn)
        with self.lock:
            # The fd may already belong to a newer connection: only remove our own entry. This
            # also makes a second release of the same connection harmless.
            if self.conns.get(conn.fd) is conn:
                del self.conns[conn.fd]
            self._resume_accepting()
