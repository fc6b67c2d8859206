"""What the ``show`` commands report, built from the arbiter's own state.

Run in the arbiter's loop, so they only read memory and a few bytes per worker (the facts a
worker publishes in its heartbeat file: see :mod:`gunicorn.workers.heartbeat`); nothing here
waits on another process.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

# Settings whose values may hold secrets: ``show config`` lists their names only.
REDACTED_ENV = "raw_env"


class ControlledArbiter(Protocol):
    """The part of :class:`~gunicorn.arbiter.Arbiter` the control commands use."""

    pid: int
    cfg: CoreSettings
    log: Any
    plugins: Any
    workers: dict[int, Any]
    listeners: list[Any]
    num_workers: int
    start_time: float
    workers_spawned: int
    workers_killed: int
    reloads: int
    master_name: str
    sidecars: Any
    signals: Any

    def active_workers(self) -> list[Any]: ...
    def is_retiring(self, pid: int) -> bool: ...
    def kill_worker(self, pid: int, sig: int) -> None: ...


def worker_rows(arbiter: ControlledArbiter) -> list[dict[str, Any]]:
    """One row per HTTP worker (retiring ones included), oldest first."""
    now = time.monotonic()
    rows = []
    for worker in sorted(arbiter.workers.values(), key=lambda w: w.age):
        facts = worker.tmp.read_facts()
        try:
            silent = round(max(0.0, now - worker.tmp.last_update()), 2)
        except (OSError, ValueError):  # the file was closed as the worker was reaped
            silent = None
        spawned = getattr(worker, "spawned_at", None)
        rows.append({
            "pid": worker.pid,
            "age": worker.age,
            "booted": facts.booted,
            "requests": facts.requests,
            "last_heartbeat": silent,
            "uptime": round(now - spawned, 2) if spawned is not None else None,
            "aborted": bool(worker.aborted),
            "retiring": arbiter.is_retiring(worker.pid),
        })
    return rows


def workers_data(arbiter: ControlledArbiter) -> dict[str, Any]:
    rows = worker_rows(arbiter)
    return {"workers": rows, "count": len(rows), "target": arbiter.num_workers}


def stats_data(arbiter: ControlledArbiter) -> dict[str, Any]:
    return {
        "pid": arbiter.pid,
        "uptime": round(time.time() - arbiter.start_time, 2),
        "started_at": arbiter.start_time,
        "workers_current": len(arbiter.active_workers()),
        "workers_target": arbiter.num_workers,
        "workers_spawned": arbiter.workers_spawned,
        "workers_killed": arbiter.workers_killed,
        "reloads": arbiter.reloads,
    }


def listeners_data(arbiter: ControlledArbiter) -> dict[str, Any]:
    rows = [{"address": str(listener), "fd": listener.fileno(), "type": _kind(listener)}
            for listener in arbiter.listeners]
    return {"listeners": rows, "count": len(rows)}


def _kind(listener: Any) -> str:
    family: Any = getattr(listener, "family", None)
    return {socket.AF_UNIX: "unix", socket.AF_INET: "tcp",
            socket.AF_INET6: "tcp6"}.get(family, "unknown")


def config_data(cfg: CoreSettings, control_path: str | None = None) -> dict[str, Any]:
    """Every setting's value except server hooks; ``raw_env`` shows variable names only; a
    setting with a ``redact`` function (a secret) shows what it returns; ``control_socket`` is
    the path actually listened on (the setting is often unset)."""
    data: dict[str, Any] = {}
    for setting in cfg.registry:
        if setting.hook_arity is not None:
            continue
        value = setting.shown(cfg.get(setting.name))
        if setting.name == REDACTED_ENV and value:
            value = [str(item).split("=", 1)[0] + "=..." for item in value]
        data[setting.name] = jsonable(value)
    if control_path is not None and "control_socket" in data:
        data["control_socket"] = control_path
    return data


def arbiter_data(arbiter: ControlledArbiter, control_path: str | None) -> dict[str, Any]:
    return {"pid": arbiter.pid, "name": arbiter.master_name, "role": "master",
            "uptime": round(time.time() - arbiter.start_time, 2),
            "control_socket": control_path}


def all_data(arbiter: ControlledArbiter, control_path: str | None) -> dict[str, Any]:
    """``show all`` without the dirty part (added by the plugin's ``show dirty``, if any)."""
    rows = worker_rows(arbiter)
    return {
        "arbiter": arbiter_data(arbiter, control_path),
        "workers": rows,
        "worker_count": len(rows),
        "sidecars": [_wall_clock_start(row) for row in jsonable(arbiter.sidecars.describe())],
        "stats": stats_data(arbiter),
        "dirty": no_dirty(),
    }


def _wall_clock_start(row: dict[str, Any]) -> dict[str, Any]:
    """The supervisor keeps a monotonic start time; readers want the wall-clock one."""
    started = row.get("started_at")
    if isinstance(started, int | float):
        row = dict(row, started_at=round(time.time() - (time.monotonic() - started), 3))
    return row


def no_dirty() -> dict[str, Any]:
    """``show dirty`` when no plugin provides dirty arbiters."""
    return {"enabled": False, "workers": []}


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types only (callables by dotted name, anything else by str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if callable(value):
        return _dotted(value)
    return str(value)


def _dotted(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else name
