"""The threaded HTTP/2 driver for the gthread worker.

::

    gthread poller thread                      pool threads (cfg.threads, shared)
    ─────────────────────                      ──────────────────────────────────
    socket readable ──> H2Driver.readable():   Stream.run(): the core's WSGI exchange
      recv (non-blocking) -> Session.receive     wsgi.input  <- chunks (wait on cond),
      -> RequestReady: held until the body is                   credit returned as read
         complete or fills the stream window,    response    -> Session.send_* under lock;
         then submit(Stream.run) ─────────────>  what the window refuses is kept, the thread
      -> BodyChunk / BodyEnd / StreamGone:       returns (PausedExchange)
         update, notify_all                    Stream.resume(): the paused body goes on
      -> WindowChanged: send kept output,   ──>  flush(blocking) writes the socket
         resume paused bodies                  stream_finished(), maybe_close()
      flush what it can without blocking
    every ~0.5 s: tick(): idle timeout, body deadlines, GOAWAY drain

The application side of a stream is :mod:`gunicorn.http2.wsgi` (an ``ExchangeStream`` of
:mod:`gunicorn.wsgi.exchange`, so the PEP 3333 rules, hooks and access log are HTTP/1.1's).

Why the poller reads: a connection then costs no thread while idle or while its streams run,
``worker_connections`` h2 connections need no extra threads, and WINDOW_UPDATE frames are
read even when every pool thread is busy. No pool thread waits for a client's HTTP/2 flow
control either:

* a request whose body is not complete is not started until it is, or until it fills the
  stream's window (``hold_limit``; the client can send no more before the application reads),
  or until the connection's window is spent (the client can send nothing on any stream): a
  client announcing bodies it never sends costs stream slots, not threads, and such a stream
  is reset after the I/O timeout without progress;
* output the client's windows do not allow is kept (``budget`` bytes per connection) and sent
  from the poller thread when credit arrives; an iterable body pauses meanwhile and resumes as
  a new job. Past the budget a thread waits, bounded by the I/O timeout.

A stream reset before its job started is dropped (its application never runs); one reset while
its application runs keeps its slot in the session's count until the application returns.

Closing: only the thread that holds ``write_lock`` with nothing left to write (or whose write
failed) closes the socket, so a GOAWAY being written by one thread is never cut off by another
closing the connection; ``maybe_close`` only marks the connection ``closing`` and asks for a
flush.

Locks: ``lock`` guards the session and stream state (``cond`` waits on it); ``write_lock``
serialises socket writes so frames leave in the order the session produced them; TLS sockets
also take ``io_lock`` around each recv/send (an SSL object must not be used by two threads at
once). Every wait is bounded by the worker's I/O timeout.
"""

from __future__ import annotations

import functools
import select
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any

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
from gunicorn.http2.wsgi import Stream
from gunicorn.protocols import Handoff
from gunicorn.workers.output import OutputBudget
from gunicorn.wsgi.exchange import PausedExchange
from h2.errors import ErrorCodes

RECV_SIZE = 65536
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Response bytes one connection may keep for streams waiting for flow-control credit.
OUTPUT_BUDGET = 4 << 20
# Request body bytes a stream may buffer before its application starts (the stream's window
# bounds it first).
HOLD_LIMIT = 1 << 20
# The connection window is "spent" below this: the client cannot send a useful frame more.
SPENT_WINDOW = 1024


class _Write(Enum):
    DONE = 1     # everything written
    BLOCKED = 2  # the socket takes no more now (non-blocking)
    FAILED = 3   # the peer is gone; what was left is abandoned


def serve(host: Any, conn: Any, handoff: Handoff, metrics: H2Metrics | None = None) -> None:
    """Take over ``conn`` (called on a pool thread by the gthread worker)."""
    H2Driver(host, conn, handoff, metrics or NO_METRICS).start()


class H2Driver:
    """One HTTP/2 connection on the gthread worker."""

    def __init__(self, host: Any, conn: Any, handoff: Handoff,
                 metrics: H2Metrics = NO_METRICS) -> None:
        handler = host.handler
        cfg = handler.cfg
        self.host = host
        self.conn = conn
        self.handoff = handoff
        self.log = handler.log
        self.runner = handler.runner
        self.dates = handler.dates
        self.io_timeout: float | None = handler.io_timeout
        self.idle = max(float(host.keepalive or 0), 1.0)
        config = SessionConfig.from_config(cfg, handler.options, metrics)
        self.session = Session(config, trusted=handler.forwarded.allows(conn.peer),
                               is_ssl=conn.is_ssl, now=time.monotonic())
        self.hold_limit = min(config.initial_window_size, HOLD_LIMIT)
        self.budget = OutputBudget(OUTPUT_BUDGET)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.write_lock = threading.Lock()
        self.io_lock = threading.Lock() if conn.is_ssl else None
        self.want_flush = False
        self.flush_queued = False
        self.leftover = b""
        self.streams: dict[int, Stream] = {}   # every stream not finished
        self.held: dict[int, Stream] = {}      # ... waiting for their body before starting
        self.kept: dict[int, Stream] = {}      # ... with output waiting for credit
        self.last_active = time.monotonic()
        self.closing = False  # close once everything is written
        self.closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        handoff = self.handoff
        events: list[Any]
        with self.lock:
            if handoff.how == "upgrade" and handoff.request is not None:
                self.leftover = SWITCHING
                events = self.session.initiate(*upgraded_request(handoff.request))
            else:
                events = self.session.initiate()
            if handoff.data:
                events += self.session.receive(handoff.data, time.monotonic())
            # Adopted under the lock: the poller's first read waits until the bytes read
            # before the switch have been fed, so the session sees them in order.
            self.host.adopt(self.conn, self)
            self._dispatch(events)
        self.flush(True)
        self.maybe_close()

    def readable(self) -> None:
        """Poller thread: read what is there, hand out the events, write what we can."""
        if self.closed:
            return
        data = self._recv()
        if data is None:
            return
        now = time.monotonic()
        self.last_active = now
        with self.lock:
            if data:
                self._dispatch(self.session.receive(data, now))
            else:
                self._abort("the peer closed the connection")
        self.flush(False)
        self.maybe_close()

    def tick(self, now: float) -> None:
        if self.closed:
            return
        with self.lock:
            if not self.streams and now - self.last_active > self.idle:
                self.session.goaway()
            if self.held and self.io_timeout is not None:
                self._expire_held(now - self.io_timeout)
        self.flush(False)
        self.maybe_close()

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY; streams already accepted finish; then close."""
        with self.lock:
            self.session.goaway()
        self.flush(False)
        self.maybe_close()

    def maybe_close(self) -> None:
        """Close once the session is over and everything it produced is written (by whoever
        writes last: see :meth:`flush`)."""
        with self.lock:
            if self.closing or self.closed:
                return
            session = self.session
            if not (session.closed or (session.going_away and not self.streams)):
                return
            self.closing = True  # before flush() sets want_flush: a writer sees both
        self.flush(False)

    def _close(self) -> None:
        """Close the socket (write_lock held, nothing left to write)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self._abort("connection closed")
        self.host.release(self.conn)
        self.conn.close()
        with self.lock:
            # Nothing refers back to the driver once its streams are forgotten; threads still
            # running an application hold their stream until they return.
            self.streams.clear()
            self.held.clear()
            self.kept.clear()
            self.session.discard()

    def _abort(self, reason: str) -> None:
        """The connection is over: wake every stream so its application stops waiting, drop
        what waits for the client (lock held)."""
        self.session.closed = True
        for stream in list(self.streams.values()):
            stream.gone = True
            self._drop_output(stream)
            if not stream.started or stream.finishing:
                self._finish(stream)
            else:
                self._resume(stream)  # a paused body: closes the iterable, logs the exchange
        self.held.clear()
        self.cond.notify_all()

    # -- streams (lock held unless said otherwise) ----------------------------------------------

    def begin(self, stream: Stream) -> bool:
        """A pool thread is about to run ``stream``'s application; False if it was reset or
        the connection ended meanwhile (it is then already finished)."""
        with self.lock:
            if stream.gone:
                return False
            stream.started = True
            return True

    def _start(self, stream: Stream) -> None:
        self.held.pop(stream.sid, None)
        self.host.submit(stream.run)

    def _start_starved(self) -> None:
        """The client may be unable to send anything more (connection window spent) while
        every stream holding its bytes waits for the rest of its body: start the one with
        the most bytes buffered, so its application frees credit."""
        if self.session.inbound_window() >= SPENT_WINDOW:
            return
        fullest = max(self.held.values(), key=lambda s: s.buffered)
        if fullest.buffered:
            self._start(fullest)

    def _expire_held(self, before: float) -> None:
        for stream in list(self.held.values()):
            if stream.idle_since < before:
                self.log.debug("h2 stream %d from %r: no request body in time, reset",
                               stream.sid, self.conn.peer)
                stream.gone = True
                self.session.reset(stream.sid, ErrorCodes.CANCEL)
                self._finish(stream)

    def keep(self, stream: Stream, data: bytes, rest: memoryview, end: bool) -> bool:
        """Keep ``rest`` (the unsent end of ``data``) until credit arrives; False when the
        connection's budget does not allow it (the caller then waits)."""
        size = len(data)  # the whole object stays alive while a view of it waits
        if not self.budget.reserve(size):
            return False
        stream.reserved += size
        stream.out.append((rest, end))
        self.kept[stream.sid] = stream
        return True

    def _push(self, stream: Stream) -> None:
        """Send what ``stream`` kept, as far as the windows allow."""
        out = stream.out
        session = self.session
        while out:
            view, end = out[0]
            sent = session.send_body(stream.sid, view, end)
            if sent < len(view):
                out[0] = (view[sent:], end)
                return
            out.popleft()
        if stream.out_end is not None:
            session.end(stream.sid, stream.out_end or None)
            stream.out_end = None
        self._release(stream)
        if stream.paused is not None:
            self._resume(stream)
        elif stream.finishing:
            self._finish(stream)
        self.cond.notify_all()  # a writer over the budget may go on

    def _release(self, stream: Stream) -> None:
        self.kept.pop(stream.sid, None)
        if stream.reserved:
            self.budget.release(stream.reserved)
            stream.reserved = 0

    def _drop_output(self, stream: Stream) -> None:
        stream.out.clear()
        stream.out_end = None
        self._release(stream)

    def pause(self, stream: Stream, paused: PausedExchange) -> None:
        """A pool thread: ``stream``'s exchange paused on kept output; resume it when that
        is sent (now, if it already was)."""
        with self.lock:
            if stream.out and not stream.gone:
                stream.paused = paused
                return
        self.host.submit(functools.partial(stream.resume, paused))

    def _resume(self, stream: Stream) -> None:
        """Hand a paused exchange to a pool thread (once: it is taken off the stream)."""
        paused, stream.paused = stream.paused, None
        if paused is not None:
            self.host.submit(functools.partial(stream.resume, paused))

    def stream_finished(self, stream: Stream) -> None:
        """A pool thread is done with ``stream``'s exchange: free it (a response cut short is
        reset) and write what is left of it; kept output is sent first."""
        with self.lock:
            if stream.out and not (stream.aborted or stream.gone):
                stream.finishing = True
                return
            self._finish(stream)
        self.flush(True)

    def _finish(self, stream: Stream) -> None:
        self._drop_output(stream)
        self.held.pop(stream.sid, None)
        if self.streams.pop(stream.sid, None) is not None:
            self.session.finish(stream.sid)

    # -- events (lock held) -------------------------------------------------------------------

    def _dispatch(self, events: list[Any]) -> None:
        handlers = self._HANDLERS
        for ev in events:
            handlers[type(ev)](self, ev)  # every session event has an entry
        if self.held:
            self._start_starved()

    def _on_request(self, ev: RequestReady) -> None:
        stream = self.streams[ev.stream_id] = Stream(self, ev, self.last_active)
        if ev.ended or not self.hold_limit:
            self.host.submit(stream.run)
        else:
            self.held[ev.stream_id] = stream

    def _on_chunk(self, ev: BodyChunk) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.chunks.append(ev.data)
            stream.buffered += len(ev.data)
            if stream.sid in self.held:
                stream.idle_since = self.last_active
                if stream.buffered >= self.hold_limit:
                    self._start(stream)
            else:
                self.cond.notify_all()

    def _on_body_end(self, ev: BodyEnd) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.ended = True
            stream.trailers = ev.trailers
            if stream.sid in self.held:
                self._start(stream)
            else:
                self.cond.notify_all()

    def _on_stream_gone(self, ev: StreamGone) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is None:
            return
        stream.gone = True
        self._drop_output(stream)
        if not stream.started or stream.finishing:
            self._finish(stream)  # never started (or already done): nothing runs for it
        else:
            self._resume(stream)  # a paused body: closes the iterable, logs the exchange
        self.cond.notify_all()

    def _on_window(self, ev: WindowChanged) -> None:
        if self.kept:
            for stream in list(self.kept.values()):
                self._push(stream)
        self.cond.notify_all()  # senders waiting for credit look again

    def _on_connection_gone(self, ev: ConnectionGone) -> None:
        self.log.debug("h2 connection from %r ends: %s", self.conn.peer, ev.reason)
        self._abort(ev.reason)

    # Session event -> handler(self, event), run with the lock held.
    _HANDLERS: Mapping[type[Any], Callable[[H2Driver, Any], None]] = MappingProxyType({
        RequestReady: _on_request,
        BodyChunk: _on_chunk,
        BodyEnd: _on_body_end,
        StreamGone: _on_stream_gone,
        WindowChanged: _on_window,
        ConnectionGone: _on_connection_gone,
    })

    # -- socket I/O ---------------------------------------------------------------------------

    def _recv(self) -> bytes | None:
        sock = self.conn.sock
        data: bytes
        try:
            if self.io_lock is None:
                data = sock.recv(RECV_SIZE)
            else:
                with self.io_lock:
                    data = sock.recv(RECV_SIZE)
        except _WOULD_BLOCK:
            return None
        except (ssl.SSLEOFError, ConnectionResetError):
            return b""
        except OSError as exc:
            self.log.debug("h2 read from %r failed: %s", self.conn.peer, exc)
            return b""
        return data

    def flush(self, blocking: bool) -> None:
        """Write what the session produced. Non-blocking (poller thread): leave the rest for a
        pool thread; blocking: wait for the socket up to the I/O timeout.

        A thread already writing writes our frames too (it loops while ``want_flush`` is set),
        so we never wait for it: the frames of many streams then leave in one send, and pool
        threads do not queue up on the lock. The writer that finds nothing left to write on
        a ``closing`` connection (or whose write failed) closes it."""
        self.want_flush = True  # set before trying, so a busy holder loops once more for us
        while self.want_flush:
            if not self.write_lock.acquire(False):
                return
            try:
                self.want_flush = False
                outcome = self._write_out(blocking)
                if outcome is _Write.BLOCKED:
                    if not self.flush_queued and not self.closed:
                        self.flush_queued = True
                        self.host.submit(self._flush_job)
                    return
                if outcome is _Write.FAILED or self.closing:
                    self._close()
                    return
            finally:
                self.write_lock.release()

    def _flush_job(self) -> None:
        self.flush_queued = False
        self.flush(True)

    def _write_out(self, blocking: bool) -> _Write:
        """Write ``leftover`` and what the session has (write_lock held)."""
        while True:
            if self.closed:
                self.leftover = b""
                return _Write.DONE
            if not self.leftover:
                with self.lock:
                    self.leftover = self.session.data_to_send()
                if not self.leftover:
                    return _Write.DONE
            outcome = self._send(blocking)
            if outcome is not _Write.DONE:
                return outcome

    def _send(self, blocking: bool) -> _Write:
        """Send ``leftover``."""
        sock = self.conn.sock
        view = memoryview(self.leftover)
        deadline = None if self.io_timeout is None else time.monotonic() + self.io_timeout
        try:
            while view:
                try:
                    if self.io_lock is None:
                        sent = sock.send(view)
                    else:
                        with self.io_lock:
                            sent = sock.send(view)
                    view = view[sent:]
                    continue
                except _WOULD_BLOCK:
                    pass
                if not blocking:
                    self.leftover = view.tobytes()
                    return _Write.BLOCKED
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0 or not self.conn.wait(select.POLLOUT, left):
                    raise TimeoutError(f"{self.conn.peer!r} stopped reading")
        except OSError as exc:
            self.leftover = b""
            self.log.debug("h2 write to %r failed: %s", self.conn.peer, exc)
            with self.lock:
                self._abort(str(exc))
            return _Write.FAILED
        self.leftover = b""
        return _Write.DONE
