"""Stash clients: :class:`StashClient` (blocking) and :class:`AsyncStashClient` (asyncio).

Both send STASH frames to the dirty arbiter over the same connection as dirty calls, through
:meth:`DirtyClient.request` / :meth:`DirtyClient.request_async`; the arbiter answers from its
tables without involving a dirty worker. Payloads come from :mod:`.payloads`, shared by both.

With ``socket_path=None`` (the default) a client owns no connection: each call uses the cached
per-thread (``get_dirty_client``) or per-event-loop (``get_dirty_client_async``) dirty client,
so one ``StashClient`` may be shared by threads and survives ``os.fork``. With an explicit
``socket_path`` the client opens its own connection on first use; ``close()`` it when done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.dirty.client import DirtyClient, get_dirty_client, get_dirty_client_async
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.stash import payloads
from gunicorn.dirty.stash.payloads import UNSET
from gunicorn.dirty.stash.store import StashOp

if TYPE_CHECKING:
    from gunicorn.dirty.stash.table import AsyncStashTable, StashTable

_STASH = MessageType.STASH
_MISSING = (StashKeyNotFoundError, StashTableNotFoundError)


class StashClient:
    """Blocking access to the stash tables held by the dirty arbiter.

    ``timeout`` bounds each operation in seconds (``None``: the dirty client's own timeout,
    30 s by default). Every method raises :class:`~gunicorn.dirty.errors.DirtyTimeoutError` or
    :class:`~gunicorn.dirty.errors.DirtyConnectionError` when the arbiter does not answer,
    :class:`~gunicorn.dirty.errors.DirtySerializationError` (naming the type) for a key or
    value that msgpack cannot carry, and :class:`~gunicorn.dirty.errors.StashError` for a bad
    request. Tables are created by :meth:`put`, :meth:`incr`, :meth:`ensure` or
    ``DirtyApp.stashes``; other operations on a missing table raise
    :class:`~gunicorn.dirty.errors.StashTableNotFoundError` unless documented otherwise.
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._own: DirtyClient | None = None

    def _client(self) -> DirtyClient:
        if self.socket_path is None:
            return get_dirty_client()
        if self._own is None:
            self._own = DirtyClient(self.socket_path, timeout=self.timeout or 30.0)
        return self._own

    def _call(self, payload: dict[str, Any]) -> Any:
        return self._client().request(_STASH, payload, self.timeout)

    def close(self) -> None:
        """Close the connection this client opened (no-op with the default socket path)."""
        if self._own is not None:
            self._own.close()
            self._own = None

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
        return self._call(payloads.put(table, key, value, ttl, if_absent))

    def get(self, table: str, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when the key or the table does not exist."""
        try:
            return self._call(payloads.get(table, key))
        except _MISSING:
            return default

    def delete(self, table: str, key: Any, *, if_value: Any = UNSET) -> bool:
        """Remove ``key``; return whether it was there. With ``if_value``, remove it only if
        it currently holds that value (release a lock only when you still own it)."""
        return self._call(payloads.delete(table, key, if_value))

    def incr(self, table: str, key: Any, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer at ``key`` atomically and return the new value.

        A missing key starts at 0 (and gets ``ttl``, if given; an existing key keeps its
        expiry). Raises :class:`StashError` when the value is not an int or would overflow
        int64. Creates the table.
        """
        return self._call(payloads.incr(table, key, delta, ttl))

    def exists(self, table: str, key: Any = None) -> bool:
        """Whether the table exists (``key=None``) or holds ``key``. Never raises for absence."""
        return self._call(payloads.exists(table, key))

    # -- tables -------------------------------------------------------------------------------

    def keys(self, table: str, pattern: str | None = None) -> list[Any]:
        """Keys of ``table``, optionally those matching the glob ``pattern`` (``user:*``)."""
        return self._call(payloads.listing(StashOp.KEYS, table, pattern))

    def items(self, table: str, pattern: str | None = None) -> list[tuple[Any, Any]]:
        """``(key, value)`` pairs, in one round trip (the reply must fit in one 64 MiB frame)."""
        return payloads.pairs(self._call(payloads.listing(StashOp.ITEMS, table, pattern)))

    def values(self, table: str, pattern: str | None = None) -> list[Any]:
        """Values of ``table`` (of keys matching ``pattern``), in one round trip."""
        return self._call(payloads.listing(StashOp.VALUES, table, pattern))

    def count(self, table: str) -> int:
        """Number of keys in ``table``."""
        return self._call(payloads.on_table(StashOp.COUNT, table))

    def clear(self, table: str) -> int:
        """Remove every key of ``table`` (the table stays); return how many were removed."""
        return self._call(payloads.on_table(StashOp.CLEAR, table))

    def info(self, table: str | None = None) -> dict[str, Any]:
        """``{"keys": n, "expiring": m}`` for ``table``, or ``{name: {...}}`` for every table."""
        return self._call(payloads.info(table))

    def ensure(self, table: str) -> bool:
        """Create ``table`` if needed; return whether it was created by this call."""
        return self._call(payloads.on_table(StashOp.ENSURE, table))

    def delete_table(self, table: str) -> bool:
        """Drop ``table`` and its keys; return whether it existed."""
        return self._call(payloads.on_table(StashOp.DELETE_TABLE, table))

    def tables(self) -> list[str]:
        """Names of every table, sorted."""
        return self._call(payloads.tables())

    def table(self, name: str) -> StashTable:
        """A dict-like view of table ``name`` through this client (no round trip)."""
        from gunicorn.dirty.stash.table import StashTable

        return StashTable(name, self)


class AsyncStashClient:
    """The asyncio twin of :class:`StashClient`: the same methods, as coroutines.

    Awaiting never blocks the event loop, and many tasks may share one client (their
    requests are multiplexed on one connection per loop). Errors are those of
    :class:`StashClient`.
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._own: DirtyClient | None = None

    async def _call(self, payload: dict[str, Any]) -> Any:
        if self.socket_path is None:
            client = await get_dirty_client_async()
        else:
            if self._own is None:
                self._own = DirtyClient(self.socket_path, timeout=self.timeout or 30.0)
            client = self._own
        return await client.request_async(_STASH, payload, self.timeout)

    async def aclose(self) -> None:
        """Close the connection this client opened (no-op with the default socket path)."""
        if self._own is not None:
            own, self._own = self._own, None
            await own.close_async()

    async def __aenter__(self) -> AsyncStashClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def put(self, table: str, key: Any, value: Any, *, ttl: float | None = None,
                  if_absent: bool = False) -> bool:
        """See :meth:`StashClient.put`."""
        return await self._call(payloads.put(table, key, value, ttl, if_absent))

    async def get(self, table: str, key: Any, default: Any = None) -> Any:
        """See :meth:`StashClient.get`."""
        try:
            return await self._call(payloads.get(table, key))
        except _MISSING:
            return default

    async def delete(self, table: str, key: Any, *, if_value: Any = UNSET) -> bool:
        """See :meth:`StashClient.delete`."""
        return await self._call(payloads.delete(table, key, if_value))

    async def incr(self, table: str, key: Any, delta: int = 1, *,
                   ttl: float | None = None) -> int:
        """See :meth:`StashClient.incr`."""
        return await self._call(payloads.incr(table, key, delta, ttl))

    async def exists(self, table: str, key: Any = None) -> bool:
        """See :meth:`StashClient.exists`."""
        return await self._call(payloads.exists(table, key))

    async def keys(self, table: str, pattern: str | None = None) -> list[Any]:
        """See :meth:`StashClient.keys`."""
        return await self._call(payloads.listing(StashOp.KEYS, table, pattern))

    async def items(self, table: str, pattern: str | None = None) -> list[tuple[Any, Any]]:
        """See :meth:`StashClient.items`."""
        return payloads.pairs(await self._call(payloads.listing(StashOp.ITEMS, table, pattern)))

    async def values(self, table: str, pattern: str | None = None) -> list[Any]:
        """See :meth:`StashClient.values`."""
        return await self._call(payloads.listing(StashOp.VALUES, table, pattern))

    async def count(self, table: str) -> int:
        """See :meth:`StashClient.count`."""
        return await self._call(payloads.on_table(StashOp.COUNT, table))

    async def clear(self, table: str) -> int:
        """See :meth:`StashClient.clear`."""
        return await self._call(payloads.on_table(StashOp.CLEAR, table))

    async def info(self, table: str | None = None) -> dict[str, Any]:
        """See :meth:`StashClient.info`."""
        return await self._call(payloads.info(table))

    async def ensure(self, table: str) -> bool:
        """See :meth:`StashClient.ensure`."""
        return await self._call(payloads.on_table(StashOp.ENSURE, table))

    async def delete_table(self, table: str) -> bool:
        """See :meth:`StashClient.delete_table`."""
        return await self._call(payloads.on_table(StashOp.DELETE_TABLE, table))

    async def tables(self) -> list[str]:
        """See :meth:`StashClient.tables`."""
        return await self._call(payloads.tables())

    def table(self, name: str) -> AsyncStashTable:
        """An async view of table ``name`` (``await t.get(k)``, ``await t.put(k, v)``, ...)."""
        from gunicorn.dirty.stash.table import AsyncStashTable

        return AsyncStashTable(name, self)
