"""The dirty arbiter's side of the stash in Redis (``dirty_stash_url``).

In that mode every process talks to Redis itself, so the dirty arbiter holds no tables. It
still does two things, both here so the arbiter needs one line for them:

* the tables apps declare (``DirtyApp.stashes``) are created in Redis when it starts, once and
  best-effort: with Redis unreachable it logs a warning and the tables appear with their first
  ``put``/``incr``/``ensure``;
* a STASH frame that still reaches its socket (a ``StashClient(socket_path=...)``) is refused
  with a StashError saying where the stash is, rather than answered from an empty local store.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from gunicorn.dirty.errors import StashError
from gunicorn.dirty.stash.config import DEFAULT_PREFIX, PREFIX_ENV, URL_ENV
from gunicorn.dirty.stash.redis_backend import RedisBackend
from gunicorn.dirty.stash.store import StashStore

# Declaring tables must not hold up the dirty arbiter's start for long.
DECLARE_TIMEOUT = 2.0


class RedisModeStore(StashStore):
    """The store of a dirty arbiter whose stash is in Redis at ``address``: always empty,
    and :meth:`apply` refuses every request."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def apply(self, payload: dict[str, Any], now: float) -> Any:
        raise StashError(f"this server's stash is in Redis at {self.address} "
                         "(dirty_stash_url): use StashClient() without socket_path, which "
                         "goes there, not to the dirty arbiter")


def arbiter_store(store: StashStore, log: Any) -> StashStore:
    """``store`` as it is without ``$GUNICORN_DIRTY_STASH_URL``; otherwise its tables (those
    the apps declare) are created in Redis and a :class:`RedisModeStore` takes its place."""
    url = os.environ.get(URL_ENV)
    if not url:
        return store
    backend = RedisBackend(url, os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX, DECLARE_TIMEOUT)
    log.info("Stash tables are in Redis at %s (key prefix {%s})", backend.address,
             backend.prefix)
    names = store.table_names()
    with contextlib.closing(backend):
        try:
            for name in names:
                backend.call({"op": "ensure", "table": name})
        except StashError as exc:
            log.warning("Cannot create the declared stash tables %s in Redis (%s): they will "
                        "be created by their first put, incr or ensure", ", ".join(names), exc)
    return RedisModeStore(backend.address)
