"""The master process: binds the listeners, keeps the workers and sidecars alive, obeys signals.

Life of a master::

    run() -> [daemonize] -> start(): pidfile, on_starting, signals, [preload], listeners,
             sidecars, when_ready, READY=1
          -> loop: promote? | wait for signals and control-socket fds (1 s), dispatch
                   handle_<sig>, serve the control socket | reap | murder late workers
                   | match num_workers | sidecar backoff/deadlines
          -> halt(): stop(graceful) -> unlink pidfile -> on_exit -> sys.exit(status)

=========  ==================================================================================
HUP        reload the configuration, spawn new workers, retire the old ones gracefully
TERM       graceful stop, exit 0
INT, QUIT  quick stop
TTIN/TTOU  one worker more / less (never below 1)
USR1       reopen log files, forwarded to workers and sidecars
USR2       re-exec a new master on the same sockets (see reexec.py)
WINCH      when daemonised: stop all workers, keep the master
CHLD       reap
=========  ==================================================================================
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn import systemd, util
from gunicorn.arbiter.pool import WorkerPool
from gunicorn.arbiter.reexec import StartContext, exec_new_master, read_inheritance
from gunicorn.arbiter.sidecars import SidecarSupervisor
from gunicorn.arbiter.signals import SignalQueue, signal_name
from gunicorn.control.server import ControlServer
from gunicorn.errors import AppImportError, ConfigError, HaltServer
from gunicorn.instrument.metrics_service import MetricsService
from gunicorn.pidfile import Pidfile
from gunicorn.sockets import close_listeners, create_listeners
from gunicorn.version import SERVER_SOFTWARE, __version__

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

LOOP_INTERVAL = 1.0
STOP_POLL = 0.1
QUICK_STOP_LIMIT = 2.0


class Arbiter(WorkerPool):
    """The master process.

    ``cfg`` is a :class:`~gunicorn.config.Config`, ``app`` an
    :class:`~gunicorn.app.loader.AppSource`, ``plugins`` a
    :class:`~gunicorn.plugins.PluginManager`, ``log`` a gunicorn Logger. ``reload_config``, when
    given, returns a freshly read Config on HUP (otherwise HUP keeps the current one).

    Attributes user hooks rely on: ``cfg``, ``log``, ``app``, ``pid``, ``WORKERS``,
    ``LISTENERS``, ``num_workers``, ``proc_name``. Statistics for the control socket:
    ``start_time`` (wall clock), ``workers_spawned``, ``workers_killed``, ``reloads``.
    """

    def __init__(self, cfg: CoreSettings, app: Any, plugins: Any, log: Any,
                 reload_config: Callable[[], Any] | None = None) -> None:
        self.cfg = cfg
        self.app = app
        self.plugins = plugins
        self.log = log
        self.reload_config = reload_config
        inheritance = read_inheritance()
        # Captured after the inherited variables are consumed so that a later USR2 does not
        # hand our own parent's GUNICORN_PID/GUNICORN_FD down to the next generation.
        self.start_ctx = StartContext.capture()
        self.master_pid = inheritance.master_pid
        self._inherited_fds = inheritance.fds
        self.systemd = inheritance.systemd
        self.master_name = "Master.2" if self.master_pid else "Master"
        self.pid = os.getpid()
        self.reexec_pid = 0
        self.listeners: list[Any] = []
        self.workers: dict[int, Any] = {}
        self._retiring: dict[int, float] = {}
        self.worker_age = 0
        self.signals = SignalQueue()
        self.pidfile: Pidfile | None = None
        self.start_time = time.time()
        self.workers_spawned = 0
        self.workers_killed = 0
        self.reloads = 0
        self._num_workers: int | None = None
        self._env_saved: dict[str, str | None] = {}
        self._configure(cfg)
        self.sidecars = SidecarSupervisor(cfg, log, self.pid, self._prepare_sidecar_child,
                                          environ=lambda: self._worker_env,
                                          proc_name=self.proc_name,
                                          fork_guard=self.signals.blocked)
        # Served from this loop (no thread): see gunicorn.control.server.
        self.control = ControlServer(self, log, self.signals.wake)
        # --metrics-bind: the directory, the listener's sidecar, the arbiter's own metrics.
        self.metrics = MetricsService(cfg, log, plugins)

    def _configure(self, cfg: CoreSettings) -> None:
        """Take in a (new) configuration: everything derived from cfg that the loop uses."""
        self.cfg = cfg
        self.worker_class = cfg.worker_class
        self._worker_env = dict(self.plugins.worker_environ(cfg)) if self.plugins else {}
        self._restore_env()
        self._apply_env(cfg.env or {})
        self.num_workers = cfg.workers

    @property
    def proc_name(self) -> str:
        base = self.cfg.proc_name or "gunicorn"
        return f"{base}.2" if self.master_pid else base

    @property
    def LISTENERS(self) -> list[Any]:  # noqa: N802 -- gunicorn's name, used by user hooks
        return self.listeners

    def __str__(self) -> str:
        return f"<Arbiter {self.master_name} pid={self.pid}>"

    # -- environment --------------------------------------------------------------------------

    def _apply_env(self, env: dict[str, str]) -> None:
        """Export ``raw_env`` in the master too (a preloaded app sees it), remembering the old."""
        os.environ["SERVER_SOFTWARE"] = SERVER_SOFTWARE
        for key, value in env.items():
            self._env_saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._env_saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._env_saved.clear()

    # -- start --------------------------------------------------------------------------------

    def run(self) -> None:
        """Start and supervise until told to stop; always ends with sys.exit(status)."""
        try:
            if self.cfg.chdir:
                # As gunicorn: relative paths (pidfile, unix sockets, logs) follow --chdir.
                os.chdir(self.cfg.chdir)
            if self.cfg.daemon and not self.master_pid:
                if os.environ.get("NOTIFY_SOCKET"):
                    self.log.warning("Daemon mode with NOTIFY_SOCKET: systemd will not see the "
                                     "master's readiness; prefer Type=notify without --daemon")
                util.daemonize(bool(self.cfg.enable_stdio_inheritance))
                self.pid = os.getpid()
                self.sidecars.master_pid = self.pid
            self.start()
            self.manage_workers()
            while True:
                self.loop_once()
        except HaltServer as exc:
            self.halt(exc.reason, exc.exit_status)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            self.halt(graceful=False)
        except Exception:  # the supervisor must not leave workers behind whatever went wrong
            self.log.exception("Unhandled exception in the main loop")
            self.stop(graceful=False)
            if self.pidfile is not None:
                self.pidfile.unlink()
            self.metrics.close()
            sys.exit(1)

    def start(self) -> None:
        self.log.info("Starting gunicorn %s", __version__)
        if self.cfg.pidfile:
            name = f"{self.cfg.pidfile}.2" if self.master_pid else self.cfg.pidfile
            pidfile = Pidfile(name, self.log)
            pidfile.create(self.pid)
            self.pidfile = pidfile
        # Before anything that may import prometheus_client (hooks, a preloaded app).
        self.metrics.prepare()
        self.cfg.on_starting(self)
        self.signals.install()
        if self.cfg.preload_app:
            self._preload()
        self.listeners = create_listeners(self.cfg, self.log, self._inherited_fds)
        self._inherited_fds = None
        for listener in self.listeners:
            self.log.info("Listening at: %s (%s)", listener, self.pid)
        self.log.info("Using worker: %s", self.cfg.worker_class_str)
        if self.cfg.worker_class_note:
            self.log.info("%s", self.cfg.worker_class_note)
        specs = self.plugins.sidecars(self.cfg) if self.plugins else []
        if not self.master_pid:
            # A USR2 child binds metrics_bind once promoted: its parent holds the address.
            specs = self.metrics.sidecars() + specs
            # A USR2 child shares the old master's sidecar records: those are not orphans.
            self.sidecars.kill_orphans(specs)
        self.sidecars.start(specs)
        if not self.master_pid:
            # A USR2 child leaves the socket to its parent until it is promoted.
            self.control.open(self.cfg)
        util.set_process_title(f"master [{self.proc_name}]")
        self.cfg.when_ready(self)
        systemd.sd_notify("READY=1\nSTATUS=Gunicorn arbiter booted", self.log)

    def _preload(self) -> None:
        try:
            self.app.load()
        except AppImportError as exc:
            raise HaltServer(f"App failed to load: {exc}", 4) from exc
        except Exception as exc:  # the user's module failed at import: show it, then stop
            self.log.exception("Exception while preloading the application")
            raise HaltServer(f"App failed to load: {exc}", 4) from exc

    # -- the loop -----------------------------------------------------------------------------

    def loop_once(self) -> None:
        self.maybe_promote_master()
        received, ready = self.signals.wait_for(self._sleep_time(), self.control.poll_fds())
        for sig in received:
            self.dispatch(sig)
        self.control.handle(ready)
        self.reap()
        self.murder_workers()
        self.manage_workers()
        self.sidecars.tick()
        self.metrics.tick(self)

    def _sleep_time(self) -> float:
        deadline = self.sidecars.next_deadline()
        if deadline is None:
            return LOOP_INTERVAL
        return min(LOOP_INTERVAL, max(0.0, deadline - time.monotonic()))

    def dispatch(self, sig: int) -> None:
        name = signal_name(sig)
        handler = getattr(self, f"handle_{name}", None)
        if handler is None:
            if name != "wakeup":
                self.log.error("Unhandled signal: %s", name)
            return
        if sig == signal.SIGCHLD:
            self.log.debug("Handling signal: %s", name)
        else:
            self.log.info("Handling signal: %s", name)
        handler()

    def maybe_promote_master(self) -> None:
        """A USR2 child becomes the master once the old master has exited."""
        if not self.master_pid or os.getppid() == self.master_pid:
            return
        self.log.info("Master has been promoted.")
        self.master_pid = 0
        self.master_name = "Master"
        self.sidecars.proc_name = self.proc_name
        if self.pidfile is not None and self.cfg.pidfile:
            self.pidfile.rename(self.cfg.pidfile)
        self.control.open(self.cfg)
        self.sidecars.start(self.metrics.sidecars())
        util.set_process_title(f"master [{self.proc_name}]")

    # -- signal handlers ----------------------------------------------------------------------

    def handle_chld(self) -> None:
        self.reap()

    def handle_hup(self) -> None:
        self.log.info("Hang up: %s", self.master_name)
        self.reload()
        self.sidecars.signal_all(signal.SIGHUP)

    def handle_term(self) -> None:
        self.halt()

    def handle_int(self) -> None:
        self.halt(graceful=False)

    def handle_quit(self) -> None:
        self.halt(graceful=False)

    def handle_ttin(self) -> None:
        self.num_workers += 1
        self.manage_workers()

    def handle_ttou(self) -> None:
        if self.num_workers <= 1:
            return
        self.num_workers -= 1
        self.manage_workers()

    def handle_usr1(self) -> None:
        self.log.reopen_files()
        self.signal_workers(signal.SIGUSR1)
        self.sidecars.signal_all(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self.reexec()

    def handle_winch(self) -> None:
        if self.cfg.daemon:
            self.log.info("graceful stop of workers")
            self.num_workers = 0
            for worker in self.active_workers():
                self.retire_worker(worker.pid)
        else:
            self.log.debug("SIGWINCH ignored. Not daemonized")

    # -- reload -------------------------------------------------------------------------------

    def reload(self) -> None:
        """HUP: new config, new logging, maybe new sockets; new workers, then retire the old."""
        self.reloads += 1
        self.metrics.reloaded()
        old_cfg = self.cfg
        new_cfg = old_cfg
        if self.reload_config is not None:
            try:
                new_cfg = self.reload_config()
            except Exception as exc:  # the config file is user code: a bad edit must not kill the server
                self.log.error("Reload failed, keeping the current configuration: %s", exc)
                return
        try:
            new_cfg.worker_class  # noqa: B018 -- resolve now: a typo must not reach the fork
        except (ConfigError, ValueError) as exc:
            self.log.error("Reload failed, keeping the current configuration: %s", exc)
            return
        self._setup_logging(new_cfg, old_cfg)
        if not new_cfg.preload_app:
            new_spec = new_cfg.wsgi_app
            self.app.reload(new_spec if new_spec != old_cfg.wsgi_app else None)
        self._configure(new_cfg)
        if not self.master_pid:
            self.control.open(new_cfg)
        self.log.reopen_files()
        if [str(a) for a in new_cfg.address] != [str(a) for a in old_cfg.address]:
            close_listeners(self.listeners, unlink=self._may_unlink())
            self.listeners = create_listeners(new_cfg, self.log)
            for listener in self.listeners:
                self.log.info("Listening at: %s (%s)", listener, self.pid)
        util.set_process_title(f"master [{self.proc_name}]")
        self.cfg.on_reload(self)
        self._refresh_pidfile(old_cfg)
        old_workers = self.active_workers()
        self.spawn_workers(self.num_workers)
        for worker in old_workers:
            self.retire_worker(worker.pid)

    def _setup_logging(self, new_cfg: CoreSettings, old_cfg: CoreSettings) -> None:
        try:
            self.log.setup(new_cfg)
        except Exception as exc:  # logger_class may be user code; keep logging whatever it raised
            try:
                self.log.setup(old_cfg)
            except Exception:  # same reason: the old logging config may not be reinstallable
                pass
            self.log.error("New logging configuration failed, keeping the previous one: %s", exc)

    def _refresh_pidfile(self, old_cfg: CoreSettings) -> None:
        if self.cfg.pidfile != old_cfg.pidfile and self.pidfile is not None:
            self.pidfile.unlink()
            self.pidfile = None
        if self.cfg.pidfile:
            if self.pidfile is None:
                name = f"{self.cfg.pidfile}.2" if self.master_pid else self.cfg.pidfile
                self.pidfile = Pidfile(name, self.log)
                self.pidfile.pid = self.pid
            self.pidfile.recreate()

    # -- re-exec ------------------------------------------------------------------------------

    def reexec(self) -> None:
        """USR2: fork and exec a new master sharing our listeners (see reexec.py)."""
        if self.reexec_pid:
            self.log.warning("USR2 signal ignored. Child exists.")
            return
        if self.master_pid:
            self.log.warning("USR2 signal ignored. Parent exists.")
            return
        master_pid = os.getpid()
        util.flush_stdio()
        with self.signals.blocked():
            pid = os.fork()
            if pid == 0:
                self._exec_new_master(master_pid)  # never returns
        self.reexec_pid = pid
        self.log.info("Started new master (pid: %s)", pid)

    def _exec_new_master(self, master_pid: int) -> None:
        status = 1
        try:
            self.signals.reset_in_child()
            self.cfg.pre_exec(self)
            exec_new_master(self.start_ctx, self.listeners, master_pid, self.systemd,
                            extra_env={"SERVER_SOFTWARE": SERVER_SOFTWARE})
        except BaseException:  # the forked child must never return into the master's loop
            self.log.exception("Re-exec of the master failed")
        finally:
            util.flush_stdio()
            os._exit(status)

    # -- stop ---------------------------------------------------------------------------------

    def _may_unlink(self) -> bool:
        """Unix socket files stay when another master (re-exec) or systemd still uses them."""
        return (self.reexec_pid == 0 and self.master_pid == 0 and not self.systemd
                and not self.cfg.reuse_port)

    def _prepare_sidecar_child(self) -> None:
        self._prepare_child()
        close_listeners(self.listeners, unlink=False)

    def stop(self, graceful: bool = True) -> None:
        """Close the listeners, stop workers and sidecars, SIGKILL whatever outlives the grace."""
        self.control.close()
        self.metrics.begin_stop()
        close_listeners(self.listeners, unlink=self._may_unlink())
        self.listeners = []
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        now = time.monotonic()
        limit = now + (self.cfg.graceful_timeout if graceful else QUICK_STOP_LIMIT)
        self.sidecars.begin_stop(graceful)
        self.signal_workers(sig)
        while self.workers or self.sidecars.running():
            now = time.monotonic()
            sidecar_limit = self.sidecars.stop_deadline()
            if now >= limit and (sidecar_limit is None or now >= sidecar_limit):
                break
            for received in self.signals.wait(STOP_POLL):
                if received in (signal.SIGINT, signal.SIGQUIT) and sig == signal.SIGTERM:
                    # A second, impatient request: switch to a quick stop.
                    sig = signal.SIGQUIT
                    self.signal_workers(sig)
                    self.sidecars.escalate()
                    limit = min(limit, time.monotonic() + QUICK_STOP_LIMIT)
            self.reap(halt_on_boot_error=False)
            if now >= limit and self.workers:
                self.signal_workers(signal.SIGKILL)
            self.sidecars.tick()
        self.signal_workers(signal.SIGKILL)
        self.sidecars.kill_all()
        self._reap_remaining()

    def _reap_remaining(self) -> None:
        pids = list(self.workers) + self.sidecars.pids
        for pid in pids:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
            worker = self.workers.pop(pid, None)
            if worker is not None:
                worker.tmp.close()
            else:
                self.sidecars.reaped(pid, status)
        self._retiring.clear()

    def halt(self, reason: str | None = None, exit_status: int = 0,
             graceful: bool = True) -> None:
        """Stop everything and exit the process with ``exit_status``."""
        self.stop(graceful)
        self.log.info("Shutting down: %s", self.master_name)
        if reason is not None:
            if exit_status:
                self.log.error("Reason: %s", reason)
            else:
                self.log.info("Reason: %s", reason)
        if self.pidfile is not None:
            self.pidfile.unlink()
        self.metrics.close()
        self.cfg.on_exit(self)
        sys.exit(exit_status)
