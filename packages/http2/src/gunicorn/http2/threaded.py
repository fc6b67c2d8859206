"""The threaded HTTP/2 driver for the gthread worker.

::

    gthread poller thread                      pool threads (cfg.threads, shared)
    ─────────────────────                      ──────────────────────────────────
    socket readable ──> H2Driver.readable():   Stream.run(): the core's WSGI exchange
      recv (non-blocking) -> Session.receive     wsgi.input  <- chunks (wait on cond),
      -> RequestReady: submit(Stream.run) ─────>               credit returned as read
      -> BodyChunk / BodyEnd / StreamGone /      response    -> Session.send_* under lock,
         WindowChanged: update, notify_all                      wait on cond for window
      flush what it can without blocking       flush(blocking) writes the socket
    every ~0.5 s: tick(): idle timeout, GOAWAY drain    stream_finished(), maybe_close()

The application side of a stream is :mod:`gunicorn.http2.wsgi` (an ``ExchangeStream`` of
:mod:`gunicorn.wsgi.exchange`, so the PEP 3333 rules, hooks and access log are HTTP/1.1's).

Why the poller reads: a connection then costs no thread while idle or while its streams run,
``worker_connections`` h2 connections need no extra threads, and WINDOW_UPDATE frames are
read even when every pool thread is blocked sending (a pool thread reading its own connection
could deadlock waiting for credit only another read would bring). The poller never blocks:
bytes it cannot write at once are left for a pool thread to flush.

Locks: ``lock`` guards the session and stream state (``cond`` waits on it); ``write_lock``
serialises socket writes so frames leave in the order the session produced them; TLS sockets
also take ``io_lock`` around each recv/send (an SSL object must not be used by two threads at
once). Every wait is bounded by the worker's I/O timeout.
"""

from __future__ import annotations

import select
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

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

RECV_SIZE = 65536
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def serve(host: Any, conn: Any, handoff: Handoff) -> None:
    """Take over ``conn`` (called on a pool thread by the gthread worker)."""
    H2Driver(host, conn, handoff).start()


class H2Driver:
    """One HTTP/2 connection on the gthread worker."""

    def __init__(self, host: Any, conn: Any, handoff: Handoff) -> None:
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
        config = SessionConfig(handler.options, cfg.http2_max_concurrent_streams,
                               cfg.http2_initial_window_size, cfg.http2_max_frame_size,
                               cfg.http2_max_header_list_size, cfg.http2_max_request_body,
                               cfg.http2_max_reset_rate)
        self.session = Session(config, trusted=handler.forwarded.allows(conn.peer),
                               is_ssl=conn.is_ssl, now=time.monotonic())
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.write_lock = threading.Lock()
        self.io_lock = threading.Lock() if conn.is_ssl else None
        self.want_flush = False
        self.leftover = b""
        self.streams: dict[int, Stream] = {}
        self.last_active = time.monotonic()
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
            idle = not self.streams and now - self.last_active > self.idle
            if idle:
                self.session.goaway()
        if idle:
            self.flush(False)
            self._close()
        else:
            self.maybe_close()

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY; streams already accepted finish; then close."""
        with self.lock:
            self.session.goaway()
        self.flush(False)
        self.maybe_close()

    def stream_finished(self, stream: Stream) -> None:
        """A pool thread is done with ``stream``: free it (a response cut short is reset) and
        write what is left of it."""
        with self.lock:
            self.streams.pop(stream.sid, None)
            self.session.finish(stream.sid)
        self.flush(True)

    def maybe_close(self, wait: bool = False) -> None:
        """Close once the session is over. ``wait`` (pool threads only): first let a write in
        progress on another thread finish, and write what is left, so nothing is cut off."""
        with self.lock:
            done = self.session.closed or (self.session.going_away and not self.streams)
        if done and not self.closed:
            self.flush(wait, wait)
            self._close()

    def _close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self._abort("connection closed")
        self.host.release(self.conn)
        self.conn.close()

    def _abort(self, reason: str) -> None:
        """Wake every stream so its application stops waiting (lock held)."""
        for stream in self.streams.values():
            stream.gone = True
        self.session.closed = True
        self.cond.notify_all()

    # -- events (lock held) -------------------------------------------------------------------

    def _dispatch(self, events: list[Any]) -> None:
        handlers = self._HANDLERS
        for ev in events:
            handlers[type(ev)](self, ev)  # every session event has an entry

    def _on_request(self, ev: RequestReady) -> None:
        stream = self.streams[ev.stream_id] = Stream(self, ev)
        self.host.submit(stream.run)

    def _on_chunk(self, ev: BodyChunk) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.chunks.append(ev.data)
            self.cond.notify_all()

    def _on_body_end(self, ev: BodyEnd) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.ended = True
            stream.trailers = ev.trailers
            self.cond.notify_all()

    def _on_stream_gone(self, ev: StreamGone) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.gone = True
            self.cond.notify_all()

    def _on_window(self, ev: WindowChanged) -> None:
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
        try:
            if self.io_lock is None:
                return sock.recv(RECV_SIZE)
            with self.io_lock:
                return sock.recv(RECV_SIZE)
        except _WOULD_BLOCK:
            return None
        except (ssl.SSLEOFError, ConnectionResetError):
            return b""
        except OSError as exc:
            self.log.debug("h2 read from %r failed: %s", self.conn.peer, exc)
            return b""

    def flush(self, blocking: bool, wait: bool = False) -> None:
        """Write what the session produced. Non-blocking (poller thread): leave the rest for a
        pool thread; blocking: wait for the socket up to the I/O timeout.

        A thread already writing writes our frames too (it loops while ``want_flush`` is set),
        so we do not wait for it unless ``wait``: the frames of many streams then leave in one
        send, and pool threads do not queue up on the lock."""
        self.want_flush = True  # set before trying, so a busy holder loops once more for us
        while self.want_flush:
            if not self.write_lock.acquire(wait):
                return
            try:
                self.want_flush = False
                while True:
                    if not self.leftover:
                        with self.lock:
                            self.leftover = self.session.data_to_send()
                        if not self.leftover:
                            break
                    if not self._send(blocking):
                        if not blocking and not self.closed:
                            self.host.submit(self._flush_job)
                        return
            finally:
                self.write_lock.release()

    def _flush_job(self) -> None:
        self.flush(True)

    def _send(self, blocking: bool) -> bool:
        """Send ``leftover``; False when it could not all go (non-blocking, or failed)."""
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
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0 or not self.conn.wait(select.POLLOUT, left):
                    raise TimeoutError(f"{self.conn.peer!r} stopped reading")
        except OSError as exc:
            self.leftover = b""
            self.log.debug("h2 write to %r failed: %s", self.conn.peer, exc)
            with self.lock:
                self._abort(str(exc))
            return False
        self.leftover = b""
        return True
