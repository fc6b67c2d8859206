"""The STATUS reply of the dirty arbiter (``gunictl show dirty``): a plain, JSON-able snapshot.

Three views of one pool:

* ``workers``: each worker's pid, state (``loading`` until every app it holds finished its first
  ``init()``, then ``ready``; ``retiring`` once stopping), apps, how long each took to load,
  apps being retried, its resource tokens, calls in flight and queued;
* ``apps``: per app, its import path, declared worker count (``null``: every worker), current
  worker count and pids (the ready holders), holders still loading it, its error while nobody
  serves it, the next retry, why a planned holder was not started, its batched actions;
* ``resources``: each resource's tokens with the worker that holds them, and the free ones.

The per-app keys ``import_path``, ``worker_count``, ``current_workers``, ``worker_pids`` are the
ones gunicorn's control client reads; ``path``, ``limit``, ``workers`` are the same values under
the names this project used first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gunicorn.dirty.arbiter import DirtyArbiter
    from gunicorn.dirty.pool import WorkerHandle


def pool_status(arbiter: DirtyArbiter) -> dict[str, Any]:
    now = time.monotonic()
    supervisor, router = arbiter.supervisor, arbiter.router
    handles = sorted(supervisor.handles.values(), key=lambda h: h.age)
    return {
        "arbiter_pid": arbiter.pid, "socket": arbiter.socket_path,
        "uptime": round(now - arbiter.started_at, 2),
        "worker_count": sum(1 for h in handles if not h.retiring),
        "target_workers": supervisor.target,
        "workers": [_worker(arbiter, h, now) for h in handles],
        "apps": [_app(arbiter, spec.import_path, spec.limit, handles, now)
                 for spec in arbiter.specs],
        "resources": arbiter.resources.view(lambda age: _holder(supervisor.handle(age), age)),
        "threads": arbiter.cfg.dirty_threads, "max_queue": router.max_queue,
        "timeout": router.timeout,
    }


def _worker(arbiter: DirtyArbiter, h: WorkerHandle, now: float) -> dict[str, Any]:
    state = arbiter.router.workers.get(h.age)
    tokens: dict[str, list[str]] = {}
    for per_app in h.resources.values():
        for name, items in per_app.items():
            tokens.setdefault(name, []).extend(items)
    return {
        "pid": h.pid, "age": h.age, "state": h.state, "apps": list(h.apps),
        "booted": h.booted, "retiring": h.retiring,
        "loading_for": None if h.booted else round(now - h.started_at, 2),
        "load_seconds": dict(h.load_seconds),
        "failed_apps": sorted(h.failed), "retrying": sorted(h.loading),
        "resources": tokens,
        "in_flight": len(state.inflight) if state else 0,
        "queued": sum(arbiter.router.queued(a) for a in h.apps),
        "last_heartbeat": round(h.last_heartbeat(), 2),
        "uptime": round(now - h.started_at, 2),
    }


def _app(arbiter: DirtyArbiter, path: str, limit: int | None, handles: list[WorkerHandle],
         now: float) -> dict[str, Any]:
    serving = [h.pid for h in handles
               if path in h.apps and h.booted and not h.retiring and path not in h.failed]
    loading = [h.pid for h in handles
               if path in h.apps and not h.retiring and (not h.booted or path in h.loading)]
    retry = [at for h in handles if path in h.failed and (at := h.retry_at.get(path))]
    batched = next((h.batches[path] for h in handles if h.batches.get(path)), {})
    error = arbiter.broken.get(path) if not serving else None
    return {
        "path": path, "limit": limit, "workers": serving,
        "import_path": path, "worker_count": limit, "current_workers": len(serving),
        "worker_pids": serving,
        "loading": loading, "queued": arbiter.router.queued(path),
        "error": str(error) if error is not None else None,
        "retry_in": round(max(0.0, min(retry) - now), 2) if retry and not serving else None,
        "not_started": arbiter.supervisor.not_started.get(path),
        "resources": dict(arbiter.needs.get(path, {})),
        "batched": dict(batched),
    }


def _holder(handle: WorkerHandle | None, age: Any) -> dict[str, Any]:
    if handle is None:  # tokens are released in the same step that forgets the handle
        return {"pid": None, "age": age, "apps": []}
    return {"pid": handle.pid, "age": age, "apps": list(handle.apps)}
