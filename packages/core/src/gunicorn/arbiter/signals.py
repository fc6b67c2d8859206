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
import os
import queue
import select
import signal
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

    def reset_in_child(self) -> None:
        """In a forked child: restore default handlers and drop the master's pipe.

        Until this runs, a signal sent to the child would be queued in its copy of the queue
        and written to the master's pipe (the fds are shared after fork).
        """
        signal.set_wakeup_fd(-1)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        for fd in (self._read_fd, self._write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._write_fd = -1
