"""A dirty worker process: loads its apps once, then serves calls from the dirty arbiter.

The worker talks to the arbiter over one end of a socketpair made before the fork. Requests are
multiplexed by id: synchronous actions run in a ``ThreadPoolExecutor(dirty_threads)``, ``async
def`` actions run as tasks on the worker's event loop, and generators stream (see
:mod:`gunicorn.dirty.execution`). When the socketpair closes (the arbiter died) the worker exits.

Boot: every app is imported, instantiated and ``init()``-ed in turn. An app that fails is
reported to the arbiter in the boot notice (its calls then fail fast with the error) instead of
crashing the worker, so a broken app cannot cause a crash loop. Anything else failing before the
worker is booted exits with :data:`BOOT_ERROR`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn import util
from gunicorn.dirty.app import load_dirty_app
from gunicorn.dirty.codec import NOTICE_ID, FrameDecoder, MessageType, encode_frame
from gunicorn.dirty.errors import DirtyAppError, DirtyError, DirtyProtocolError
from gunicorn.dirty.execution import CallExecutor
from gunicorn.hooks import call_user_hook

BOOT_ERROR = 3
PARENT_POLL = 0.5


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (lower latency per hop), else the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def init_error(path: str, exc: BaseException) -> DirtyError:
    """The error calls to ``path`` get when its load or ``init()`` failed."""
    if isinstance(exc, DirtyError):
        return exc
    return DirtyAppError(f"dirty app {path} failed to initialise: {exc}", app_path=path,
                         error_type=type(exc).__name__, traceback=traceback.format_exc())


class DirtyWorker:
    """The dirty worker, as seen by the ``dirty_worker_init(worker)`` hook.

    Attributes: ``pid``, ``ppid`` (the dirty arbiter), ``age`` (spawn order), ``app_paths``,
    ``apps`` (path -> loaded app instance), ``failed`` (path -> error), ``booted``, ``cfg``,
    ``log``.
    """

    def __init__(self, age: int, app_paths: tuple[str, ...], cfg: Any, log: Any,
                 sock: socket.socket, heartbeat: Any, ppid: int) -> None:
        self.age = age
        self.app_paths = app_paths
        self.cfg = cfg
        self.log = log
        self.sock = sock
        self.heartbeat = heartbeat
        self.ppid = ppid
        self.pid = os.getpid()
        self.apps: dict[str, Any] = {}
        self.failed: dict[str, DirtyError] = {}
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
        util.set_owner_process(self.cfg.uid, self.cfg.gid, bool(self.cfg.initgroups))
        util.reseed_random()
        for path in self.app_paths:
            try:
                app = load_dirty_app(path)
                app.init()
            except Exception as exc:  # user code: one broken app must not take the others down
                self.failed[path] = init_error(path, exc)
                self.log.error("Dirty app %s failed to load in worker %s: %s", path, self.pid,
                               exc)
                continue
            self.apps[path] = app
        self.cfg.dirty_worker_init(self)
        self.booted = True

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
        link.send(encode_frame(MessageType.STATUS, NOTICE_ID, {
            "event": "booted", "pid": self.pid,
            "failed": {path: err.to_payload() for path, err in self.failed.items()},
        }))
        beat = loop.create_task(self._beat(stop))
        await stop.wait()
        beat.cancel()
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
                                     worker.heartbeat, worker.log)

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

    def data_received(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
            for frame in self.decoder:
                kind = frame.type
                if kind is MessageType.REQUEST:
                    self.executor.start(frame.request_id, frame.payload())
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


def run_worker(worker: DirtyWorker) -> int:
    """Entry point in the forked child; always returns an exit code (the caller ``_exit``s)."""
    start = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        code = worker.run()
        worker.log.debug("Dirty worker %s exiting after %.1fs", worker.pid,
                         time.monotonic() - start)
        return code
    return 0
