"""gunicorn-dirty: a supervised pool of stateful worker processes for slow, blocking work.

Public surface::

    from gunicorn.dirty import DirtyApp, DirtyClient, batch, get_dirty_client, stash

Only the error classes are imported eagerly. Everything else is loaded on first access (module
``__getattr__``): importing ``gunicorn.dirty`` early, e.g. from a config file, must not pull in
asyncio, concurrent.futures or msgpack before a worker had a chance to monkey-patch.
"""

from __future__ import annotations

import importlib
from typing import Any

from gunicorn.dirty.errors import (
    DirtyActionNotFoundError,
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyBusyError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtySerializationError,
    DirtyTimeoutError,
    DirtyWorkerError,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    StashTimeoutError,
    StashUnavailableError,
)

# name -> module that defines it; "" means the name is itself a submodule.
_LAZY = {
    "DirtyApp": "gunicorn.dirty.app",
    "DirtyClient": "gunicorn.dirty.client",
    "batch": "gunicorn.dirty.batching",
    "close_dirty_client": "gunicorn.dirty.client",
    "close_dirty_client_async": "gunicorn.dirty.client",
    "get_dirty_client": "gunicorn.dirty.client",
    "get_dirty_client_async": "gunicorn.dirty.client",
    "stash": "",
}

__all__ = [
    "DirtyActionNotFoundError",
    "DirtyApp",
    "DirtyAppError",
    "DirtyAppNotFoundError",
    "DirtyBusyError",
    "DirtyClient",
    "DirtyConnectionError",
    "DirtyError",
    "DirtyNoWorkersAvailableError",
    "DirtyProtocolError",
    "DirtySerializationError",
    "DirtyTimeoutError",
    "DirtyWorkerError",
    "StashError",
    "StashKeyNotFoundError",
    "StashTableNotFoundError",
    "StashTimeoutError",
    "StashUnavailableError",
    "batch",
    "close_dirty_client",
    "close_dirty_client_async",
    "get_dirty_client",
    "get_dirty_client_async",
    "stash",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module_name == "":
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
