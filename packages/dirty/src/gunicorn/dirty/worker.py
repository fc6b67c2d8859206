"""A dirty worker process: loads its apps once, then serves calls from the dirty arbiter.

The worker talks to the arbiter over one end of a socketpair made before the fork. Requests are
multiplexed by id: synchronous actions run in a ``ThreadPoolExecutor(dirty_threads)``, ``async
def`` actions run as tasks on the worker's event loop, and generators stream (see
:mod:`gunicorn.dirty.execution`). When the socketpair closes (the arbiter died) the worker exits.

Boot: the resource tokens granted by the arbiter are exported (``GUNICORN_DIRTY_RESOURCE_*``,
``CUDA_VISIBLE_DEVICES``), then every app is imported, instantiated, given ``self.resources``
and ``init()``-ed in turn, in the main thread; the worker is "loading" until then and "ready"
after. An app that fails is reported to the arbiter in the boot notice (its calls then fail
fast with the original error) instead of crashing the worker, so a broken app cannot cause a
crash loop, and its load is retried with backoff (:func:`retry_delay`) in a loader thread while
the other apps serve. Anything else failing before the worker is booted exits with
:data:`BOOT_ERROR`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.dirty.app import load_dirty_app
from gunicorn.dirty.batching import batched_actions
from gunicorn.dirty.codec import NOTICE_ID, FrameDecoder, MessageType, encode_frame
from gunicorn.dirty.errors import DirtyError, DirtyProtocolError, wrap_app_error
from gunicorn.dirty.execution import CallExecutor
from gunicorn.dirty.resources import resource_environ
from gunicorn.hooks import call_user_hook

if TYPE_CHECKING:
    from gunicorn.dirty.typed_settings import DirtySettings

BOOT_ERROR = 3
INIT_RETRY_MIN = 0.5  # seconds before the first retry of a failed init(), doubling...
INIT_RETRY_MAX = 30.0  # ...up to this


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...) of a failed app load."""
    return min(INIT_RETRY_MIN * 2.0 ** (attempt - 1), INIT_RETRY_MAX)
PARENT_POLL = 0.5


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (lower latency per hop), else the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class DirtyWorker:
    """The dirty worker, as seen by the ``dirty_worker_init(worker)`` hook.

    Attributes: ``pid``, ``ppid`` (the dirty arbiter), ``age`` (spawn order), ``app_paths``,
    ``apps`` (path -> loaded app instance), ``failed`` (path -> error), ``resources`` (path ->
    resource -> tokens granted), ``booted``, ``cfg``, ``log``.
    """

    def __init__(self, age: int, app_paths: tuple[str, ...], cfg: DirtySettings, log: Any,
                 sock: socket.socket, heartbeat: Any, ppid: int,
                 resources: dict[str, dict[str, list[str]]] | None = None) -> None:
        self.age = age
        self.app_paths = app_paths
        self.cfg = cfg
        self.log = log
        self.sock = sock
        self.heartbeat = heartbeat
        self.ppid = ppid
        self.pid = os.getpid()
        self.resources = resources or {}
        self.apps: dict[str, Any] = {}
        self.failed: dict[str, DirtyError] = {}
        self.load_seconds: dict[str, float] = {}
        self.booted = False

    def __str__(self) -> str:
        return f"<DirtyWorker {self.pid} age={self.age}>"

    # -- boot ---------------------------------------------------------------------------------

    def run(self) -> int:
        """The whole life of the worker process; returns its exit code."""
        try:
            self._boot()
        except Exception:  # anything before "booted" is a boot failure the arbiter backs off on
            self.log.exception("Dirty worker %s failed to boot", self.pid)
            return BOOT_ERROR
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self._serve(loop))
        finally:
            self._close_apps()
            util.flush_stdio()

    def _boot(self) -> None:
        util.set_process_title(f"dirty-worker [{self.cfg.proc_name or 'gunicorn'}]")
        if self.cfg.env:
            os.environ.update(self.cfg.env)
        # After cfg.env (a granted token must win over a raw_env value) and before any app
        # module is imported, so a library reading CUDA_VISIBLE_DEVICES at import sees it.
        os.environ.update(resource_environ(self.resources))
        # No privilege drop here: the dirty arbiter already runs as user/group (plugin.py) and
        # forked us; as that user a second initgroups() would fail.
        util.reseed_random()
        for path in self.app_paths:
            self._load(path)
        self.cfg.dirty_worker_init(self)
        self.booted = True

    def _load(self, path: str) -> bool:
        """Load one app and record the outcome; True when it is ready."""
        return self._record(path, *self._load_one(path))

    def _load_one(self, path: str) -> tuple[Any, DirtyError | None, float]:
        """Import, instantiate, give tokens to and ``init()`` one app: (app, None, seconds) or
        (None, error, seconds). Touches no shared state, so a loader thread may run it."""
        started = time.monotonic()
        try:
            app = load_dirty_app(path)
            # Before init(): the app finds its tokens there (the class attribute says how many
            # it needs; the instance attribute which ones it got).
            _give_tokens(app, self.resources.get(path, {}))
            app.init()
        except Exception as exc:  # user code: one broken app must not take the others down
            error = wrap_app_error(exc, path, message=f"dirty app {path} failed to initialise: "
                                                      f"{exc}")
            return None, error, time.monotonic() - started
        return app, None, time.monotonic() - started

    def _record(self, path: str, app: Any, error: DirtyError | None, seconds: float) -> bool:
        # On the main thread (or the loop's): the call executor reads these dicts.
        if error is not None:
            self.failed[path] = error
            self.log.error("Dirty worker %s: %s", self.pid, error.message)
            return False
        self.apps[path] = app  # before leaving ``failed``: never in neither
        self.failed.pop(path, None)
        self.load_seconds[path] = round(seconds, 3)
        return True

    def _batched(self, path: str) -> dict[str, int]:
        app = self.apps.get(path)
        if app is None:
            return {}
        return {name: spec.max_size for name, spec in batched_actions(app).items()}

    async def _retry(self, path: str, link: WorkerLink, stop: asyncio.Event) -> None:
        """Retry a failed app's load with backoff until it succeeds or the worker stops.

        The retry runs in a thread of its own, so the worker's other apps keep serving.
        Callers of the app get the error of the last attempt meanwhile.
        """
        loop = asyncio.get_running_loop()
        loader = ThreadPoolExecutor(1, thread_name_prefix=f"dirty-loader-{self.pid}")
        attempt = 1
        try:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_delay(attempt))
                if stop.is_set():
                    return
                link.notice({"event": "loading", "app": path})
                outcome = await loop.run_in_executor(loader, self._load_one, path)
                if self._record(path, *outcome):
                    self.log.info("Dirty app %s loaded in worker %s after %d retries", path,
                                  self.pid, attempt)
                    link.notice({"event": "loaded", "app": path,
                                 "seconds": self.load_seconds[path],
                                 "batched": self._batched(path)})
                    return
                attempt += 1
                link.notice({"event": "failed", "app": path,
                             "error": self.failed[path].to_payload(),
                             "retry": retry_delay(attempt)})
        finally:
            # Never wait here for an init() still running: the worker is stopping.
            loader.shutdown(wait=False, cancel_futures=True)

    def _close_apps(self) -> None:
        for path, app in self.apps.items():
            # One failing close() must not skip the others.
            call_user_hook(self.log, f"close() of dirty app {path}", app.close)
        self.apps = {}

    # -- serving ------------------------------------------------------------------------------

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> int:
        stop = asyncio.Event()
        self._graceful = True
        self._install_signals(loop, stop)
        executor = ThreadPoolExecutor(max(1, self.cfg.dirty_threads),
                                      thread_name_prefix=f"dirty-worker-{self.pid}")
        link = WorkerLink(self, executor, stop)
        await loop.create_unix_connection(lambda: link, sock=self.sock)
        link.notice({
            "event": "booted", "pid": self.pid,
            "failed": {path: err.to_payload() for path, err in self.failed.items()},
            "retry": {path: retry_delay(1) for path in self.failed},
            "loaded": self.load_seconds,
            "batched": {path: self._batched(path) for path in self.apps},
        })
        tasks = [loop.create_task(self._beat(stop))]
        tasks += [loop.create_task(self._retry(path, link, stop)) for path in list(self.failed)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        if self._graceful and link.connected:
            await link.executor.drain(self.cfg.dirty_graceful_timeout)
        link.executor.cancel_all()
        link.close()
        # Threads stuck in user code must not keep the process alive: the caller _exits.
        executor.shutdown(wait=False, cancel_futures=True)
        return 0

    def _install_signals(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        def graceful() -> None:
            stop.set()

        def quick() -> None:
            self._graceful = False
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, graceful)
        for sig in (signal.SIGQUIT, signal.SIGINT):
            loop.add_signal_handler(sig, quick)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)

    async def _beat(self, stop: asyncio.Event) -> None:
        timeout = self.cfg.dirty_timeout
        interval = min(1.0, timeout / 4) if timeout > 0 else 1.0
        interval = min(interval, PARENT_POLL)
        while not stop.is_set():
            self.heartbeat.notify()
            if os.getppid() != self.ppid:
                self.log.info("Dirty arbiter %s is gone, worker %s exiting", self.ppid, self.pid)
                self._graceful = False
                stop.set()
                return
            await asyncio.sleep(interval)


class WorkerLink(asyncio.Protocol):
    """The worker's end of the socketpair: frames in, replies out."""

    def __init__(self, worker: DirtyWorker, threads: ThreadPoolExecutor,
                 stop: asyncio.Event) -> None:
        self.worker = worker
        self.stop = stop
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.executor = CallExecutor(worker.apps, worker.failed, threads, self.send,
                                     worker.heartbeat, worker.log, worker.cfg.dirty_threads)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connected = True

    def connection_lost(self, exc: Exception | None) -> None:
        # The arbiter is gone: nobody can receive results any more.
        self.connected = False
        self.worker._graceful = False
        self.stop.set()

    def send(self, data: bytes) -> None:
        if self.connected and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def notice(self, payload: dict[str, Any]) -> None:
        """Tell the arbiter about this worker's life (booted, an app retry...)."""
        self.send(encode_frame(MessageType.STATUS, NOTICE_ID, payload))

    def data_received(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
            for frame in self.decoder:
                kind = frame.type
                if kind is MessageType.REQUEST:
                    self.executor.start(frame.request_id, frame.payload(), frame.flags)
                elif kind is MessageType.CANCEL:
                    self.executor.cancel(frame.request_id)
                elif kind is MessageType.CREDIT:
                    payload = frame.payload() or {}
                    self.executor.credit(frame.request_id, int(payload.get("n", 0)))
                else:
                    self.worker.log.warning("Dirty worker %s ignored a %s frame",
                                            self.worker.pid, kind.name)
        except DirtyProtocolError as exc:
            self.worker.log.error("Dirty worker %s: protocol error from the arbiter: %s",
                                  self.worker.pid, exc)
            self.worker._graceful = False
            self.stop.set()


def _give_tokens(app: Any, tokens: dict[str, list[str]]) -> None:
    try:
        app.resources = {name: list(items) for name, items in tokens.items()}
    except AttributeError:  # __slots__ or a frozen object: the environment still says it
        pass


def run_worker(worker: DirtyWorker) -> int:
    """Entry point in the forked child; always returns an exit code (the caller ``_exit``s)."""
    start = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        code = worker.run()
        worker.log.debug("Dirty worker %s exiting after %.1fs", worker.pid,
                         time.monotonic() - start)
        return code
    return 0
