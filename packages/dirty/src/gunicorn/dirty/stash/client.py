"""Stash clients: :class:`StashClient` (blocking) and :class:`AsyncStashClient` (asyncio).

Both build request maps with :mod:`.payloads` and hand them to a
:class:`~gunicorn.dirty.stash.backend.StashBackend`: the dirty arbiter (STASH frames on the
same connection as dirty calls) or Redis (``dirty_stash_url``).

With neither ``socket_path`` nor ``backend`` (the default) a client owns no connection: each
call goes to :func:`~gunicorn.dirty.stash.backend.default_backend`, the backend this process
was configured with (the cached per-thread / per-loop dirty client, or this process's Redis
connection pool), so one ``StashClient`` may be shared by threads and survives ``os.fork``.
With ``socket_path`` the client opens its own connection to that dirty arbiter, and with
``backend`` it uses the one given; ``close()`` it when done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from gunicorn.dirty.errors import StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.stash import payloads
from gunicorn.dirty.stash.backend import ArbiterBackend, StashBackend, default_backend
from gunicorn.dirty.stash.payloads import UNSET
from gunicorn.dirty.stash.store import StashOp

if TYPE_CHECKING:
    from gunicorn.dirty.stash.mapping import AsyncStashTable, StashTable

_MISSING = (StashKeyNotFoundError, StashTableNotFoundError)


class StashClient:
    """Blocking access to the stash tables (in the dirty arbiter, or in Redis).

    ``timeout`` bounds each operation in seconds (``None``: 30 s, the dirty client's). Every
    method raises :class:`~gunicorn.dirty.errors.DirtyTimeoutError` or
    :class:`~gunicorn.dirty.errors.DirtyConnectionError` when the store does not answer (with
    Redis their subclasses :class:`~gunicorn.dirty.errors.StashTimeoutError` and
    :class:`~gunicorn.dirty.errors.StashUnavailableError`, naming the server),
    :class:`~gunicorn.dirty.errors.DirtySerializationError` (naming the type) for a key or
    value that msgpack cannot carry, and :class:`~gunicorn.dirty.errors.StashError` for a bad
    request. Tables are created by :meth:`put`, :meth:`incr`, :meth:`ensure` or
    ``DirtyApp.stashes``; other operations on a missing table raise
    :class:`~gunicorn.dirty.errors.StashTableNotFoundError` unless documented otherwise.
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = None, *,
                 backend: StashBackend | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        if backend is None and socket_path is not None:
            backend = ArbiterBackend(socket_path, timeout)
        self.backend = backend

    def _call(self, payload: dict[str, Any]) -> Any:
        # The reply's shape is fixed per op by the store (docs/stash.md); the methods below
        # state it with cast() rather than re-checking every reply.
        return (self.backend or default_backend(self.timeout)).call(payload)

    def close(self) -> None:
        """Close this client's backend (no-op for the default one, which is shared)."""
        if self.backend is not None:
            self.backend.close()

    def __enter__(self) -> StashClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ---------------------------------------------------------------------------------

    def put(self, table: str, key: Any, value: Any, *, ttl: float | None = None,
            if_absent: bool = False) -> bool:
        """Store ``value`` under ``key`` (keys are str, int or bytes), creating the table.

        ``ttl`` (seconds) makes the key expire; ``if_absent=True`` stores only when the key is
        missing, atomically (a lock or "first writer wins"). Returns whether it was stored.
        """
        return cast("bool", self._call(payloads.put(table, key, value, ttl, if_absent)))

    def get(self, table: str, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when the key or the table does not exist."""
        try:
            return self._call(payloads.get(table, key))
        except _MISSING:
            return default

    def delete(self, table: str, key: Any, *, if_value: Any = UNSET) -> bool:
        """Remove ``key``; return whether it was there. With ``if_value``, remove it only if
        it currently holds that value (release a lock only when you still own it)."""
        return cast("bool", self._call(payloads.delete(table, key, if_value)))

    def incr(self, table: str, key: Any, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer at ``key`` atomically and return the new value.

        A missing key starts at 0 (and gets ``ttl``, if given; an existing key keeps its
        expiry). Raises :class:`StashError` when the value is not an int or would overflow
        int64. Creates the table.
        """
        return cast("int", self._call(payloads.incr(table, key, delta, ttl)))

    def exists(self, table: str, key: Any = None) -> bool:
        """Whether the table exists (``key=None``) or holds ``key``. Never raises for absence."""
        return cast("bool", self._call(payloads.exists(table, key)))

    # -- tables -------------------------------------------------------------------------------

    def keys(self, table: str, pattern: str | None = None) -> list[Any]:
        """Keys of ``table``, optionally those matching the glob ``pattern`` (``user:*``)."""
        return cast("list[Any]", self._call(payloads.listing(StashOp.KEYS, table, pattern)))

    def items(self, table: str, pattern: str | None = None) -> list[tuple[Any, Any]]:
        """``(key, value)`` pairs, in one round trip (the reply must fit in one 64 MiB frame)."""
        return payloads.pairs(self._call(payloads.listing(StashOp.ITEMS, table, pattern)))

    def values(self, table: str, pattern: str | None = None) -> list[Any]:
        """Values of ``table`` (of keys matching ``pattern``), in one round trip."""
        return cast("list[Any]", self._call(payloads.listing(StashOp.VALUES, table, pattern)))

    def count(self, table: str) -> int:
        """Number of keys in ``table``."""
        return cast("int", self._call(payloads.on_table(StashOp.COUNT, table)))

    def clear(self, table: str) -> int:
        """Remove every key of ``table`` (the table stays); return how many were removed."""
        return cast("int", self._call(payloads.on_table(StashOp.CLEAR, table)))

    def info(self, table: str | None = None) -> dict[str, Any]:
        """``{"keys": n, "expiring": m}`` for ``table``, or ``{name: {...}}`` for every table."""
        return cast("dict[str, Any]", self._call(payloads.info(table)))

    def ensure(self, table: str) -> bool:
        """Create ``table`` if needed; return whether it was created by this call."""
        return cast("bool", self._call(payloads.on_table(StashOp.ENSURE, table)))

    def delete_table(self, table: str) -> bool:
        """Drop ``table`` and its keys; return whether it existed."""
        return cast("bool", self._call(payloads.on_table(StashOp.DELETE_TABLE, table)))

    def tables(self) -> list[str]:
        """Names of every table, sorted."""
        return cast("list[str]", self._call(payloads.tables()))

    def table(self, name: str) -> StashTable:
        """A dict-like view of table ``name`` through this client (no round trip)."""
        from gunicorn.dirty.stash.mapping import StashTable

        return StashTable(name, self)


class AsyncStashClient:
    """The asyncio twin of :class:`StashClient`: the same methods, as coroutines.

    Awaiting never blocks the event loop, and many tasks may share one client (their
    requests share the loop's connections). Arguments and errors are those of
    :class:`StashClient`.
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = None, *,
                 backend: StashBackend | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        if backend is None and socket_path is not None:
            backend = ArbiterBackend(socket_path, timeout)
        self.backend = backend

    async def _call(self, payload: dict[str, Any]) -> Any:
        return await (self.backend or default_backend(self.timeout)).acall(payload)

    async def aclose(self) -> None:
        """Close this client's backend (no-op for the default one, which is shared)."""
        if self.backend is not None:
            await self.backend.aclose()

    async def __aenter__(self) -> AsyncStashClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def put(self, table: str, key: Any, value: Any, *, ttl: float | None = None,
                  if_absent: bool = False) -> bool:
        """See :meth:`StashClient.put`."""
        return cast("bool", await self._call(payloads.put(table, key, value, ttl, if_absent)))

    async def get(self, table: str, key: Any, default: Any = None) -> Any:
        """See :meth:`StashClient.get`."""
        try:
            return await self._call(payloads.get(table, key))
        except _MISSING:
            return default

    async def delete(self, table: str, key: Any, *, if_value: Any = UNSET) -> bool:
        """See :meth:`StashClient.delete`."""
        return cast("bool", await self._call(payloads.delete(table, key, if_value)))

    async def incr(self, table: str, key: Any, delta: int = 1, *,
                   ttl: float | None = None) -> int:
        """See :meth:`StashClient.incr`."""
        return cast("int", await self._call(payloads.incr(table, key, delta, ttl)))

    async def exists(self, table: str, key: Any = None) -> bool:
        """See :meth:`StashClient.exists`."""
        return cast("bool", await self._call(payloads.exists(table, key)))

    async def keys(self, table: str, pattern: str | None = None) -> list[Any]:
        """See :meth:`StashClient.keys`."""
        return cast("list[Any]", await self._call(payloads.listing(StashOp.KEYS, table, pattern)))

    async def items(self, table: str, pattern: str | None = None) -> list[tuple[Any, Any]]:
        """See :meth:`StashClient.items`."""
        return payloads.pairs(await self._call(payloads.listing(StashOp.ITEMS, table, pattern)))

    async def values(self, table: str, pattern: str | None = None) -> list[Any]:
        """See :meth:`StashClient.values`."""
        return cast("list[Any]", await self._call(payloads.listing(StashOp.VALUES, table, pattern)))

    async def count(self, table: str) -> int:
        """See :meth:`StashClient.count`."""
        return cast("int", await self._call(payloads.on_table(StashOp.COUNT, table)))

    async def clear(self, table: str) -> int:
        """See :meth:`StashClient.clear`."""
        return cast("int", await self._call(payloads.on_table(StashOp.CLEAR, table)))

    async def info(self, table: str | None = None) -> dict[str, Any]:
        """See :meth:`StashClient.info`."""
        return cast("dict[str, Any]", await self._call(payloads.info(table)))

    async def ensure(self, table: str) -> bool:
        """See :meth:`StashClient.ensure`."""
        return cast("bool", await self._call(payloads.on_table(StashOp.ENSURE, table)))

    async def delete_table(self, table: str) -> bool:
        """See :meth:`StashClient.delete_table`."""
        return cast("bool", await self._call(payloads.on_table(StashOp.DELETE_TABLE, table)))

    async def tables(self) -> list[str]:
        """See :meth:`StashClient.tables`."""
        return cast("list[str]", await self._call(payloads.tables()))

    def table(self, name: str) -> AsyncStashTable:
        """An async view of table ``name`` (``await t.get(k)``, ``await t.put(k, v)``, ...)."""
        from gunicorn.dirty.stash.mapping import AsyncStashTable

        return AsyncStashTable(name, self)


# The clients behind the module functions (``stash.put`` is ``DEFAULT.put``). They own no
# connection and no mutable state, so sharing them module-wide is safe across threads and forks.
DEFAULT = StashClient()
ADEFAULT = AsyncStashClient()
