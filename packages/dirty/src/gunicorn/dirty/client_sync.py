"""Blocking driver: one Unix-socket connection to the dirty arbiter shared by many threads.

The protocol work is :class:`gunicorn.dirty.call.CallTable`'s; this module only moves bytes.
Threads share the connection leader/follower style: a waiting thread that finds nobody reading
becomes the reader, reads one batch, sorts it into the per-call inboxes, wakes the followers
if there are any, and looks in its own inbox. Nobody holds a lock while blocked on the socket,
and every wait has the caller's own deadline.

The common case is one thread with one call in flight: it sends, becomes the reader at once,
and its reply is the batch it reads. The socket is non-blocking and waits go through ``poll``
because a socket-level timeout is one value per socket, while here each thread has its own
deadline (and ``poll`` recomputes it when a signal interrupts the wait). The reader tries
``recv`` before ``poll``: when the arbiter shares our CPU it has usually answered by the time
our ``send`` returns, and the round trip is then two system calls rather than three.

Reconnecting after an arbiter restart. When the dirty arbiter exits, the kernel closes its end
of every connection; the next ``send`` on ours fails at once (EPIPE on AF_UNIX), before any
byte of the frame is accepted. The rule: **a request is resent, once, on a fresh connection
only when its frame provably never reached the arbiter** (the send failed because the peer was
gone, or the connection was already known broken when the call started). The arbiter acts on
whole frames only, so such a request cannot have run, whatever it is (``incr`` included). A
request whose frame was written fails with DirtyConnectionError if the connection drops
before its reply: it may have run, so only the caller can decide to repeat it. This replaces
a liveness probe before every call (a ``MSG_PEEK`` recv) with nothing on the fast path; the
probe stays for callers that cannot resend (``usable(probe=True)``).
"""

from __future__ import annotations

import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.dirty.call import CallKind, CallTable, Event
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import DirtyConnectionError, DirtyError, DirtyTimeoutError

_RECV_SIZE = 256 * 1024


class UndeliveredError(DirtyConnectionError):
    """The connection was gone before the request's frame was written: it never reached the
    arbiter, so :class:`~gunicorn.dirty.client.DirtyClient` resends it once on a new
    connection. Travels (and pickles) as a plain DirtyConnectionError."""


def connect_error(path: str, exc: OSError) -> DirtyConnectionError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return DirtyConnectionError(
        f"cannot connect to the dirty arbiter at {path}: {reason} (is the dirty pool running? "
        "HTTP workers get the path from GUNICORN_DIRTY_SOCKET)",
        socket_path=path,
    )


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class SyncConnection:
    """One connection and its :class:`CallTable`. Broken connections are replaced, not fixed.

    Not fork-aware by itself: :class:`~gunicorn.dirty.client.DirtyClient` checks the pid and
    drops connections inherited through ``fork``.
    """

    def __init__(self, path: str, timeout: float | None, max_frame_size: int) -> None:
        self.path = path
        self.pid = os.getpid()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise connect_error(path, exc) from exc
        sock.setblocking(False)
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._table = CallTable(max_frame_size=max_frame_size)
        self._cond = threading.Condition()  # guards _table, _reading and _waiters
        self._send_lock = threading.Lock()
        self._reading = False  # a thread is reading the socket (the leader)
        # Only the reader fills it, and the batch is decoded (copied out) before the reader
        # role is given up. A fresh 256 KiB bytes object per recv() would cost more than the
        # round trip itself: malloc takes it from the top of the heap and trims it back.
        self._rbuf = memoryview(bytearray(_RECV_SIZE))
        self._waiters = 0  # threads in _cond.wait(): followers to wake after a batch
        self.closed = False

    # -- life ------------------------------------------------------------------------------

    def usable(self, probe: bool = False) -> bool:
        """False once broken or closed (by us, or seen closed by the arbiter).

        An arbiter that went away while we were idle is noticed by the next send, which fails
        before the request leaves (see the module docstring). Callers that cannot resend
        ask for a ``probe``: when the connection is idle, a ``MSG_PEEK`` read finds the EOF.
        """
        if self.closed or self._table.broken is not None:
            return False
        if not probe:
            return True
        with self._cond:
            if self._table.pending or self._reading:
                return True
            try:
                peeked = self._sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                return True
            except OSError:
                peeked = b""
            if not peeked:
                self._lose(None)
                return False
            return True  # stray bytes (a late reply); read and dropped by the next reader

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._cond:
            self._table.connection_lost(
                DirtyConnectionError("client closed", socket_path=self.path)
            )
            self._cond.notify_all()
        self._close_socket()

    def _lose(self, exc: BaseException | None) -> None:
        # Caller holds _cond.
        detail = f": {exc}" if exc is not None else ""
        error: DirtyError = DirtyConnectionError(
            f"connection to the dirty arbiter lost{detail}", socket_path=self.path
        )
        if isinstance(exc, DirtyError):
            error = exc
        self._table.connection_lost(error)
        self.closed = True
        self._close_socket()
        self._cond.notify_all()

    def _close_socket(self) -> None:
        if self.pid == os.getpid():
            # Wakes a reader blocked in poll(); never done in a forked child, where the stream
            # is still the parent's.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already disconnected
        self._sock.close()

    # -- calls -----------------------------------------------------------------------------

    def begin(
        self, kind: CallKind, type_: MessageType, payload: Any, deadline: float | None
    ) -> int:
        """Register a call whose first frame is ``type_``/``payload`` and send it; returns
        the id. Raises UndeliveredError when the connection was gone before the frame left."""
        with self._cond:
            if self.closed or self._table.broken is not None:
                raise UndeliveredError("connection to the dirty arbiter already closed",
                                       socket_path=self.path)
            request_id, data = self._table.start(kind, type_, payload)
        self._send(data, deadline)
        return request_id

    def start(
        self, starter: Callable[[CallTable], tuple[int, bytes]], deadline: float | None
    ) -> int:
        """Register a call with ``starter(table)`` and send its first frame; returns the id.
        Raises UndeliveredError as :meth:`begin` does."""
        with self._cond:
            if self.closed or self._table.broken is not None:
                raise UndeliveredError("connection to the dirty arbiter already closed",
                                       socket_path=self.path)
            request_id, data = starter(self._table)
        self._send(data, deadline)
        return request_id

    def wait_event(self, request_id: int, deadline: float | None) -> Event | None:
        """The next event of the call, or ``None`` once ``deadline`` passed without one."""
        cond = self._cond
        table = self._table
        with cond:
            while True:
                event = table.next_event(request_id)
                if event is not None:
                    outgoing = table.data_to_send()  # credit for a consumed chunk
                    break
                if deadline is None:
                    left = None
                else:
                    left = deadline - time.monotonic()
                    if left <= 0.0:
                        return None
                if not self._reading and not self.closed:
                    self._reading = True
                    cond.release()
                    try:
                        size, error = self._recv(left)
                    finally:
                        cond.acquire()
                        self._reading = False
                    self._absorb(size, error)
                    continue
                if self.closed and not table.is_pending(request_id):
                    return None
                self._waiters += 1
                try:
                    cond.wait(left)
                finally:
                    self._waiters -= 1
        if outgoing:
            try:
                self._send(outgoing, deadline)
            except DirtyError:
                pass  # the event is good; the next wait reports the broken connection
        return event

    def cancel(self, request_id: int) -> None:
        """Give up on a call: a CANCEL goes out, any later reply is dropped."""
        with self._cond:
            self._table.cancel(request_id)
            outgoing = self._table.data_to_send()
        if outgoing:
            try:
                self._send(outgoing, time.monotonic() + 1.0)
            except DirtyError:
                pass  # the connection is gone, and with it the call: nothing left to cancel

    # -- bytes -----------------------------------------------------------------------------

    def _recv(self, left: float | None) -> tuple[int, OSError | None]:
        # The leader's read into _rbuf, without the lock: (-1, None) when nothing came in
        # time, (0, error or None) when the connection is gone, else (bytes read, None).
        sock = self._sock
        try:
            try:
                return sock.recv_into(self._rbuf), None
            except BlockingIOError:
                pass  # not answered yet: wait for it
            if self._poll.poll(None if left is None else math.ceil(left * 1000)):
                return sock.recv_into(self._rbuf), None
        except BlockingIOError:
            pass  # spurious wake-up
        except OSError as exc:
            return 0, exc
        return -1, None

    def _absorb(self, size: int, error: OSError | None) -> None:
        # Caller holds _cond and has just given up the reader role: _rbuf[:size] is decoded
        # before anyone can read into it again.
        if size == 0:
            if not self.closed:
                self._lose(error)  # wakes everyone
            return
        if size > 0:
            table = self._table
            table.receive_data(self._rbuf[:size])
            if table.broken is not None:
                self._lose(table.broken)
                return
            outgoing = table.data_to_send()
            if outgoing:
                # Credit for unary calls that collect chunks; small, sent under our lock.
                self._send_best_effort(outgoing)
        if self._waiters:
            # Their events may be in this batch, and one of them must take over reading.
            self._cond.notify_all()

    def _send_best_effort(self, data: bytes) -> None:
        try:
            self._send(data, time.monotonic() + 1.0)
        except DirtyError:
            pass  # the reader notices the broken connection on its next read

    def _send(self, data: bytes, deadline: float | None) -> None:
        lock = self._send_lock
        if not lock.acquire(False):
            left = remaining(deadline)
            if not lock.acquire(timeout=-1 if left is None else left):
                raise DirtyTimeoutError("timed out waiting to send to the dirty arbiter")
        try:
            sent = self._send_some(data)
            if sent < len(data):
                self._send_rest(memoryview(data)[sent:], deadline)
        finally:
            lock.release()

    def _send_some(self, data: bytes | memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            # Nothing of this frame was accepted, or only part of it: either way the arbiter
            # cannot have acted on it.
            raise self._send_failed(exc, UndeliveredError) from exc

    def _send_rest(self, view: memoryview, deadline: float | None) -> None:
        # A large frame, or a full socket buffer: wait for room, within the deadline.
        while view:
            if not self._wait_writable(deadline):
                # Part of a frame is out: the stream is corrupt from here on.
                raise self._send_failed(TimeoutError("send timed out"), DirtyConnectionError)
            view = view[self._send_some(view):]

    def _wait_writable(self, deadline: float | None) -> bool:
        left = remaining(deadline)
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLOUT)
        return bool(poller.poll(None if left is None else math.ceil(left * 1000)))

    def _send_failed(
        self, exc: BaseException, cls: type[DirtyConnectionError]
    ) -> DirtyConnectionError:
        with self._cond:
            if not self.closed:
                self._lose(exc)
        return cls(f"sending to the dirty arbiter failed: {exc}", socket_path=self.path)
