"""Response output a client has not taken yet, kept so that no thread waits for a slow reader.

The threaded driver serves a response on a pool thread. When the client stops reading, the
thread used to wait for it; instead, :class:`~gunicorn.workers.connection.Connection` keeps the
rest in a :class:`PendingOutput` and the poller thread writes it whenever the socket is
writable. Nothing is copied: a pending item is a view of the bytes the response already made
(holding them alive), or a range of a file sent with ``os.sendfile`` (holding a duplicate of its
descriptor, no memory). The views count against the worker's :class:`OutputBudget`, so a crowd
of slow readers costs a bounded amount of memory; past it the thread waits as it always did.
"""

from __future__ import annotations

import collections
import os
import ssl
import threading
from typing import Any

# send()/sendfile() outcomes that mean "the peer is not taking more yet".
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
SENDFILE_BLOCK = 1 << 30  # bytes per os.sendfile call (gunicorn sends 1 GiB blocks)


class OutputBudget:
    """How many bytes of response output one worker may hold for peers that do not read yet.

    Shared by the connections (and threads) of one worker.
    """

    __slots__ = ("limit", "used", "_lock")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the budget; False (nothing taken) when they do not fit."""
        with self._lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.used -= size


class FileRange:
    """``left`` bytes of a file from ``offset``, through a descriptor of our own."""

    __slots__ = ("fd", "offset", "left")

    def __init__(self, fd: int, offset: int, left: int) -> None:
        self.fd = fd
        self.offset = offset
        self.left = left


class PendingOutput:
    """The output of one connection the peer has not taken, oldest first.

    Not thread-safe: a connection is used by one thread at a time (the pool thread serving it,
    then the poller thread flushing it).
    """

    __slots__ = ("budget", "_items")

    def __init__(self, budget: OutputBudget) -> None:
        self.budget = budget
        # (bytes view or file range, budget bytes it holds)
        self._items: collections.deque[tuple[memoryview | FileRange, int]] = collections.deque()

    def add_bytes(self, data: Any, view: memoryview) -> bool:
        """Keep ``view``, the unsent end of ``data``; False when the budget does not allow it."""
        if type(data) is not bytes:
            # A bytearray could be reused by its producer once send() returned: copy it.
            view = memoryview(bytes(view))
            data = view
        size = len(data)  # the whole object stays alive while a view of it waits
        if not self.budget.reserve(size):
            return False
        self._items.append((view, size))
        return True

    def add_file(self, fd: int, offset: int, count: int) -> bool:
        """Keep ``count`` bytes of the file ``fd`` from ``offset`` (the caller may close
        ``fd``); False when no descriptor is left to hold it."""
        try:
            own = os.dup(fd)
        except OSError:
            return False
        self._items.append((FileRange(own, offset, count), 0))
        return True

    def flush(self, sock: Any) -> bool:
        """Write to ``sock`` until it takes no more; True once everything is written.

        Raises OSError when the peer is gone, or when a file ends before the announced length
        (the peer could not frame what follows, so the connection must end).
        """
        items = self._items
        while items:
            item, size = items[0]
            if type(item) is FileRange:
                if not self._send_file(sock, item):
                    return False
            else:
                try:
                    sent = sock.send(item)
                except WOULD_BLOCK:
                    return False
                if sent < len(item):  # type: ignore[arg-type]
                    items[0] = (item[sent:], size)  # type: ignore[index]
                    return False
            items.popleft()
            self._free(item, size)
        return True

    @staticmethod
    def _send_file(sock: Any, item: FileRange) -> bool:
        while item.left:
            try:
                sent = os.sendfile(sock.fileno(), item.fd, item.offset,
                                   min(item.left, SENDFILE_BLOCK))
            except WOULD_BLOCK:
                return False
            if sent == 0:
                raise OSError(f"file ended {item.left} bytes before the announced length")
            item.offset += sent
            item.left -= sent
        return True

    def clear(self) -> None:
        """Abandon everything (the connection is closing or failed)."""
        items = self._items
        while items:
            self._free(*items.popleft())

    def _free(self, item: memoryview | FileRange, size: int) -> None:
        if type(item) is FileRange:
            os.close(item.fd)
        elif size:
            self.budget.release(size)
