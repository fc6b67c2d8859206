"""The dirty arbiter: a sidecar of the gunicorn master that runs the dirty worker pool.

::

    HTTP worker --DirtyClient--> arbiter.sock --> DirtyArbiter --socketpair--> dirty worker
                                                  | Router: per-app queues,  | loads its apps,
                                                  | least-busy dispatch,     | runs calls
                                                  | id mapping, timeouts     |
                                                  | stash, STATUS, MANAGE    |

The arbiter is one asyncio process (uvloop when installed). It binds ``arbiter.sock`` in the
private directory the plugin chose, forks the workers, routes REQUEST frames (see
:mod:`gunicorn.dirty.router`), forwards replies by id without re-encoding their bodies, answers
STASH, STATUS and MANAGE inline, and supervises the workers (:mod:`gunicorn.dirty.supervisor`).

Signals: HUP replaces the workers (new ones up first), USR1 reopens logs here and in every
worker, TERM stops gracefully, QUIT and INT quickly, TTIN/TTOU add or remove a worker. The
arbiter exits within a second when the master dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from gunicorn import util
from gunicorn.dirty.allocation import Allocator
from gunicorn.dirty.codec import (
    Frame,
    FrameDecoder,
    FrameEncoder,
    FrameFlag,
    MessageType,
    decode_body,
    encode_error,
    encode_frame,
    encode_raw,
)
from gunicorn.dirty.errors import (
    DirtyAppNotFoundError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
    StashError,
)
from gunicorn.dirty.link import TransportLink
from gunicorn.dirty.metrics import DirtyMetrics, arbiter_meter
from gunicorn.dirty.pool import WorkerHandle
from gunicorn.dirty.probe import AppTraits, probe_apps
from gunicorn.dirty.resources import Needs, ResourcePool, parse_needs
from gunicorn.dirty.router import Call, Dispatch, Router
from gunicorn.dirty.specs import AppSpec, parse_specs, resolve_limits
from gunicorn.dirty.stash.redis_mode import arbiter_store
from gunicorn.dirty.stash.saver import StashSaver
from gunicorn.dirty.stash.store import StashStore
from gunicorn.dirty.status import pool_status
from gunicorn.dirty.supervisor import Supervisor
from gunicorn.errors import UnsafePathError
from gunicorn.private_dir import describe_owner, ensure_private_dir, uid_is_trusted
from gunicorn.sockets import peer_credentials

if TYPE_CHECKING:
    from gunicorn.dirty.typed_settings import DirtySettings

MONITOR_INTERVAL = 0.5


class ClientConnection(TransportLink):
    """One client connection (an HTTP worker's DirtyClient, ctl, a stash user)."""

    def __init__(self, arbiter: DirtyArbiter) -> None:
        self.arbiter = arbiter
        self.decoder = FrameDecoder()
        self.encoder = FrameEncoder()  # inline replies (STASH); the loop is single-threaded
        self.transport: asyncio.Transport | None = None
        self.calls: dict[int, Call] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.arbiter.admits(transport.get_extra_info("socket")):
            cast(asyncio.Transport, transport).abort()  # a stream server's: it can abort
            return
        self.arbiter.clients.add(self)

    def data_received(self, data: bytes) -> None:
        arbiter = self.arbiter
        try:
            for kind, rid, body, flags in self.decoder.receive(data):
                # The two frames of the hot path skip the Frame object and the dispatch chain.
                if kind is MessageType.STASH:
                    arbiter.on_stash(self, rid, body)
                elif kind is MessageType.REQUEST:
                    arbiter.on_request(self, rid, body)
                else:
                    arbiter.on_client_frame(self, Frame(kind, rid, body, flags))
        except DirtyProtocolError as exc:
            self.arbiter.log.warning("Dirty client sent a malformed frame: %s", exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.arbiter.clients.discard(self)
        self.arbiter.on_client_lost(self)


class DirtyArbiter:
    """The dirty arbiter process. ``on_dirty_starting(arbiter)`` receives this object.

    Attributes for hooks and STATUS: ``pid``, ``cfg``, ``log``, ``socket_path``,
    ``workers`` (pid -> :class:`~gunicorn.dirty.pool.WorkerHandle`), ``specs``.
    """

    def __init__(self, cfg: DirtySettings, log: Any, socket_path: str, master_pid: int,
                 notify: Callable[[], None] | None = None,
                 master_uid: int | None = None, metrics: DirtyMetrics | None = None) -> None:
        self.cfg = cfg
        # Whom to admit besides root and the workers' user: the master's user (its control
        # socket asks us for STATUS), known before this process dropped its privileges.
        self.master_uid = os.geteuid() if master_uid is None else master_uid
        self._notify = notify  # the master's heartbeat for this sidecar, touched every tick
        self.log = log
        self.socket_path = socket_path
        self.master_pid = master_pid
        self.pid = os.getpid()
        self.clients: set[ClientConnection] = set()
        self.router = Router(float(cfg.dirty_timeout), int(cfg.dirty_max_queue))
        _prepare_import_path(cfg)
        specs = parse_specs(cfg.dirty_apps)
        self.app_paths = frozenset(spec.import_path for spec in specs)
        traits = probe_apps([spec.import_path for spec in specs], log)
        self.specs = resolve_limits(specs, lambda path: traits[path].workers)
        # app -> error for its callers while no worker serves it (load failed, not startable)
        self.broken: dict[str, DirtyError] = {}
        self.needs = self._resource_needs(traits)
        self.allocator = Allocator([s for s in self.specs if s.import_path not in self.broken])
        self.resources = ResourcePool(cfg.dirty_resources)
        # With dirty_stash_url the tables are in Redis: declared there, none held here.
        self.stash = arbiter_store(_make_stash(self.specs, traits, log), log)
        self.stash_saver: StashSaver | None = None
        if cfg.dirty_stash_file:
            self.stash_saver = StashSaver(self.stash, cfg.dirty_stash_file,
                                          cfg.dirty_stash_save_interval, log)
        # Metrics (gunicorn.dirty.metrics): recorded where calls end, sampled every tick.
        self.meter = arbiter_meter(metrics, self.app_paths, traits, self.stash.table_names())
        self.supervisor = Supervisor(cfg, log, self, self.allocator, self.resources, self.needs,
                                     reaped=self.meter.reaped)
        self.server: asyncio.Server | None = None
        self._stop: asyncio.Event | None = None
        self._graceful = True
        self.started_at = time.monotonic()

    def _resource_needs(self, traits: dict[str, AppTraits]) -> dict[str, Needs]:
        """Each app's ``resources`` checked against ``dirty_resources``; an app whose
        declaration cannot be met is never started, and its callers learn why."""
        needs: dict[str, Needs] = {}
        for spec in self.specs:
            path = spec.import_path
            try:
                needs[path] = parse_needs(traits[path].resources, self.cfg.dirty_resources)
            except ValueError as exc:
                self.log.error("Dirty app %s is not started: it %s", path, exc)
                self.broken[path] = DirtyNoWorkersAvailableError(
                    path, f"dirty app {path} is not started: it {exc}")
        return needs

    @property
    def workers(self) -> dict[int, WorkerHandle]:
        return {h.pid: h for h in self.supervisor.handles.values()}

    # -- process life -------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; returns the exit code."""
        from gunicorn.dirty.worker import new_event_loop

        self.pid = os.getpid()
        problem = self._preflight()
        if problem is not None:
            self.log.error("Dirty arbiter cannot start: %s", problem)
            return 1
        os.environ["GUNICORN_DIRTY_SOCKET"] = self.socket_path
        util.set_process_title(f"dirty-arbiter [{self.cfg.proc_name or 'gunicorn'}]")
        self.cfg.on_dirty_starting(self)
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            # After a crash the directory stays for the arbiter the master starts next.
            _unlink_quietly(self.socket_path)
            with contextlib.suppress(Exception):  # best effort: the process is ending
                loop.close()
        self.log.info("Dirty arbiter exiting (pid: %s)", self.pid)
        return 0

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stop = asyncio.Event()
        self._install_signals(loop)
        if self.stash_saver is not None:
            self.stash_saver.load()  # before the socket exists: nobody sees an empty stash
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        old_umask = os.umask(0o177)
        try:
            self.server = await loop.create_unix_server(lambda: ClientConnection(self),
                                                        path=self.socket_path)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self.log.info("Dirty arbiter listening at %s (pid: %s)", self.socket_path, self.pid)
        self.supervisor.start(self.allocator.initial(self.cfg.dirty_workers))
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), MONITOR_INTERVAL)
            self._tick()
        await self._shutdown()

    def _preflight(self) -> str | None:
        """What stops this arbiter from serving, checked as the user it runs as (``user``
        with a root master): its socket directory must be its own private directory (the
        master made it for this user), and it must be able to create its workers' heartbeat
        files. A stash file it cannot save is logged only."""
        try:
            # The master gave the directory to the workers' user; a missing one (removed after
            # an ordered stop) is made again, private, by and for that user.
            ensure_private_dir(os.path.dirname(self.socket_path), self.cfg.uid, self.cfg.gid)
        except (UnsafePathError, OSError) as exc:
            return f"its socket directory is unusable: {exc}"
        user = describe_owner(os.geteuid())
        beats = self.cfg.worker_tmp_dir or tempfile.gettempdir()
        if not os.access(beats, os.W_OK | os.X_OK):
            where = "worker_tmp_dir" if self.cfg.worker_tmp_dir else "TMPDIR (or worker_tmp_dir)"
            return (f"it runs as {user} and cannot create its workers' heartbeat files in "
                    f"{beats}; make {where} a directory {user} can write")
        stash = self.cfg.dirty_stash_file
        if stash and not os.access(os.path.dirname(os.path.abspath(stash)), os.W_OK | os.X_OK):
            self.log.error("dirty_stash_file: the dirty arbiter runs as %s and cannot write in "
                           "the directory of %s: the stash will not be saved", user, stash)
        return None

    def _remove_socket(self) -> None:
        _unlink_quietly(self.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.socket_path))

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        handlers = {
            signal.SIGTERM: lambda: self.stop(graceful=True),
            signal.SIGINT: lambda: self.stop(graceful=False),
            signal.SIGQUIT: lambda: self.stop(graceful=False),
            signal.SIGHUP: self.supervisor.reload,
            signal.SIGUSR1: self._reopen_logs,
            signal.SIGTTIN: lambda: self.supervisor.add(1),
            signal.SIGTTOU: lambda: self.supervisor.remove(1),
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)

    def _reopen_logs(self) -> None:
        self.log.reopen_files()
        self.supervisor.signal_all(signal.SIGUSR1)

    def stop(self, graceful: bool) -> None:
        if self._stop is not None and not self._stop.is_set():
            self._graceful = graceful
            self._stop.set()

    def _tick(self) -> None:
        if self._notify is not None:
            self._notify()
        if os.getppid() != self.master_pid:
            self.log.warning("Master %s is gone, dirty arbiter shutting down", self.master_pid)
            self.stop(graceful=False)
            return
        now = time.monotonic()
        for call in self.router.expired(now):
            # The router's worker keys are the handles' ages.
            handle = self.supervisor.handles.get(cast(int, call.worker.key)) if call.worker else None
            timeout = self.router.timeout
            self.log.error("Dirty call %s.%s timed out after %ss in worker %s", call.app,
                           call.action, timeout, handle.pid if handle else "?")
            self._cancel_in_worker(call, now)
            self._reply_error(call, DirtyTimeoutError(
                f"dirty call timed out after {timeout}s (dirty_timeout)", timeout), "timeout")
            if handle is not None:
                self.supervisor.recycle(handle, "a call timed out")
        self.supervisor.tick(now)
        for app in self.router.stranded():
            if not self.supervisor.expects(app):
                error = self.broken.get(app) or DirtyNoWorkersAvailableError(app)
                for call in self.router.fail_queued(app):
                    self._reply_error(call, error, "unavailable")
        self.stash.expire(now)
        self.meter.sample(self, now)
        if self.stash_saver is not None:
            self.stash_saver.tick(now)

    async def _shutdown(self) -> None:
        graceful = self._graceful
        self.log.info("Dirty arbiter stopping (%s)", "graceful" if graceful else "quick")
        if self.server is not None:
            self.server.close()
        self._remove_socket()
        for call in self.router.fail_all_queued():
            self._reply_error(call, DirtyConnectionError("the dirty arbiter is shutting down",
                                                         self.socket_path), "unavailable")
        await self.supervisor.stop(graceful)
        for call in self.router.drain_all():
            self._reply_error(call, DirtyConnectionError("the dirty arbiter stopped",
                                                         self.socket_path), "unavailable")
        for client in list(self.clients):
            client.close()
        if self.stash_saver is not None:
            self.stash_saver.save_now()

    # -- client frames ------------------------------------------------------------------------

    def admits(self, sock: Any) -> bool:
        """Whether a new client may talk to us: its uid (SO_PEERCRED, whatever the socket's
        file mode) is root, ours, the master's, or the HTTP workers' (``user``, which is ours
        when the master dropped it). Others are logged."""
        try:
            pid, uid, _ = peer_credentials(sock)
        except OSError:
            return False
        if uid_is_trusted(uid) or uid in (self.cfg.uid, self.master_uid):
            return True
        self.log.warning("Dirty arbiter: refusing a client running as uid %s (pid %s)", uid, pid)
        return False

    def on_client_frame(self, client: ClientConnection, frame: Frame) -> None:
        kind, rid = frame.type, frame.request_id
        if kind is MessageType.REQUEST:
            self.on_request(client, rid, frame.body)
        elif kind is MessageType.CANCEL:
            call = client.calls.pop(rid, None)
            if call is not None:
                now = time.monotonic()
                self._cancel_in_worker(call, now)
                self.meter.finished(call, "cancelled", now)
        elif kind is MessageType.CREDIT:
            call = client.calls.get(rid)
            if call is not None and call.worker is not None:
                self.supervisor.send(call.worker.key,
                                     encode_raw(MessageType.CREDIT, call.worker_id, frame.body))
                credit = frame.payload()
                n = credit.get("n", 0) if isinstance(credit, dict) else 0
                self.router.credited(call, n if isinstance(n, int) else 0, time.monotonic())
        elif kind is MessageType.STATUS:
            client.send(encode_frame(MessageType.RESPONSE, rid, {"result": self.status()}))
        elif kind is MessageType.MANAGE:
            self._inline(client, rid, lambda: self.supervisor.manage(frame.payload()))
        elif kind is MessageType.STASH:
            self.on_stash(client, rid, frame.body)
        else:
            client.send(encode_error(rid, DirtyProtocolError(
                f"a client may not send {kind.name} frames")))

    def _inline(self, client: ClientConnection, rid: int, fn: Any) -> None:
        try:
            data = encode_frame(MessageType.RESPONSE, rid, {"result": fn()})
        except DirtyError as exc:
            data = encode_error(rid, exc)
        client.send(data)

    def on_stash(self, client: ClientConnection, rid: int, body: bytes) -> None:
        """Answer a STASH frame from the tables, inline (no dirty worker involved)."""
        try:
            payload = decode_body(body)
            if not isinstance(payload, dict):
                raise DirtyProtocolError("STASH body is not a map")
            self.meter.stash_op(payload.get("op"))
            result = self.stash.apply(payload, time.monotonic())
            data = client.encoder.frame(MessageType.RESPONSE, rid, {"result": result})
        except DirtyError as exc:
            data = encode_error(rid, exc)
        client.send(data)

    def on_request(self, client: ClientConnection, rid: int, body: bytes) -> None:
        """Route a REQUEST frame to a dirty worker; its raw ``body`` is forwarded as is.
        An undecodable body raises DirtyProtocolError (the connection is then closed)."""
        payload = decode_body(body)
        app = payload.get("app") if isinstance(payload, dict) else None
        if not isinstance(app, str):
            client.send(encode_error(rid, DirtyProtocolError("REQUEST without an app path")))
            return
        if rid in client.calls:
            client.send(encode_error(rid, DirtyProtocolError(f"request id {rid} is in use")))
            return
        if app not in self.app_paths:
            client.send(encode_error(rid, DirtyAppNotFoundError(app)))
            return
        action = payload.get("action")
        call = Call(client, rid, app, body, action if isinstance(action, str) else "")
        call.submitted = now = time.monotonic()
        try:
            dispatch = self.router.submit(call, now, self.supervisor.expects(app))
        except DirtyError as exc:
            self.meter.refused(call, exc)
            client.send(encode_error(rid, self.broken.get(app, exc)))
            return
        client.calls[rid] = call
        if dispatch is not None:
            self._forward(dispatch)

    def _forward(self, dispatch: Dispatch) -> None:
        call = dispatch.call
        assert call.worker is not None
        flags = FrameFlag.PIPELINED if dispatch.pipelined else 0
        self.supervisor.send(call.worker.key,
                             encode_raw(MessageType.REQUEST, call.worker_id, call.body, flags))

    def _cancel_in_worker(self, call: Call, now: float) -> None:
        call.client.calls.pop(call.client_id, None)
        key = call.worker.key if call.worker is not None else None
        worker_id = call.worker_id
        held, dispatches = self.router.cancel(call, now)
        if held and key is not None:
            self.supervisor.send(key, encode_raw(MessageType.CANCEL, worker_id, b""))
        self._forward_all(dispatches)

    def on_client_lost(self, client: ClientConnection) -> None:
        now = time.monotonic()
        for call in list(client.calls.values()):
            self._cancel_in_worker(call, now)
            self.meter.finished(call, "cancelled", now)
        client.calls.clear()

    def _reply_error(self, call: Call, error: DirtyError, outcome: str) -> None:
        """Answer ``call`` with ``error``; ``outcome`` labels it in the metrics."""
        self.meter.finished(call, outcome, time.monotonic())
        call.client.calls.pop(call.client_id, None)
        call.client.send(encode_error(call.client_id, error))

    # -- the supervisor's events (PoolHost) ---------------------------------------------------

    def worker_started(self, handle: WorkerHandle) -> None:
        self.router.add_worker(handle.age, (), self.cfg.dirty_threads, loading=handle.apps)

    def worker_ready(self, handle: WorkerHandle) -> None:
        failed = handle.failed
        served = [app for app in handle.apps if app not in failed]
        dispatches = self.router.worker_ready(handle.age, served, handle.batch_sizes(),
                                              time.monotonic(), not handle.retiring)
        for app in handle.apps:
            if app in failed:
                self.app_unavailable(app, failed[app])
            else:
                self.broken.pop(app, None)
        self._forward_all(dispatches)

    def app_changed(self, handle: WorkerHandle, app: str) -> None:
        if app in handle.loading:
            self.router.app_loading(handle.age, app)
        elif app in handle.failed:
            self.router.app_failed(handle.age, app)
            self.app_unavailable(app, handle.failed[app])
        else:
            self.broken.pop(app, None)
            self._forward_all(self.router.app_loaded(handle.age, app, handle.batch_sizes(),
                                                     time.monotonic()))

    def worker_retiring(self, handle: WorkerHandle) -> None:
        self.router.set_accepting(handle.age, False, time.monotonic())

    def worker_gone(self, handle: WorkerHandle) -> None:
        unstarted: list[Call] = []
        for call in self.router.remove_worker(handle.age):
            if call.started:
                self._reply_error(call, DirtyWorkerError(
                    f"dirty worker {handle.pid} died while running {call.app}.{call.action}",
                    handle.pid), "worker_died")
            else:
                unstarted.append(call)
        if unstarted:
            # Pipelined calls it never began: safe to run elsewhere (issue 12).
            self.log.info("Dirty worker %s died with %d call(s) it had not started; sending "
                          "them to other workers", handle.pid, len(unstarted))
            self._forward_all(self.router.requeue(unstarted, time.monotonic()))

    def app_unavailable(self, app: str, error: DirtyError) -> None:
        self.broken[app] = error
        if not self.router.holders(app, ready_only=False):
            for call in self.router.fail_queued(app):
                self._reply_error(call, error, "unavailable")

    def inherited_fds(self) -> list[int]:
        fds = [sock.fileno() for sock in (self.server.sockets if self.server else ())]
        for client in self.clients:
            sock = client.transport.get_extra_info("socket") if client.transport else None
            if sock is not None:
                fds.append(sock.fileno())
        return fds

    def worker_frame(self, handle: WorkerHandle, frame: Frame) -> None:
        kind, wid, key, pid = frame.type, frame.request_id, handle.age, handle.pid
        now = time.monotonic()
        if kind is MessageType.STARTED:
            self.router.started(key, wid)
            return
        if kind is MessageType.CHUNK:
            call = self.router.lookup(key, wid)
            if call is None:
                self.log.debug("Dropped a chunk for unknown id %s from worker %s", wid, pid)
                return
            self.router.progress(call, now)
            call.client.send(encode_raw(kind, call.client_id, frame.body))
            return
        if kind in (MessageType.RESPONSE, MessageType.ERROR, MessageType.END):
            call, dispatches = self.router.finish(key, wid, now)
            if call is None:
                self.log.debug("Dropped a late %s for id %s from worker %s", kind.name, wid, pid)
            elif call.client.calls.pop(call.client_id, None) is not None:
                call.client.send(encode_raw(kind, call.client_id, frame.body))
                self.meter.finished(call, "app_error" if kind is MessageType.ERROR else "ok",
                                    now)
            self._forward_all(dispatches)
            return
        self.log.warning("Dirty worker %s sent an unexpected %s frame", pid, kind.name)

    def _forward_all(self, dispatches: list[Dispatch]) -> None:
        for dispatch in dispatches:
            self._forward(dispatch)

    # -- STATUS -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The STATUS reply (``show dirty``): see :func:`gunicorn.dirty.status.pool_status`."""
        return pool_status(self)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _prepare_import_path(cfg: DirtySettings) -> None:
    """Make app modules importable as HTTP workers do (``--chdir``, ``--pythonpath``)."""
    from gunicorn.app.loader import ensure_path

    ensure_path(os.getcwd())
    for path in reversed((cfg.pythonpath or "").split(",")):
        if path.strip():
            ensure_path(os.path.abspath(path.strip()))


def _make_stash(specs: list[AppSpec], traits: dict[str, AppTraits], log: Any) -> StashStore:
    """The stash store, with the tables the apps declare in ``stashes`` created."""
    store = StashStore()
    for spec in specs:
        names = list(traits[spec.import_path].stashes)
        try:
            store.ensure(names)
        except StashError as exc:
            log.warning("%s: bad stashes declaration %r: %s", spec.import_path, names, exc)
    return store
