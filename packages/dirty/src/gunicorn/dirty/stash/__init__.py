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

The module functions use the calling thread's (or event loop's) cached dirty client, i.e. the
socket in ``GUNICORN_DIRTY_SOCKET``; :class:`StashClient` / :class:`AsyncStashClient` take an
explicit socket path and timeout. Tables live in the dirty arbiter's memory: they survive any
dirty worker crash, and with the ``dirty_stash_file`` setting also a restart. See docs/stash.md.
"""

from __future__ import annotations

from gunicorn.dirty.errors import StashError, StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.stash.client import AsyncStashClient, StashClient
from gunicorn.dirty.stash.table import AsyncStashTable, StashTable

__all__ = [
    "AsyncStashClient",
    "AsyncStashTable",
    "StashClient",
    "StashError",
    "StashKeyNotFoundError",
    "StashTable",
    "StashTableNotFoundError",
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

# These clients own no connection and no mutable state: each call goes through the per-thread /
# per-loop cached dirty client, so sharing them module-wide is safe across threads and forks.
_SYNC = StashClient()
_ASYNC = AsyncStashClient()

# The module functions are the default clients' bound methods (same signatures and docs).
put = _SYNC.put
get = _SYNC.get
delete = _SYNC.delete
incr = _SYNC.incr
exists = _SYNC.exists
keys = _SYNC.keys
items = _SYNC.items
values = _SYNC.values
count = _SYNC.count
clear = _SYNC.clear
info = _SYNC.info
ensure = _SYNC.ensure
delete_table = _SYNC.delete_table
tables = _SYNC.tables
table = _SYNC.table

aput = _ASYNC.put
aget = _ASYNC.get
adelete = _ASYNC.delete
aincr = _ASYNC.incr
aexists = _ASYNC.exists
akeys = _ASYNC.keys
aitems = _ASYNC.items
avalues = _ASYNC.values
acount = _ASYNC.count
aclear = _ASYNC.clear
ainfo = _ASYNC.info
aensure = _ASYNC.ensure
adelete_table = _ASYNC.delete_table
atables = _ASYNC.tables
atable = _ASYNC.table
