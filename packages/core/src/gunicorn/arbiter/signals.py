"""The master's signal plumbing: handlers only enqueue, the main loop does the work.

A Python signal handler runs between two bytecodes of whatever the main thread was doing, so
doing real work there (forking, logging, closing sockets) is unsafe. The handlers here put the
signal number on a queue; ``signal.set_wakeup_fd`` writes a byte to a self-pipe at the C level
as the signal arrives, which wakes the loop's ``select`` at once. The loop then drains the queue
and dispatches to ``handle_<name>`` methods.

``wake()`` lets another thread (the control server) wake the loop without a real signal; it
enqueues :data:`WAKEUP`, which dispatches to nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import select
import signal
from collections.abc import Iterator, Mapping
from types import FrameType

from gunicorn import util

MASTER_SIGNALS = (
    signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD,
)
# Not a real signal number: what wake() enqueues.
WAKEUP = signal.NSIG


def signal_name(sig: int) -> str:
    """``SIGHUP`` -> ``"hup"`` (the suffix of the ``handle_<name>`` method)."""
    if sig == WAKEUP:
        return "wakeup"
    return signal.Signals(sig).name[3:].lower()


class SignalQueue:
    """Signals received by the master, waiting to be handled by its loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._read_fd = -1
        self._write_fd = -1

    def install(self) -> None:
        """Create the self-pipe and install the enqueueing handler for every master signal."""
        if self._read_fd < 0:
            self._read_fd, self._write_fd = os.pipe()
            for fd in (self._read_fd, self._write_fd):
                util.set_non_blocking(fd)
                util.close_on_exec(fd)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, self._enqueue)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)

    def _enqueue(self, sig: int, frame: FrameType | None) -> None:
        self._queue.put(sig)

    def put(self, sig: int) -> None:
        """Queue ``sig`` as if it had been received (used by the control server and tests)."""
        self._queue.put(sig)
        self.wake_loop()

    def wake(self) -> None:
        """Wake the loop from another thread without a signal."""
        self.put(WAKEUP)

    def wake_loop(self) -> None:
        if self._write_fd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._write_fd, b"\0")

    def wait(self, timeout: float) -> list[int]:
        """Wait up to ``timeout`` seconds for a signal; return every queued one (maybe none)."""
        if self._queue.empty() and self._read_fd >= 0:
            with contextlib.suppress(InterruptedError):
                select.select([self._read_fd], [], [], max(0.0, timeout))
        self._drain_pipe()
        return self._take_all()

    def wait_for(self, timeout: float, fds: Mapping[int, int]
                 ) -> tuple[list[int], dict[int, int]]:
        """Like :meth:`wait`, also waiting on ``fds`` (fd -> poll event mask).

        Returns the queued signals and the ready fds (fd -> returned events). ``poll`` rather
        than ``select``: the master may hold more than FD_SETSIZE descriptors with many
        workers. Readiness may be stale by the time it is handled (a HUP handled first may
        close an fd and reuse its number), so callers use non-blocking fds only.
        """
        ready: dict[int, int] = {}
        if self._read_fd >= 0:
            poller = select.poll()
            poller.register(self._read_fd, select.POLLIN)
            for fd, events in fds.items():
                poller.register(fd, events)
            wait_ms = 0 if not self._queue.empty() else math.ceil(max(0.0, timeout) * 1000)
            with contextlib.suppress(InterruptedError):
                ready = {fd: ev for fd, ev in poller.poll(wait_ms) if fd != self._read_fd}
        self._drain_pipe()
        return self._take_all(), ready

    def _take_all(self) -> list[int]:
        received = []
        while True:
            try:
                received.append(self._queue.get_nowait())
            except queue.Empty:
                return received

    def _drain_pipe(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            while os.read(self._read_fd, 4096):
                pass

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Hold the master's signals back around a fork.

        A signal reaching the child between fork and :meth:`reset_in_child` would run the
        master's handler there and be lost (a TERM swallowed that way leaves a worker running
        until the SIGKILL deadline). Blocked, it stays pending and is delivered once the child
        has its own dispositions; the parent gets its own pending signals when the block ends.
        """
        old = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def reset_in_child(self, unblock: bool = True) -> None:
        """In a forked child: default dispositions, no master pipe, signals unblocked.

        USR1 is ignored rather than defaulted: its default action terminates, and the master
        may forward a log-reopen request before the worker has installed its own handler.
        With ``unblock=False`` the signals stay blocked: a worker unblocks them once its own
        handlers are in place, so a TERM sent while it boots is a graceful stop, not a kill.
        """
        signal.set_wakeup_fd(-1)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, signal.SIG_IGN if sig == signal.SIGUSR1 else signal.SIG_DFL)
        for fd in (self._read_fd, self._write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._write_fd = -1
        if unblock:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
