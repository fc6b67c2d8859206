"""The dirty arbiter's side of its workers: fork, link, signal, reap.

Each worker gets a socketpair made before the fork (no socket files per worker) and a heartbeat
file (:class:`gunicorn.workers.heartbeat.Heartbeat`). The arbiter end of the socketpair is
served by :class:`ArbiterLink`, which hands every frame to the arbiter.

Forking happens inside the arbiter's running event loop. The child never returns to that loop:
it drops the arbiter's signal wiring and sockets, runs :func:`gunicorn.dirty.worker.run_worker`
on a fresh loop and leaves with ``os._exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.dirty.codec import Frame, FrameDecoder
from gunicorn.dirty.errors import DirtyError, DirtyProtocolError
from gunicorn.dirty.link import TransportLink
from gunicorn.workers.heartbeat import Heartbeat

if TYPE_CHECKING:
    from gunicorn.dirty.typed_settings import DirtySettings

_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1,
                  signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD, signal.SIGUSR2, signal.SIGWINCH)


class WorkerHandle:
    """One dirty worker as the arbiter sees it (passed to ``dirty_post_fork`` and
    ``dirty_worker_exit``).

    Attributes: ``pid``, ``age``, ``apps`` (the apps it was given), ``failed`` (app -> the error
    its last load raised), ``loading`` (apps whose ``init()`` is being retried), ``load_seconds``
    (app -> how long its load took), ``resources`` (app -> resource -> tokens granted),
    ``booted`` (its first load pass is over: "ready"), ``retiring``, ``started_at`` (monotonic),
    ``exit_status``.
    """

    def __init__(self, age: int, apps: tuple[str, ...], heartbeat: Heartbeat) -> None:
        self.age = age
        self.apps = apps
        self.heartbeat = heartbeat
        self.pid = 0
        self.failed: dict[str, DirtyError] = {}
        self.loading: set[str] = set()
        self.retry_at: dict[str, float] = {}  # app -> monotonic time of its next init() retry
        self.load_seconds: dict[str, float] = {}
        self.batches: dict[str, dict[str, int]] = {}  # app -> batched action -> max_size
        self.resources: dict[str, dict[str, list[str]]] = {}
        self.booted = False
        self.booted_at: float | None = None
        self.retiring = False
        self.superseded = False  # a HUP replacement is booting; retire this one when it is up
        self.replace_on_exit = False  # spawn its replacement once it is reaped (tokens freed)
        self.replaces: WorkerHandle | None = None
        self.started_at = time.monotonic()
        self.kill_at: float | None = None
        self.exit_status: int | None = None
        self.link: ArbiterLink | None = None
        self.sock: socket.socket | None = None  # the arbiter's end, until the link owns it

    def __repr__(self) -> str:
        return f"<DirtyWorker pid={self.pid} age={self.age} apps={list(self.apps)}>"

    @property
    def state(self) -> str:
        """``loading`` until its apps finished their first ``init()``, then ``ready``;
        ``retiring`` once it is being stopped."""
        if self.retiring:
            return "retiring"
        return "ready" if self.booted else "loading"

    def batch_sizes(self) -> dict[tuple[str, str], int]:
        """``(app, action) -> max_size`` of the batched actions of its loaded apps."""
        return {(app, action): size for app, actions in self.batches.items()
                for action, size in actions.items()}

    def last_heartbeat(self) -> float:
        """Seconds since the worker last showed it is alive."""
        return max(0.0, time.monotonic() - self.heartbeat.last_update())

    def signal(self, sig: int) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    @property
    def exit_code(self) -> int | None:
        if self.exit_status is None or os.WIFSIGNALED(self.exit_status):
            return None
        return os.waitstatus_to_exitcode(self.exit_status)

    def describe_exit(self) -> str:
        status = self.exit_status or 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                return f"was killed by {signal.Signals(sig).name}"
            except ValueError:
                return f"was killed by signal {sig}"
        return f"exited with code {os.waitstatus_to_exitcode(status)}"


class ArbiterLink(TransportLink):
    """The arbiter's end of one worker's socketpair."""

    def __init__(self, handle: WorkerHandle, on_frame: Callable[[WorkerHandle, Frame], None],
                 on_lost: Callable[[WorkerHandle], None], log: Any) -> None:
        self.handle = handle
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.log = log
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None

    def data_received(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
            for frame in self.decoder:
                self.on_frame(self.handle, frame)
        except DirtyProtocolError as exc:
            # The framing is lost: this worker's replies cannot be trusted any more.
            self.log.error("Dirty worker %s broke the protocol: %s", self.handle.pid, exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.on_lost(self.handle)


def fork_worker(handle: WorkerHandle, cfg: DirtySettings, log: Any,
                inherited: Callable[[], Iterable[int]]) -> socket.socket:
    """Fork the worker process of ``handle``; return the arbiter's end of its socketpair.

    ``inherited()`` lists the arbiter's descriptors the child must close (listening socket,
    client connections, other workers' links).
    """
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ppid = os.getpid()
    util.flush_stdio()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child, which always _exits
        status = 1
        try:
            parent_sock.close()
            _detach_from_arbiter(inherited())
            from gunicorn.dirty.worker import DirtyWorker, run_worker

            worker = DirtyWorker(handle.age, handle.apps, cfg, log, child_sock,
                                 handle.heartbeat, ppid, handle.resources)
            status = run_worker(worker)
        except SystemExit as exc:
            status = util.system_exit_code(exc)
        except BaseException:  # the child must end in os._exit, never unwind into the arbiter
            log.exception("Dirty worker crashed")
            status = 1
        finally:
            util.flush_stdio()
            os._exit(status)
    child_sock.close()
    with contextlib.suppress(OSError):  # the child may already have done it, or exited
        os.setpgid(pid, pid)
    handle.pid = pid
    handle.started_at = time.monotonic()
    return parent_sock


def _detach_from_arbiter(fds: Iterable[int]) -> None:
    # A process group of its own (the parent sets it too, so there is no window): Ctrl-C in a
    # terminal, or a supervisor signalling the server's group, must reach the dirty arbiter
    # only. Otherwise workers exit before the arbiter learns it is stopping, and it replaces
    # them during the shutdown. A worker still exits when the arbiter goes: its socketpair
    # closes.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    # The arbiter's loop routed signals to its own wakeup fd; the worker installs its own.
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def reap() -> list[tuple[int, int]]:
    """Every exited child: (pid, wait status)."""
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, status))
