"""The arbiter's HTTP workers: spawn, count, retire, murder, reap.

Kept apart from the main loop (arbiter.py) as a mixin because user hooks receive the arbiter
itself as ``server`` (``server.WORKERS``, ``server.num_workers``, ``server.log``): the state has
to live on that one object.

Retiring: a worker asked to stop gracefully (TTOU, HUP, max workers exceeded) gets SIGTERM once
and is remembered with a deadline; it no longer counts toward ``num_workers``, and gets SIGKILL
if it is still there ``graceful_timeout`` seconds later. The loop never blocks waiting for it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.errors import AppImportError, HaltServer
from gunicorn.hooks import call_user_hook
from gunicorn.sockets import rebind_for_worker
from gunicorn.workers.base import APP_LOAD_ERROR, WORKER_BOOT_ERROR

if TYPE_CHECKING:
    from gunicorn.arbiter.sidecars import SidecarSupervisor
    from gunicorn.arbiter.signals import SignalQueue
    from gunicorn.config.typed import CoreSettings
    from gunicorn.control.server import ControlServer
    from gunicorn.instrument.metrics_service import MetricsService


class WorkerPool:
    """Mixin of :class:`~gunicorn.arbiter.arbiter.Arbiter` managing the HTTP workers."""

    # gunicorn's names for the worker exit codes that halt the master; third-party workers
    # read them from the arbiter class (uvicorn's: ``sys.exit(Arbiter.WORKER_BOOT_ERROR)``).
    WORKER_BOOT_ERROR = WORKER_BOOT_ERROR
    APP_LOAD_ERROR = APP_LOAD_ERROR

    @property
    def proc_name(self) -> str:
        """The process title base (Arbiter: ``proc_name``, with ``.2`` in a re-exec'd master)."""
        raise NotImplementedError

    # Provided by Arbiter.__init__.
    cfg: CoreSettings
    log: Any
    app: Any
    plugins: Any
    pid: int
    listeners: list[Any]
    workers: dict[int, Any]
    signals: SignalQueue
    sidecars: SidecarSupervisor
    control: ControlServer
    metrics: MetricsService
    worker_class: type
    worker_age: int
    workers_spawned: int
    workers_killed: int
    reexec_pid: int
    _retiring: dict[int, float]
    _worker_env: dict[str, str]
    _num_workers: int | None

    # -- count --------------------------------------------------------------------------------

    @property
    def num_workers(self) -> int:
        return self._num_workers or 0

    @num_workers.setter
    def num_workers(self, value: int) -> None:
        old = self._num_workers
        self._num_workers = value
        self.cfg.nworkers_changed(self, value, old)

    @property
    def WORKERS(self) -> dict[int, Any]:  # noqa: N802 -- gunicorn's name, used by user hooks
        return self.workers

    def is_retiring(self, pid: int) -> bool:
        """True for a worker asked to stop (it no longer counts toward ``num_workers``)."""
        return pid in self._retiring

    def active_workers(self) -> list[Any]:
        """Workers that count toward ``num_workers`` (not being retired), oldest first."""
        return sorted((w for pid, w in self.workers.items() if pid not in self._retiring),
                      key=lambda w: w.age)

    def manage_workers(self) -> None:
        """Spawn or retire workers to match ``num_workers``; SIGKILL overdue retirees."""
        active = self.active_workers()
        missing = self.num_workers - len(active)
        if missing > 0:
            self.spawn_workers(missing)
        elif missing < 0:
            for worker in active[:-missing]:
                self.retire_worker(worker.pid)
        count = len(self.workers)
        # The statsd logger turns this into the gunicorn.workers gauge (once per loop turn).
        self.log.debug("%d workers", count,
                       extra={"metric": "gunicorn.workers", "value": count, "mtype": "gauge"})
        now = time.monotonic()
        for pid, deadline in list(self._retiring.items()):
            if now >= deadline and pid in self.workers:
                self.log.warning("Worker (pid:%s) did not stop within graceful_timeout", pid)
                self.metrics.worker_killed("graceful_timeout")
                self.kill_worker(pid, signal.SIGKILL)
                self._retiring[pid] = now + self.cfg.graceful_timeout

    # -- spawn --------------------------------------------------------------------------------

    def spawn_workers(self, count: int) -> None:
        for i in range(count):
            self.spawn_worker()
            if i + 1 < count:
                # Spread the boots a little so they do not all import the app at the same tick.
                time.sleep(0.1 * random.random())

    def spawn_worker(self) -> int:
        """Fork one worker; return its pid (in the child this never returns)."""
        self.worker_age += 1
        heartbeat_interval = self.cfg.timeout / 2.0
        worker = self.worker_class(self.worker_age, self.pid, self.listeners, self.app,
                                   heartbeat_interval, self.cfg, self.log)
        self.cfg.pre_fork(self, worker)
        util.flush_stdio()
        with self.signals.blocked():
            pid = os.fork()
            if pid == 0:
                self._run_worker(worker)  # never returns: ends in os._exit
        worker.pid = pid
        self.workers[pid] = worker
        self.workers_spawned += 1
        self.metrics.worker_spawned()
        return pid

    def _prepare_child(self, keep: Any = None) -> None:
        """Shared by workers and sidecars: shed what belongs to the master only.

        A worker (``keep``) leaves the signals blocked; Worker.init_process unblocks them
        after installing its handlers.
        """
        self.signals.reset_in_child(unblock=keep is None)
        # Close-on-exec does not act on fork: without this every worker would hold the
        # control socket open (and the connections of whoever was talking to the master).
        self.control.close_in_child()
        for other in self.workers.values():
            if other is not keep:
                other.tmp.close()

    def _run_worker(self, worker: Any) -> None:
        status = 0
        try:
            self._prepare_child(keep=worker)
            self.sidecars.close_in_child()
            self.metrics.close_in_child()
            worker.pid = os.getpid()
            # The plugins the master loaded (their hooks already ran here: metrics families
            # they keep must be the ones the worker records into).
            worker.plugins = self.plugins
            # Logged by the worker itself, so the line carries the worker's pid.
            self.log.info("Booting worker with pid: %s", worker.pid)
            util.set_process_title(f"worker [{self.proc_name}]")
            if self.cfg.reuse_port:
                worker.sockets = rebind_for_worker(worker.sockets, self.cfg, self.log)
            self.cfg.post_fork(self, worker)
            os.environ.update(self.cfg.env or {})
            os.environ.update(self._worker_env)
            worker.init_process()
        except SystemExit as exc:
            status = util.system_exit_code(exc)
        except AppImportError as exc:
            self.log.error("App failed to load: %s", exc)
            status = APP_LOAD_ERROR
        except BaseException:  # the child must end in os._exit whatever happens, never return into the master's loop
            self.log.exception("Exception in worker process")
            status = 1 if getattr(worker, "booted", False) else WORKER_BOOT_ERROR
        finally:
            # A failing hook must not change how the worker exits.
            call_user_hook(self.log, "worker_exit hook", self.cfg.worker_exit, self, worker)
            if status == 0:
                self.log.info("Worker exiting (pid: %s)", worker.pid)
            util.flush_stdio()
            os._exit(status)

    # -- stop ---------------------------------------------------------------------------------

    def retire_worker(self, pid: int) -> None:
        """Ask one worker to finish its work and exit (SIGTERM once)."""
        if pid in self._retiring:
            return
        self._retiring[pid] = time.monotonic() + self.cfg.graceful_timeout
        self.kill_worker(pid, signal.SIGTERM)

    def kill_worker(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            worker = self.workers.pop(pid, None)
            self._retiring.pop(pid, None)
            if worker is not None:
                worker.tmp.close()
                self.cfg.worker_exit(self, worker)
            return
        if sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGABRT, signal.SIGQUIT):
            self.workers_killed += 1

    def signal_workers(self, sig: int) -> None:
        """Send ``sig`` to every worker (no bookkeeping: USR1, stop)."""
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def murder_workers(self) -> None:
        """SIGABRT a worker whose heartbeat is older than ``timeout``; SIGKILL it next time."""
        timeout = self.cfg.timeout
        if not timeout:
            return
        now = time.monotonic()
        for pid, worker in list(self.workers.items()):
            try:
                silent_for = now - worker.tmp.last_update()
            except (OSError, ValueError):
                continue
            if silent_for <= timeout:
                continue
            if not worker.aborted:
                self.log.critical("WORKER TIMEOUT (pid:%s)", pid)
                worker.aborted = True
                self.metrics.worker_killed("timeout")
                self.kill_worker(pid, signal.SIGABRT)
            else:
                self.metrics.worker_killed("timeout_kill")
                self.kill_worker(pid, signal.SIGKILL)

    # -- reap ---------------------------------------------------------------------------------

    def reap(self, halt_on_boot_error: bool = True) -> None:
        """Collect every exited child without blocking.

        Unknown children (we may be PID 1 in a container, adopting orphans) are reaped quietly.
        Raises HaltServer when a worker exited with code 3 (boot) or 4 (app load).
        """
        halt: HaltServer | None = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == self.reexec_pid:
                self.reexec_pid = 0
                self.log.warning("Master.2 (pid:%s) exited: %s", pid,
                                 _describe(status))
                continue
            if self.sidecars.reaped(pid, status):
                self.metrics.process_dead(pid)
                continue
            worker = self.workers.pop(pid, None)
            if worker is None:
                self.log.debug("Reaped unknown child %s (%s)", pid, _describe(status))
                continue
            halt = self._worker_exited(worker, pid, status) or halt
        if halt is not None and halt_on_boot_error:
            raise halt

    def _worker_exited(self, worker: Any, pid: int, status: int) -> HaltServer | None:
        retiring = self._retiring.pop(pid, None) is not None
        worker.tmp.close()
        self.metrics.worker_exited(pid, status, retiring)
        halt = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGKILL:
                self.log.error("Worker (pid:%s) was sent SIGKILL! Perhaps out of memory?", pid)
            elif sig == signal.SIGTERM:
                self.log.info("Worker (pid:%s) was sent SIGTERM!", pid)
            else:
                self.log.warning("Worker (pid:%s) was sent %s!", pid, _signame(sig))
        else:
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR:
                self.log.error("Worker (pid:%s) failed to boot (exit code %s)", pid, code)
                halt = HaltServer("Worker failed to boot.", WORKER_BOOT_ERROR)
            elif code == APP_LOAD_ERROR:
                self.log.error("Worker (pid:%s) could not load the app (exit code %s)", pid, code)
                halt = HaltServer("App failed to load.", APP_LOAD_ERROR)
            elif code != 0:
                self.log.error("Worker (pid:%s) exited with code %s", pid, code)
            else:
                self.log.debug("Worker (pid:%s) exited%s", pid, " (retired)" if retiring else "")
        call_user_hook(self.log, "child_exit hook", self.cfg.child_exit, self, worker)
        return halt


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {_signame(os.WTERMSIG(status))}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
