"""Readiness polling for the gthread worker: epoll with ONESHOT, or an emulation elsewhere.

Two kinds of registrations:

* ``watch(fd)``: level-triggered and permanent (listeners, the signal wake-up fd);
* ``add(fd)`` / ``rearm(fd, writable)``: ONESHOT connections, reported once then disarmed
  until a pool thread re-arms them, for reading or (``writable``: deferred output, a TLS
  handshake that must write) for writing. ``rearm`` is thread-safe.

``poll(timeout)`` returns the ready fds.
"""

from __future__ import annotations

import collections
import os
import select
import selectors


class EpollPoller:
    """Linux: every operation is one syscall and safe to call from any thread."""

    _ONESHOT = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "epoll") else 0
    _ONESHOT_OUT = select.EPOLLOUT | select.EPOLLONESHOT if hasattr(select, "epoll") else 0

    def __init__(self) -> None:
        self._ep = select.epoll()

    def watch(self, fd: int, exclusive: bool = False) -> None:
        mask = select.EPOLLIN
        if exclusive and hasattr(select, "EPOLLEXCLUSIVE"):
            # Wake one worker per new connection instead of all of them (Linux >= 4.5).
            mask |= select.EPOLLEXCLUSIVE
        try:
            self._ep.register(fd, mask)
        except OSError:
            if not exclusive:
                raise
            self._ep.register(fd, select.EPOLLIN)  # kernels without EPOLLEXCLUSIVE

    def unwatch(self, fd: int) -> None:
        self.discard(fd)

    def add(self, fd: int) -> None:
        self._ep.register(fd, self._ONESHOT)

    def rearm(self, fd: int, writable: bool = False) -> None:
        self._ep.modify(fd, self._ONESHOT_OUT if writable else self._ONESHOT)

    def discard(self, fd: int) -> None:
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            pass  # already closed or never registered

    def poll(self, timeout: float) -> list[int]:
        try:
            return [fd for fd, _ in self._ep.poll(timeout)]
        except InterruptedError:
            return []

    def close(self) -> None:
        self._ep.close()


class SelectorPoller:
    """Portable fallback: ONESHOT emulated by unregistering on report.

    Selectors are not thread-safe, so ``rearm`` queues the fd and writes to a pipe; the poller
    thread registers queued fds before each wait.
    """

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._oneshot: set[int] = set()
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ)

    def watch(self, fd: int, exclusive: bool = False) -> None:
        self._sel.register(fd, selectors.EVENT_READ)

    def unwatch(self, fd: int) -> None:
        self.discard(fd)

    def add(self, fd: int) -> None:
        self._oneshot.add(fd)
        self._sel.register(fd, selectors.EVENT_READ)

    def rearm(self, fd: int, writable: bool = False) -> None:
        self._pending.append((fd, selectors.EVENT_WRITE if writable else selectors.EVENT_READ))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the poller is awake already

    def discard(self, fd: int) -> None:
        self._oneshot.discard(fd)
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    def poll(self, timeout: float) -> list[int]:
        while self._pending:
            fd, events = self._pending.popleft()
            self._oneshot.add(fd)
            try:
                self._sel.register(fd, events)
            except (KeyError, ValueError, OSError):
                pass
        ready = []
        for key, _ in self._sel.select(timeout):
            fd = key.fd
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            if fd in self._oneshot:
                self._oneshot.discard(fd)
                self._sel.unregister(fd)
            ready.append(fd)
        return ready

    def close(self) -> None:
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def make_poller() -> EpollPoller | SelectorPoller:
    """The best poller for this platform."""
    return EpollPoller() if hasattr(select, "epoll") else SelectorPoller()
