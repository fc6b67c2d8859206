"""Blocking driver: one Unix-socket connection to the dirty arbiter shared by many threads.

The protocol work is :class:`gunicorn.dirty.call.CallTable`'s; this module only moves bytes.
Threads share the connection leader/follower style: whichever waiting thread finds nobody
reading becomes the reader, reads one batch, sorts it into the per-call inboxes and wakes the
others; each thread then looks in its own inbox. Nobody holds a lock while blocked on the
socket, and every wait has the caller's own deadline.

The socket is non-blocking and waits go through ``poll`` because a socket-level timeout is one
value per socket, while here each thread has its own deadline.
"""

from __future__ import annotations

import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from gunicorn.dirty.call import CallTable, Event
from gunicorn.dirty.errors import DirtyConnectionError, DirtyError, DirtyTimeoutError

_RECV_SIZE = 256 * 1024


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
    """One connection and its :class:`CallTable`. Broken connections are replaced, not fixed."""

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
        self._cond = threading.Condition()  # guards _table and _reading
        self._send_lock = threading.Lock()
        self._reading = False
        self.closed = False

    # -- life ------------------------------------------------------------------------------

    def usable(self) -> bool:
        """False once broken, closed, inherited through fork, or closed by the arbiter.

        The EOF check matters when the arbiter restarted while we were idle: writing a request
        into the dead connection would turn a clean reconnect into a failed call.
        """
        if self.closed or self._table.broken is not None or self.pid != os.getpid():
            return False
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
        error = DirtyConnectionError(
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

    def start(
        self, starter: Callable[[CallTable], tuple[int, bytes]], deadline: float | None
    ) -> int:
        """Register a call with ``starter(table)`` and send its first frame; returns the id."""
        with self._cond:
            request_id, data = starter(self._table)
        self._send(data, deadline)
        return request_id

    def wait_event(self, request_id: int, deadline: float | None) -> Event | None:
        """The next event of the call, or ``None`` once ``deadline`` passed without one."""
        while True:
            with self._cond:
                while True:
                    event = self._table.next_event(request_id)
                    if event is not None:
                        outgoing = self._table.data_to_send()
                        break
                    left = remaining(deadline)
                    if left == 0.0:
                        return None
                    if not self._reading and not self.closed:
                        self._reading = True
                        break
                    if self.closed and not self._table.is_pending(request_id):
                        return None
                    self._cond.wait(left)
            if event is not None:
                if outgoing:
                    self._send(outgoing, deadline)
                return event
            self._read(deadline)

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

    def _read(self, deadline: float | None) -> None:
        # We are the reader: read one batch without holding _cond, then hand it out.
        data: bytes | None = None
        error: BaseException | None = None
        try:
            left = remaining(deadline)
            timeout_ms = None if left is None else math.ceil(left * 1000)
            if self._poll.poll(timeout_ms):
                data = self._sock.recv(_RECV_SIZE)
        except BlockingIOError:
            data = None  # spurious wake-up
        except OSError as exc:
            error = exc
            data = b""
        with self._cond:
            self._reading = False
            if data == b"":
                if not self.closed:
                    self._lose(error)
            elif data:
                self._table.receive_data(data)
                if self._table.broken is not None:
                    self._lose(self._table.broken)
                outgoing = self._table.data_to_send()
                if outgoing:
                    # Credit for unary calls that collect chunks; small, sent under our lock.
                    self._send_locked_best_effort(outgoing)
            self._cond.notify_all()

    def _send_locked_best_effort(self, data: bytes) -> None:
        try:
            self._send(data, time.monotonic() + 1.0)
        except DirtyError:
            pass  # the reader notices the broken connection on its next read

    def _send(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        if not self._send_lock.acquire(timeout=-1 if deadline is None else remaining(deadline)):
            raise DirtyTimeoutError("timed out waiting to send to the dirty arbiter")
        try:
            while view:
                try:
                    sent = self._sock.send(view)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise self._send_failed(exc) from exc
                view = view[sent:]
                if view and not self._wait_writable(deadline):
                    # Part of a frame is out: the stream is corrupt from here on.
                    raise self._send_failed(TimeoutError("send timed out"))
        finally:
            self._send_lock.release()

    def _wait_writable(self, deadline: float | None) -> bool:
        left = remaining(deadline)
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLOUT)
        return bool(poller.poll(None if left is None else math.ceil(left * 1000)))

    def _send_failed(self, exc: BaseException) -> DirtyConnectionError:
        with self._cond:
            if not self.closed:
                self._lose(exc)
        return DirtyConnectionError(
            f"sending to the dirty arbiter failed: {exc}", socket_path=self.path
        )
