"""Supervision of the dirty workers: spawn, boot, replace, scale, recycle, stop.

* A worker that dies after booting is replaced at once by a worker with the same apps.
* A worker that dies before booting counts as a boot failure: the replacement waits, doubling
  from :data:`BACKOFF_MIN` up to :data:`BACKOFF_MAX`, and meanwhile calls for apps nobody holds
  fail fast with :class:`DirtyNoWorkersAvailableError` instead of waiting.
* HUP: every worker gets a replacement; an old worker is retired once its replacement booted.
* A worker whose call timed out, or whose event loop stopped beating, is recycled: a replacement
  starts and the old one gets SIGTERM, then SIGKILL after ``dirty_graceful_timeout``.
* TTIN/TTOU and MANAGE add/remove go through :class:`~gunicorn.dirty.allocation.Allocator`;
  removal never takes an app below its declared worker count.
* Resource tokens (:class:`~gunicorn.dirty.resources.ResourcePool`) are granted before a worker
  is forked and freed only when it has been reaped. So a worker holding tokens is replaced
  *new-first* (the replacement boots, then the old one stops) only when spare tokens allow;
  otherwise *old-first*: the old one stops, and its replacement is forked with the same tokens
  once it is reaped. A HUP does the old-first replacements one at a time, so an app loses at
  most one holder at once, and calls for it wait meanwhile instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from gunicorn.dirty.allocation import Allocator
from gunicorn.dirty.codec import NOTICE_ID, Frame, MessageType
from gunicorn.dirty.errors import (
    DirtyError,
    DirtyNoWorkersAvailableError,
    error_from_payload,
)
from gunicorn.dirty.pool import ArbiterLink, WorkerHandle, fork_worker, reap
from gunicorn.dirty.resources import Needs, ResourcePool
from gunicorn.hooks import call_user_hook
from gunicorn.workers.heartbeat import Heartbeat

if TYPE_CHECKING:
    from gunicorn.dirty.typed_settings import DirtySettings

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
QUICK_STOP = 1.0
STOP_POLL = 0.05
REAP_DELAY = 0.02
REAP_TRIES = 100


class PoolHost(Protocol):
    """What the supervisor tells its owner (the dirty arbiter), and the one thing it asks.

    The supervisor owns processes; the host owns routing and the callers. Every method is an
    event about one worker (``handle.age`` is the router's key for it), except
    :meth:`inherited_fds`. The host object is also what the user hooks ``dirty_post_fork`` and
    ``dirty_worker_exit`` receive as their ``arbiter`` argument.
    """

    def worker_started(self, handle: WorkerHandle) -> None:
        """A worker was forked: it is loading its apps and takes no calls yet."""

    def worker_ready(self, handle: WorkerHandle) -> None:
        """A worker finished loading (``handle.failed`` names the apps that failed)."""

    def app_changed(self, handle: WorkerHandle, app: str) -> None:
        """A retry of ``app``'s ``init()`` in a worker began (``app in handle.loading``),
        failed (``app in handle.failed``) or succeeded (neither)."""

    def worker_retiring(self, handle: WorkerHandle) -> None:
        """A worker is being stopped: it takes no new calls, its running calls may finish."""

    def worker_frame(self, handle: WorkerHandle, frame: Frame) -> None:
        """A reply (RESPONSE, ERROR, CHUNK, END) from a worker, for one of its calls."""

    def worker_gone(self, handle: WorkerHandle) -> None:
        """A worker's link dropped (it died or is about to): its calls must be settled."""

    def app_unavailable(self, app: str, error: DirtyError) -> None:
        """``app`` failed to load in a worker; ``error`` is what its callers should get."""

    def inherited_fds(self) -> list[int]:
        """The host's descriptors (listening socket, client connections) a child must close."""


class Supervisor:
    """The worker processes of one dirty arbiter, keyed by age (the router uses the same key)."""

    def __init__(self, cfg: DirtySettings, log: Any, host: PoolHost, allocator: Allocator,
                 resources: ResourcePool | None = None,
                 needs: dict[str, Needs] | None = None,
                 reaped: Callable[[int], None] | None = None) -> None:
        self.host = host
        # Told the pid of every worker reaped (the metrics drop its live gauges).
        self._reaped = reaped
        self.cfg = cfg
        self.log = log
        self.allocator = allocator
        self.resources = resources if resources is not None else ResourcePool({})
        self.needs = needs or {}
        # app -> why a worker planned for it was not started (no free tokens), for STATUS.
        self.not_started: dict[str, str] = {}
        self._reload_queue: list[WorkerHandle] = []  # HUP: workers still to be replaced
        self._rolling: WorkerHandle | None = None  # the old-first replacement in progress
        self.handles: dict[int, WorkerHandle] = {}
        self._by_pid: dict[int, WorkerHandle] = {}
        # Workers whose link dropped but which are not reaped yet: no longer in ``handles``.
        self._lost: dict[int, WorkerHandle] = {}
        self._age = 0
        self.target = 0
        self._respawns: list[tuple[float, tuple[str, ...], WorkerHandle | None]] = []
        self._boot_failures = 0
        self._stopping = False

    # -- spawning -----------------------------------------------------------------------------

    def start(self, plans: list[tuple[str, ...]]) -> None:
        started = sum(1 for apps in plans if self.spawn(apps) is not None)
        wanted = self.cfg.dirty_workers
        if started < wanted:
            self.log.info("Starting %d dirty workers instead of %d: the others would load no "
                          "app (every app is at its worker limit, or lacks free resource "
                          "tokens)", started, wanted)
        self.target = started

    def spawn(self, apps: tuple[str, ...], replaces: WorkerHandle | None = None,
              prefer: dict[str, dict[str, list[str]]] | None = None) -> WorkerHandle | None:
        """Fork a worker for ``apps``, granting their tokens first; apps whose tokens are not
        free are left out (logged once per app). None when no app is left."""
        kept, refused = self.resources.fit(apps, self.needs)
        for app in refused:
            self._refuse(app)
        if not kept:
            return None
        self._age += 1
        handle = WorkerHandle(self._age, tuple(kept), Heartbeat(self.cfg))
        handle.replaces = replaces
        handle.resources = self.resources.grant(handle.age, kept, self.needs, prefer)
        try:
            sock = fork_worker(handle, self.cfg, self.log, self._inherited_fds)
        except OSError:
            self.resources.release(handle.age)
            raise
        self.handles[handle.age] = handle
        self._by_pid[handle.pid] = handle
        self.host.worker_started(handle)
        link = ArbiterLink(handle, self._on_frame, self._on_lost, self.log)
        handle.link = link
        handle.sock = sock
        loop = asyncio.get_running_loop()
        loop.create_task(loop.create_unix_connection(lambda: link, sock=sock))
        tokens = "; ".join(f"{name} {','.join(t)}" for per_app in handle.resources.values()
                           for name, t in per_app.items())
        self.log.info("Spawned dirty worker (pid: %s) for %s%s", handle.pid, ", ".join(kept),
                      f" with {tokens}" if tokens else "")
        # The worker is already running whatever the hook does.
        call_user_hook(self.log, "dirty_post_fork hook", self.cfg.dirty_post_fork, self.host,
                       handle)
        return handle

    def _refuse(self, app: str) -> None:
        need = ", ".join(f"{name} x{count}" for name, count in self.needs.get(app, {}).items())
        free = ", ".join(f"{len(self.resources.free(name))} {name} free"
                         for name in self.needs.get(app, {}))
        reason = f"needs {need} per worker and only {free}"
        if app not in self.not_started:
            self.log.warning("Dirty app %s is not started in one more worker: it %s", app,
                             reason)
        self.not_started[app] = reason

    def _needs_of(self, apps: tuple[str, ...]) -> dict[str, int]:
        total: dict[str, int] = {}
        for app in apps:
            for name, count in self.needs.get(app, {}).items():
                total[name] = total.get(name, 0) + count
        return total

    def _inherited_fds(self) -> list[int]:
        """Descriptors of the arbiter that a new worker must not keep open."""
        fds = self.host.inherited_fds()
        for handle in [*self.handles.values(), *self._lost.values()]:
            fds.append(handle.heartbeat.fileno())
            sock = getattr(handle, "sock", None)
            transport = handle.link.transport if handle.link is not None else None
            if transport is not None and transport.get_extra_info("socket") is not None:
                fds.append(transport.get_extra_info("socket").fileno())
            elif sock is not None and sock.fileno() >= 0:
                fds.append(sock.fileno())
        return [fd for fd in fds if fd >= 0]

    # -- worker events ------------------------------------------------------------------------

    def _on_frame(self, handle: WorkerHandle, frame: Frame) -> None:
        if frame.request_id != NOTICE_ID:
            self.host.worker_frame(handle, frame)
        elif frame.type is MessageType.STATUS:
            self._notice(handle, frame.payload() or {})
        else:
            self.log.warning("Dirty worker %s sent an unexpected %s notice", handle.pid,
                             frame.type.name)

    def _on_lost(self, handle: WorkerHandle) -> None:
        # EOF on the socketpair comes as soon as the worker dies, before SIGCHLD is handled:
        # settle its calls now rather than at the next reap.
        self.host.worker_gone(handle)
        if handle.pid in self._by_pid and not self._stopping:
            # The worker is of no more use: STATUS, the allocator and the health checks stop
            # counting it now rather than at the reap, which under load can come much later
            # (STATUS would show a dead pid as booted). A booted one is replaced now, so calls
            # for its apps queue for the replacement instead of failing with
            # DirtyNoWorkersAvailableError until the next tick.
            if self.handles.pop(handle.age, None) is not None:
                self._lost[handle.age] = handle
                if self._crashed(handle):
                    if handle.resources:
                        # Its tokens are freed only once it is reaped (soon, below): the
                        # replacement is forked then, and calls wait for it meanwhile.
                        handle.replace_on_exit = True
                    else:
                        self.spawn(handle.apps)
            # Usually the worker just died: reap it soon (SIGCHLD belongs to uvloop, so
            # there is no signal to wait for).
            asyncio.get_running_loop().call_soon(self._reap_pid, handle, 0)

    def _crashed(self, handle: WorkerHandle) -> bool:
        """A worker that ended while it was expected to serve (it gets a replacement)."""
        return (handle.booted and not self._stopping and not handle.retiring
                and not handle.superseded)

    def _reap_pid(self, handle: WorkerHandle, tries: int) -> None:
        if handle.pid not in self._by_pid:
            return
        try:
            pid, status = os.waitpid(handle.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = handle.pid, 0
        if pid:
            self._by_pid.pop(handle.pid, None)
            self._exited(handle, status)
        elif tries >= REAP_TRIES:
            handle.signal(signal.SIGKILL)  # lost its link but still running: it is useless
        else:
            asyncio.get_running_loop().call_later(REAP_DELAY, self._reap_pid, handle, tries + 1)

    def _notice(self, handle: WorkerHandle, notice: Any) -> None:
        if not isinstance(notice, dict) or handle.age not in self.handles:
            return
        event, app = notice.get("event"), notice.get("app")
        if event == "booted":
            self._booted(handle, notice)
        elif app in handle.apps and event in ("loading", "loaded", "failed"):
            self._app_event(handle, str(app), event, notice)
        else:
            self.log.warning("Dirty worker %s sent an unknown notice %r", handle.pid, event)

    def _booted(self, handle: WorkerHandle, notice: dict[str, Any]) -> None:
        now = time.monotonic()
        handle.booted = True
        handle.booted_at = now
        failed = notice.get("failed") or {}
        handle.failed = {app: error_from_payload(err) for app, err in failed.items()}
        handle.retry_at = {app: now + float(delay)
                           for app, delay in (notice.get("retry") or {}).items()}
        handle.load_seconds = dict(notice.get("loaded") or {})
        handle.batches = dict(notice.get("batched") or {})
        self._boot_failures = 0
        self.log.info("Dirty worker %s booted in %.2fs", handle.pid, now - handle.started_at)
        self.host.worker_ready(handle)
        old, handle.replaces = handle.replaces, None
        if old is not None and old.age in self.handles:
            self.retire(old, "replaced")
        if self._rolling is handle:
            self._rolling = None
        self._advance_reload()

    def _app_event(self, handle: WorkerHandle, app: str, event: str,
                   notice: dict[str, Any]) -> None:
        """An ``init()`` retry in a worker began, succeeded or failed again."""
        if event == "loading":
            handle.loading.add(app)
        else:
            handle.loading.discard(app)
            handle.retry_at.pop(app, None)
        if event == "loaded":
            handle.failed.pop(app, None)
            handle.load_seconds[app] = float(notice.get("seconds") or 0.0)
            handle.batches[app] = dict(notice.get("batched") or {})
            self.log.info("Dirty app %s loaded in worker %s after a retry", app, handle.pid)
        elif event == "failed":
            handle.failed[app] = error_from_payload(notice.get("error"))
            handle.retry_at[app] = time.monotonic() + float(notice.get("retry") or 0.0)
        self.host.app_changed(handle, app)

    def handle(self, age: int) -> WorkerHandle | None:
        """The worker of that age, live or dead but not reaped yet (it still holds tokens)."""
        return self.handles.get(age) or self._lost.get(age)

    def expects(self, app: str) -> bool:
        """A replacement holding ``app`` will be forked as soon as a worker is reaped (its
        tokens freed), so calls for ``app`` may wait for it instead of failing."""
        return any(h.replace_on_exit and app in h.apps for h in self._by_pid.values())

    def reap(self) -> None:
        for pid, status in reap():
            handle = self._by_pid.pop(pid, None)
            if handle is not None:
                self._exited(handle, status)

    def _exited(self, handle: WorkerHandle, status: int) -> None:
        handle.exit_status = status
        if self._reaped is not None:
            self._reaped(handle.pid)
        self.handles.pop(handle.age, None)
        replaced = (self._lost.pop(handle.age, None) is not None and self._crashed(handle)
                    and not handle.replace_on_exit)
        self._on_lost(handle)
        freed = self.resources.release(handle.age)  # only now: the process is gone
        handle.heartbeat.close()
        if handle.link is not None:
            handle.link.close()
        call_user_hook(self.log, "dirty_worker_exit hook", self.cfg.dirty_worker_exit,
                       self.host, handle)
        how = handle.describe_exit()
        if freed:
            self.log.debug("Dirty worker %s freed %s", handle.pid, ", ".join(freed))
        try:
            self._after_exit(handle, how, replaced)
        finally:
            if self._rolling is handle and not handle.replace_on_exit:
                self._rolling = None
            if not self._stopping:
                self._advance_reload()

    def _after_exit(self, handle: WorkerHandle, how: str, replaced: bool) -> None:
        if self._stopping:
            self.log.info("Dirty worker %s %s", handle.pid, how)
            return
        if handle.replace_on_exit:
            self.log.info("Dirty worker %s %s; starting its replacement", handle.pid, how)
            new = self.spawn(handle.apps, prefer=handle.resources)
            if self._rolling is handle:
                self._rolling = new
            return
        if handle.retiring:
            self.log.info("Dirty worker %s %s", handle.pid, how)
            return
        if handle.superseded:
            self.log.warning("Dirty worker %s %s while being replaced", handle.pid, how)
            return
        now = time.monotonic()
        if handle.booted:
            self.log.error("Dirty worker %s %s; replacing it", handle.pid, how)
            if not replaced:  # reaped before its link dropped: not replaced yet
                self.spawn(handle.apps, prefer=handle.resources)
            return
        self._boot_failures += 1
        delay = min(BACKOFF_MIN * 2 ** (self._boot_failures - 1), BACKOFF_MAX)
        self.log.error("Dirty worker %s failed to boot (%s); retrying in %.1fs", handle.pid,
                       how, delay)
        self._respawns.append((now + delay, handle.apps, handle.replaces))
        for app in handle.apps:
            self.host.app_unavailable(app, DirtyNoWorkersAvailableError(
                app, f"no dirty worker holds {app}: workers fail to boot "
                     f"(next attempt in {delay:.1f}s)"))

    # -- periodic -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.reap()
        due = [r for r in self._respawns if r[0] <= now]
        if due and not self._stopping:
            self._respawns = [r for r in self._respawns if r[0] > now]
            for _, apps, replaces in due:
                self.spawn(apps, replaces if replaces is not None and
                           replaces.age in self.handles else None)
        timeout = self.cfg.dirty_timeout
        for handle in list(self.handles.values()):
            if handle.kill_at is not None and now >= handle.kill_at:
                self.log.warning("Dirty worker %s did not stop in time, killing it", handle.pid)
                handle.signal(signal.SIGKILL)
                handle.kill_at = None
            elif (timeout > 0 and handle.booted and not handle.retiring
                  and handle.last_heartbeat() > timeout):
                self.log.critical("DIRTY WORKER TIMEOUT (pid:%s): no heartbeat for %ss",
                                  handle.pid, timeout)
                self.recycle(handle, "its event loop is blocked")

    # -- operations ---------------------------------------------------------------------------

    def retire(self, handle: WorkerHandle, reason: str) -> None:
        if handle.retiring:
            return
        handle.retiring = True
        self.host.worker_retiring(handle)
        self.log.info("Stopping dirty worker %s (%s)", handle.pid, reason)
        handle.signal(signal.SIGTERM)
        handle.kill_at = time.monotonic() + float(self.cfg.dirty_graceful_timeout)

    def recycle(self, handle: WorkerHandle, reason: str) -> None:
        """Replace a stuck worker: its replacement starts now (old-first when its tokens are
        needed for it), it is stopped."""
        if handle.retiring:
            return
        if not handle.superseded:
            if self.resources.can_grant(self._needs_of(handle.apps)):
                self.spawn(handle.apps)
            else:
                handle.replace_on_exit = True
        self.retire(handle, reason)

    def reload(self) -> None:
        """HUP: replace every worker, new ones first where spare tokens allow."""
        current = [h for h in self.handles.values() if not h.retiring and not h.superseded]
        self.log.info("Dirty arbiter reloading: replacing %d workers", len(current))
        self._reload_queue.extend(h for h in current if h not in self._reload_queue)
        self._advance_reload()

    def _advance_reload(self) -> None:
        """Replace the next workers of a HUP: each new-first while its tokens are free, else
        old-first, one at a time (after the previous old-first replacement booted)."""
        while self._reload_queue and not self._stopping:
            old = self._reload_queue[0]
            if old.age not in self.handles or old.retiring or old.superseded:
                self._reload_queue.pop(0)
                continue
            if self.resources.can_grant(self._needs_of(old.apps)):
                self._reload_queue.pop(0)
                old.superseded = True
                if self.spawn(old.apps, replaces=old) is None:
                    old.superseded = False
                continue
            if self._rolling is not None:
                return  # one old-first replacement at a time: wait for it to boot
            self._reload_queue.pop(0)
            old.replace_on_exit = True
            self._rolling = old
            self.retire(old, "reload: no spare tokens, its own go to its replacement")

    def _current(self) -> dict[Any, tuple[str, ...]]:
        """App lists of the workers that count toward the pool (pending respawns and the
        replacements waiting for a reap included)."""
        current: dict[Any, tuple[str, ...]] = {
            h.age: h.apps for h in self.handles.values() if not h.retiring and not h.superseded}
        for i, (_, apps, _) in enumerate(self._respawns):
            current[("respawn", i)] = apps
        for handle in self._by_pid.values():
            if handle.replace_on_exit:
                current[("replacing", handle.age)] = handle.apps
        return current

    def add(self, count: int) -> tuple[int, str]:
        """Start up to ``count`` workers (TTIN, MANAGE add); returns how many, and why not
        more."""
        added = 0
        reason = ""
        for _ in range(max(1, count)):
            apps = self.allocator.for_new_worker(self._current())
            handle = self.spawn(apps) if apps else None
            if handle is None:
                reason = ("every app has reached its worker limit" if not apps else
                          "; ".join(f"{app} {self.not_started[app]}" for app in apps
                                    if app in self.not_started)
                          or "no app can be started")
                self.log.warning("Not adding a dirty worker: %s", reason)
                break
            for app in handle.apps:
                self.not_started.pop(app, None)
            self.target += 1
            added += 1
        return added, reason

    def remove(self, count: int) -> tuple[int, str]:
        """Stop up to ``count`` workers (TTOU, MANAGE remove), never taking an app below its
        floor; returns how many, and why not more."""
        removed = 0
        reason = ""
        for _ in range(max(1, count)):
            current = self._current()
            order = sorted(k for k in current if isinstance(k, int))
            key, reason = self.allocator.removable(current, order)
            if key is None:
                self.log.warning("Cannot remove a dirty worker: %s", reason)
                break
            self.retire(self.handles[key], "pool shrunk")  # type: ignore[index]
            self.target -= 1
            removed += 1
        return removed, reason

    def manage(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or payload.get("op") not in ("add", "remove"):
            raise DirtyError(f"unknown manage operation: {payload!r:.100}")
        count = payload.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise DirtyError(f"manage count must be a positive integer, got {count!r}")
        op = payload["op"]
        done, reason = self.add(count) if op == "add" else self.remove(count)
        result: dict[str, Any] = {"op": op, "requested": count, "done": done,
                                  "workers": len(self._current()), "target": self.target}
        if done < count:
            result["reason"] = reason
        return result

    def send(self, age: Any, data: bytes) -> None:
        handle = self.handles.get(age)
        if handle is not None and handle.link is not None:
            handle.link.send(data)

    def signal_all(self, sig: int) -> None:
        for handle in list(self.handles.values()):
            handle.signal(sig)

    async def stop(self, graceful: bool) -> None:
        """Stop every worker: TERM (graceful) or QUIT, then SIGKILL at the deadline."""
        self._stopping = True
        self._respawns.clear()
        self._reload_queue.clear()
        self.handles.update(self._lost)  # signalled and waited for like the others
        self._lost.clear()
        now = time.monotonic()
        for handle in self.handles.values():
            self.host.worker_retiring(handle)
        self.signal_all(signal.SIGTERM if graceful else signal.SIGQUIT)
        deadline = now + (float(self.cfg.dirty_graceful_timeout) if graceful else QUICK_STOP)
        while self.handles and time.monotonic() < deadline:
            await asyncio.sleep(STOP_POLL)
            self.reap()
        self.signal_all(signal.SIGKILL)
        for handle in list(self.handles.values()):
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(handle.pid, 0)
                self._by_pid.pop(handle.pid, None)
                self._exited(handle, status)
