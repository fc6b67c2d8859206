"""Generic supervision of the processes plugins ask for next to the HTTP workers.

A plugin's ``sidecars(cfg)`` hook returns :class:`~gunicorn.plugins.SidecarSpec` records; this
module knows nothing about what a sidecar does (the dirty arbiter is one). The arbiter calls:

* :meth:`SidecarSupervisor.kill_orphans` and :meth:`~SidecarSupervisor.start` once listeners are
  bound and before the first worker is forked (orphans: see :mod:`gunicorn.arbiter.orphans`);
* :meth:`~SidecarSupervisor.reaped` from its ``waitpid`` loop (True when the pid was a sidecar);
* :meth:`~SidecarSupervisor.tick` every loop turn (respawns that are due, SIGKILL for a sidecar
  that outlived its stop deadline) and :meth:`~SidecarSupervisor.next_deadline` to size its
  sleep;
* :meth:`~SidecarSupervisor.signal_all` to forward HUP and USR1;
* :meth:`~SidecarSupervisor.begin_stop` / :meth:`~SidecarSupervisor.kill_all` when stopping.

Respawn uses exponential backoff: the first restart waits ``backoff_min``, each further one
doubles up to ``backoff_max``; a sidecar that stayed up ``backoff_max`` seconds starts over.

Liveness: a spec with ``heartbeat_timeout`` gets a heartbeat file like an HTTP worker's
(:class:`~gunicorn.workers.heartbeat.Heartbeat`, made before the fork), which the sidecar
touches through ``ctx.notify()`` from its loop. A sidecar silent for longer than the timeout is
hung, not dead (a dead one is reaped): it gets SIGABRT, then SIGKILL ``ABORT_GRACE`` seconds
later if it is still there (a stopped process never acts on ABRT), and is respawned with the
usual backoff.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.arbiter.orphans import SidecarRecords, server_identity
from gunicorn.plugins import SidecarContext, SidecarSpec
from gunicorn.workers.heartbeat import Heartbeat

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

QUICK_STOP_GRACE = 2.0
ABORT_GRACE = 2.0


class _Sidecar:
    """The mutable supervision state of one spec."""

    def __init__(self, spec: SidecarSpec) -> None:
        self.spec = spec
        self.pid = 0
        self.started_at = 0.0
        self.next_delay = spec.backoff_min
        self.respawn_at: float | None = None
        self.kill_at: float | None = None
        self.restarts = 0
        self.heartbeat: Heartbeat | None = None
        self.aborted = False

    def silent_for(self, now: float) -> float:
        """Seconds since the sidecar last notified (0 without a heartbeat)."""
        if self.heartbeat is None:
            return 0.0
        try:
            return now - self.heartbeat.last_update()
        except (OSError, ValueError):
            return 0.0

    def drop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.close()
            self.heartbeat = None


class SidecarSupervisor:
    """Spawns, watches and stops the sidecars of one arbiter.

    ``prepare_child`` runs first thing in every forked sidecar (the arbiter closes its HTTP
    listeners and resets its signal handling there); ``environ`` returns the variables plugins
    want in every child (``worker_environ``), set before the spec's own ``env``; ``fork_guard``
    is entered around ``fork`` (the arbiter blocks its signals there).
    """

    def __init__(self, cfg: CoreSettings, log: Any, master_pid: int,
                 prepare_child: Callable[[], None],
                 environ: Callable[[], Mapping[str, str]] = dict,
                 proc_name: str = "gunicorn",
                 fork_guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext) -> None:
        self.cfg = cfg
        self.log = log
        self.master_pid = master_pid
        self.proc_name = proc_name
        self._prepare_child = prepare_child
        self._environ = environ
        self._fork_guard = fork_guard
        self._sidecars: list[_Sidecar] = []
        self._stopping = False
        self.records = SidecarRecords(
            log, lambda: server_identity(cfg.proc_name, os.getcwd(), cfg.bind or []))

    # -- queries ------------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self._sidecars if s.pid]

    def running(self) -> bool:
        return bool(self.pids)

    def describe(self) -> list[dict[str, Any]]:
        """A snapshot for status displays (control socket)."""
        return [{"name": s.spec.name, "pid": s.pid or None, "restarts": s.restarts,
                 "started_at": s.started_at or None} for s in self._sidecars]

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which :meth:`tick` has work, or None."""
        times = [t for s in self._sidecars for t in (s.respawn_at, s.kill_at) if t is not None]
        now = time.monotonic()
        times += [now - s.silent_for(now) + s.spec.heartbeat_timeout for s in self._sidecars
                  if s.pid and s.heartbeat is not None and not s.aborted]
        return min(times) if times else None

    # -- start --------------------------------------------------------------------------------

    def kill_orphans(self, specs: Iterable[SidecarSpec]) -> None:
        """Stop the sidecars a previous (crashed) master of this server left running.

        Only specs with ``orphan_record`` have records; see :mod:`gunicorn.arbiter.orphans`
        for what proves a recorded pid is our orphan before it is signalled.
        """
        for spec in specs:
            if spec.orphan_record:
                self.records.stop_orphan(spec.name)

    def start(self, specs: Iterable[SidecarSpec]) -> None:
        for spec in specs:
            sidecar = _Sidecar(spec)
            self._sidecars.append(sidecar)
            self._spawn(sidecar)

    def _spawn(self, sidecar: _Sidecar) -> None:
        spec = sidecar.spec
        sidecar.drop_heartbeat()
        if spec.heartbeat_timeout > 0:
            sidecar.heartbeat = Heartbeat(self.cfg)
        sidecar.aborted = False
        util.flush_stdio()
        with self._fork_guard():
            pid = os.fork()
            if pid == 0:
                self._run_child(sidecar)  # never returns: ends in os._exit
        sidecar.pid = pid
        sidecar.started_at = time.monotonic()
        sidecar.respawn_at = None
        if spec.orphan_record:
            self.records.record(spec.name, pid)
        self.log.info("Started sidecar %s (pid: %s)", spec.name, pid)

    def _run_child(self, sidecar: _Sidecar) -> None:
        spec = sidecar.spec
        status = 1
        try:
            self._prepare_child()
            self.close_in_child(keep=sidecar)
            os.environ.update(self._environ())
            os.environ.update(spec.env)
            util.set_process_title(f"sidecar {spec.name} [{self.proc_name}]")
            heartbeat = sidecar.heartbeat
            ctx = SidecarContext(cfg=self.cfg, log=self.log, master_pid=self.master_pid,
                                 name=spec.name,
                                 notify=heartbeat.notify if heartbeat is not None else _silent)
            result = spec.run(ctx)
            status = 0 if result is None else int(result)
        except SystemExit as exc:
            status = util.system_exit_code(exc)
        except BaseException:  # the child must always end in os._exit, never return to the master's stack
            self.log.exception("Sidecar %s crashed", spec.name)
            status = 1
        finally:
            util.flush_stdio()
            os._exit(status)

    def close_in_child(self, keep: _Sidecar | None = None) -> None:
        """In a forked child (worker or sidecar): drop the heartbeat fds of the sidecars."""
        for sidecar in self._sidecars:
            if sidecar is not keep:
                sidecar.drop_heartbeat()

    # -- while running ------------------------------------------------------------------------

    def reaped(self, pid: int, status: int) -> bool:
        """Record the exit of ``pid``; return False when it is not one of ours."""
        sidecar = next((s for s in self._sidecars if s.pid == pid), None)
        if sidecar is None:
            return False
        sidecar.pid = 0
        sidecar.kill_at = None
        sidecar.drop_heartbeat()
        spec = sidecar.spec
        if spec.orphan_record:
            self.records.forget(spec.name, pid)
        how = _describe_status(status)
        if self._stopping:
            self.log.info("Sidecar %s (pid:%s) stopped (%s)", spec.name, pid, how)
            return True
        now = time.monotonic()
        if now - sidecar.started_at >= spec.backoff_max:
            sidecar.next_delay = spec.backoff_min
        delay = sidecar.next_delay
        sidecar.next_delay = min(max(delay * 2, spec.backoff_min), spec.backoff_max)
        sidecar.respawn_at = now + delay
        self.log.error("Sidecar %s (pid:%s) %s; restarting in %.1fs", spec.name, pid, how, delay)
        return True

    def tick(self, now: float | None = None) -> None:
        """Respawn sidecars whose backoff has elapsed; abort hung ones (heartbeat); SIGKILL
        those past their stop or abort deadline."""
        now = time.monotonic() if now is None else now
        for sidecar in self._sidecars:
            if (sidecar.pid and not sidecar.aborted and not self._stopping
                    and sidecar.heartbeat is not None):
                self._check_heartbeat(sidecar, now)
            if sidecar.pid and sidecar.kill_at is not None and now >= sidecar.kill_at:
                how = "did not exit after SIGABRT" if sidecar.aborted else "did not stop in time"
                self.log.warning("Sidecar %s (pid:%s) %s, killing it", sidecar.spec.name,
                                 sidecar.pid, how)
                self._signal(sidecar, signal.SIGKILL)
                sidecar.kill_at = None
            if (not self._stopping and not sidecar.pid and sidecar.respawn_at is not None
                    and now >= sidecar.respawn_at):
                sidecar.restarts += 1
                self._spawn(sidecar)

    def _check_heartbeat(self, sidecar: _Sidecar, now: float) -> None:
        silent = sidecar.silent_for(now)
        if silent <= sidecar.spec.heartbeat_timeout:
            return
        self.log.critical("SIDECAR TIMEOUT: %s (pid:%s) silent for %.1fs (heartbeat timeout "
                          "%ss); aborting it", sidecar.spec.name, sidecar.pid, silent,
                          sidecar.spec.heartbeat_timeout)
        sidecar.aborted = True
        deadline = now + ABORT_GRACE
        sidecar.kill_at = deadline if sidecar.kill_at is None else min(sidecar.kill_at, deadline)
        self._signal(sidecar, signal.SIGABRT)

    def signal_all(self, sig: int) -> None:
        for sidecar in self._sidecars:
            self._signal(sidecar, sig)

    def _signal(self, sidecar: _Sidecar, sig: int) -> None:
        if not sidecar.pid:
            return
        try:
            os.kill(sidecar.pid, sig)
        except ProcessLookupError:
            pass

    # -- stop ---------------------------------------------------------------------------------

    def begin_stop(self, graceful: bool) -> None:
        """TERM (graceful) or QUIT (quick) every sidecar; SIGKILL follows at its deadline."""
        self._stopping = True
        now = time.monotonic()
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        for sidecar in self._sidecars:
            sidecar.respawn_at = None
            if sidecar.pid:
                grace = sidecar.spec.graceful_timeout if graceful else QUICK_STOP_GRACE
                deadline = now + grace
                sidecar.kill_at = deadline if sidecar.kill_at is None else min(
                    sidecar.kill_at, deadline)
                self._signal(sidecar, sig)

    def escalate(self) -> None:
        """A second INT/QUIT while stopping: QUIT now and SIGKILL soon."""
        self.begin_stop(graceful=False)

    def kill_all(self) -> None:
        self._stopping = True
        self.signal_all(signal.SIGKILL)

    def stop_deadline(self) -> float | None:
        times = [s.kill_at for s in self._sidecars if s.pid and s.kill_at is not None]
        return max(times) if times else None


def _silent() -> None:
    """``ctx.notify`` of a sidecar without a heartbeat."""


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"

