"""The base class of every worker: the process side of the arbiter's contract.

The arbiter builds ``Worker(age, ppid, sockets, app, timeout, cfg, log)`` before forking; in the
child it calls :meth:`Worker.init_process`, which never returns. A worker class (sync, gthread,
or a third party's) only implements :meth:`Worker.run`: accept on ``self.sockets``, serve, call
``self.notify()`` at least every ``timeout`` seconds, and return once ``self.alive`` is false
or :meth:`check_parent` says the master is gone.

Signals in the worker:

=========  =============================================================================
TERM       graceful: ``alive = False``; ``run()`` finishes in-flight work and returns
INT, QUIT  quick: the ``worker_int`` hook, then exit 0 at once
USR1       reopen log files
ABRT       sent by the arbiter on timeout: the ``worker_abort`` hook, then exit 1
WINCH      ignored
=========  =============================================================================

Every handled signal also makes :attr:`Worker.wakeup_fd` readable, so a driver sleeping in
``select`` wakes up at once instead of at its next timeout.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.errors import AppImportError
from gunicorn.hooks import call_user_hook
from gunicorn.workers.heartbeat import Heartbeat

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

# Exit codes the arbiter understands (it halts on both instead of respawning in a loop).
WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4

# Signals whose master-side handlers a freshly forked worker must not keep.
INHERITED_SIGNALS = (
    signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD,
    signal.SIGABRT,
)


class Worker:
    """One worker process. Subclasses implement :meth:`run`.

    Attributes set by the constructor (in the master, before fork): ``age`` (spawn order),
    ``ppid`` (the master's pid), ``sockets`` (:class:`~gunicorn.sockets.Listener` list), ``app``
    (:class:`~gunicorn.app.loader.AppSource`), ``timeout`` (the heartbeat interval: half of
    ``cfg.timeout``, 0 when timeouts are disabled), ``cfg``, ``log``, ``tmp`` (the
    :class:`Heartbeat`), ``max_requests`` (the request count after which the worker retires,
    ``max_requests`` plus this worker's jitter; ``sys.maxsize`` when unlimited, as in gunicorn,
    so ``nr >= max_requests`` is the test everywhere). ``pid`` is set by the arbiter after fork
    and again by the child itself; ``spawned_at`` is the master's monotonic time of creation;
    ``nr`` counts served requests (see :meth:`count_request`); ``wsgi`` is the loaded
    application once :meth:`load_wsgi` ran.

    Third-party workers written for gunicorn run unchanged: this class keeps gunicorn's
    surface (the attributes above, ``SIGNALS``, ``init_process``, ``init_signals``,
    ``load_wsgi``, ``handle_exit``/``handle_quit``/``handle_usr1``/``handle_abort``/
    ``handle_winch``, ``notify``), ``cfg.settings[name].value`` and ``self.app.wsgi()``.
    """

    # gunicorn's list of the signals a worker handles; third-party workers reset or replace
    # the handlers of these (uvicorn's sets them back to SIG_DFL).
    SIGNALS = [getattr(signal, f"SIG{name}")
               for name in ("ABRT", "HUP", "QUIT", "INT", "TERM", "USR1", "USR2", "WINCH",
                            "CHLD")]

    # Set by workers that serve requests from several threads, so ``nr`` stays exact (it drives
    # max_requests and the control socket's "requests"); None costs nothing on the sync path.
    nr_lock: threading.Lock | None = None

    def __init__(self, age: int, ppid: int, sockets: list[Any], app: Any, timeout: float,
                 cfg: CoreSettings, log: Any) -> None:
        self.age = age
        self.pid: int | None = None
        self.ppid = ppid
        self.sockets = sockets
        self.app = app
        self.timeout = timeout
        self.cfg = cfg
        self.log = log
        self.nr = 0
        jitter = cfg.max_requests_jitter
        base = cfg.max_requests
        self.max_requests = base + random.randint(0, jitter) if base > 0 else sys.maxsize
        self.alive = True
        self.booted = False
        self._reopen_logs = False  # USR1 arrived: the driver's loop reopens (drain_wakeup)
        self.aborted = False
        self.wsgi: Any = None
        self.reloader: Any = None
        self.plugins: Any = None  # the master's PluginManager, set in the child before boot
        self.tmp = Heartbeat(cfg)
        # Monotonic time of creation, in the master just before the fork (its uptime).
        self.spawned_at = time.monotonic()
        self._wakeup_r = -1
        self._wakeup_w = -1

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    # -- what subclasses use ----------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``self.alive`` is false. Implemented by each worker class."""
        raise NotImplementedError

    def count_request(self) -> int:
        """Count one more request served; returns the new ``nr``. Thread-safe when the worker
        set ``nr_lock`` (every driver that serves from several threads must)."""
        lock = self.nr_lock
        if lock is None:
            self.nr += 1
            return self.nr
        with lock:
            self.nr += 1
            return self.nr

    def notify(self) -> None:
        """Tell the arbiter this worker is alive (cheap; call it on every loop turn).

        Also publishes ``booted`` and the request count ``nr`` for the control socket.
        """
        tmp = self.tmp
        tmp.publish(self.booted, self.nr)
        tmp.notify()

    @property
    def wakeup_fd(self) -> int:
        """A readable fd that becomes readable whenever a signal arrives (for select loops).

        Drivers that select on it must call :meth:`drain_wakeup` when it is readable: it also
        does the work a signal handler deferred (reopening log files on USR1).
        """
        return self._wakeup_r

    def drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            while os.read(self._wakeup_r, 4096):
                pass
        if self._reopen_logs:
            self._reopen_logs = False
            reopen = getattr(self.log, "reopen_files", None)
            if reopen is not None:
                reopen()

    def check_parent(self) -> bool:
        """False (and ``alive`` cleared) once the master that forked us is gone."""
        if os.getppid() != self.ppid:
            if self.alive:
                self.log.info("Parent changed, shutting down: %s", self)
            self.alive = False
            return False
        return True

    # -- start-up in the child ----------------------------------------------------------------

    def init_process(self) -> None:
        """Finish setting up the forked child, then :meth:`run`; never returns.

        Raises SystemExit: 0 after a normal stop, 4 when the app cannot be imported, 3 when
        anything else fails before the worker booted.
        """
        self.pid = os.getpid()
        util.set_owner_process(self.cfg.uid, self.cfg.gid, self.cfg.initgroups)
        util.reseed_random()
        self._wakeup_r, self._wakeup_w = os.pipe()
        for fd in (self._wakeup_r, self._wakeup_w):
            util.set_non_blocking(fd)
            util.close_on_exec(fd)
        for listener in self.sockets:
            util.close_on_exec(listener.fileno())
        close_log = getattr(self.log, "close_on_exec", None)
        if close_log is not None:
            close_log()
        self.init_signals()
        # The arbiter forks with its signals blocked; anything sent while we booted is
        # delivered now, to our own handlers.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, INHERITED_SIGNALS)
        if self.cfg.reload:
            self.start_reloader()
        self.load_wsgi()
        self.cfg.post_worker_init(self)
        self.booted = True
        self.notify()
        self.run()
        sys.exit(0)

    def start_reloader(self) -> None:
        # Imported lazily: the reloader (and its optional inotify dependency) only matters
        # with --reload, a development setting.
        from gunicorn.reloader import make_reloader

        self.reloader = make_reloader(self.cfg, self.on_reload_change)
        start = getattr(self.reloader, "start", None)
        if start is not None:
            start()

    def on_reload_change(self, fname: str) -> None:
        """Reloader callback (runs in the reloader thread): stop so the master respawns us."""
        self.log.info("Worker reloading: %s modified", fname)
        self.alive = False
        self._wake()
        # The reloader thread must survive the user's hook (it only logs what breaks it).
        call_user_hook(self.log, "worker_int hook", self.cfg.worker_int, self)

    def load_wsgi(self) -> None:
        """Load the application into ``self.wsgi``; exit 4 on AppImportError, 3 otherwise."""
        try:
            self.wsgi = self.app.load()
            self.check_app_interface(self.wsgi)
        except AppImportError as exc:
            if self.cfg.reload:
                self._serve_load_error(exc)
                return
            self.log.error("App failed to load: %s", exc)
            sys.exit(APP_LOAD_ERROR)
        except SyntaxError as exc:
            if self.cfg.reload:
                self._serve_load_error(exc)
                return
            self.log.exception("Exception while loading the application")
            sys.exit(WORKER_BOOT_ERROR)
        except Exception:  # user code at import time: anything can fail; log and report boot error
            self.log.exception("Exception in worker process while loading the application")
            sys.exit(WORKER_BOOT_ERROR)

    def check_app_interface(self, app: Any) -> None:
        """Raise AppImportError (exit 4) when this worker serves WSGI and ``app`` is ASGI, or
        the reverse; the message names the ``-k`` to use. Unknown shapes pass."""
        from gunicorn.app.interface import mismatch
        from gunicorn.workers import served_interface

        served = served_interface(type(self))
        if served is None:
            return
        worker = self.cfg.worker_class_str or type(self).__name__
        wrong = mismatch(app, served, worker)
        if wrong is not None:
            raise AppImportError(wrong)

    def _serve_load_error(self, exc: BaseException) -> None:
        """With --reload a broken edit serves its traceback instead of killing the worker."""
        self.log.exception("Error loading the application (serving the traceback until fixed)")
        filename = getattr(exc, "filename", None)
        add = getattr(self.reloader, "add_extra_file", None)
        if filename and add is not None:
            add(filename)
        self.wsgi = _error_app("".join(traceback.format_exception(exc)))

    # -- signals ------------------------------------------------------------------------------

    def init_signals(self) -> None:
        """Replace the master's handlers (inherited through fork) with the worker's."""
        handlers: dict[int, Callable[[int, FrameType | None], None]] = {
            signal.SIGTERM: self.handle_exit,
            signal.SIGINT: self.handle_quit,
            signal.SIGQUIT: self.handle_quit,
            signal.SIGUSR1: self.handle_usr1,
            signal.SIGABRT: self.handle_abort,
        }
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)
        for sig in INHERITED_SIGNALS:
            if sig not in handlers and sig != signal.SIGWINCH:
                signal.signal(sig, signal.SIG_DFL)
        # Graceful stop and log reopening must not abort a blocking send/recv half-way.
        signal.siginterrupt(signal.SIGTERM, False)
        signal.siginterrupt(signal.SIGUSR1, False)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wakeup_w, b"!")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        self._run_hook(self.cfg.worker_int)
        sys.exit(0)

    def handle_usr1(self, sig: int, frame: FrameType | None) -> None:
        # Reopening here, inside the signal handler, could close a log stream in the middle of
        # a write by the code the signal interrupted: flag it; the driver's loop reopens in
        # drain_wakeup (every handled signal makes the wakeup fd readable).
        self._reopen_logs = True

    def handle_winch(self, sig: int, frame: FrameType | None) -> None:
        """Ignored in workers (the master uses WINCH); kept for gunicorn's worker surface."""
        self.log.debug("worker: SIGWINCH ignored")

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        self.alive = False
        self.aborted = True
        self._run_hook(self.cfg.worker_abort)
        sys.exit(1)

    def _run_hook(self, hook: Callable[[Worker], Any]) -> None:
        # A failing hook must not stop the worker from exiting as asked.
        call_user_hook(self.log, f"{getattr(hook, '__name__', 'worker')} hook", hook, self)


def _error_app(text: str) -> Callable[..., Iterable[bytes]]:
    body = text.encode("utf-8", "replace")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
