"""The stash: key/value tables held by the dirty arbiter, shared by every HTTP and dirty worker.

::

    from gunicorn.dirty import stash

    stash.put("sessions", "user:1", {"name": "Alice"}, ttl=3600)
    stash.get("sessions", "user:1")             # {'name': 'Alice'}; None when missing
    stash.incr("counters", "hits")              # atomic, exact under any concurrency
    sessions = stash.table("sessions")          # a MutableMapping view
    sessions["user:2"] = {"name": "Bob"}

    # asyncio (FastAPI, Starlette, ASGI): the same functions prefixed with "a", awaited
    user = await stash.aget("sessions", "user:1")

Where the tables live is the backend's business (a :class:`StashBackend`): by default the
dirty arbiter's memory, reached through the calling thread's (or event loop's) cached dirty
client on ``GUNICORN_DIRTY_SOCKET``; with the ``dirty_stash_url`` setting a Redis server shared
by every host (``GUNICORN_DIRTY_STASH_URL``), reached straight from each process. The API and
its errors are the same with both. :class:`StashClient` / :class:`AsyncStashClient` take an
explicit socket path, backend and timeout. See docs/stash.md and docs/scaling.md.

Everything is loaded on first use (module ``__getattr__``), so the settings can import
:mod:`gunicorn.dirty.stash.config` before anything forks without pulling in msgpack or sockets.
"""

from __future__ import annotations

import importlib
from typing import Any

from gunicorn.dirty.errors import (
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    StashTimeoutError,
    StashUnavailableError,
)

__all__ = [
    "ArbiterBackend",
    "AsyncStashClient",
    "AsyncStashTable",
    "RedisBackend",
    "StashBackend",
    "StashClient",
    "StashError",
    "StashKeyNotFoundError",
    "StashTable",
    "StashTableNotFoundError",
    "StashTimeoutError",
    "StashUnavailableError",
    "aclear",
    "acount",
    "adelete",
    "adelete_table",
    "aensure",
    "aexists",
    "aget",
    "aincr",
    "ainfo",
    "aitems",
    "akeys",
    "aput",
    "atable",
    "atables",
    "avalues",
    "clear",
    "count",
    "delete",
    "delete_table",
    "ensure",
    "exists",
    "get",
    "incr",
    "info",
    "items",
    "keys",
    "put",
    "table",
    "tables",
    "values",
]

_CLASSES = {
    "ArbiterBackend": "gunicorn.dirty.stash.backend",
    "StashBackend": "gunicorn.dirty.stash.backend",
    "RedisBackend": "gunicorn.dirty.stash.redis_backend",
    "StashClient": "gunicorn.dirty.stash.client",
    "AsyncStashClient": "gunicorn.dirty.stash.client",
    "StashTable": "gunicorn.dirty.stash.mapping",
    "AsyncStashTable": "gunicorn.dirty.stash.mapping",
}
# The module functions are the default clients' bound methods (same signatures and docs).
_FUNCTIONS = ("put", "get", "delete", "incr", "exists", "keys", "items", "values", "count",
              "clear", "info", "ensure", "delete_table", "tables", "table")


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        value = getattr(importlib.import_module(_CLASSES[name]), name)
    elif name in _FUNCTIONS:
        value = getattr(importlib.import_module("gunicorn.dirty.stash.client").DEFAULT, name)
    elif name.startswith("a") and name[1:] in _FUNCTIONS:
        value = getattr(importlib.import_module("gunicorn.dirty.stash.client").ADEFAULT,
                        name[1:])
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # cache: later lookups skip this function
    return value
