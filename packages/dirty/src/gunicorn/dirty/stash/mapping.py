"""Dict-like views of one stash table: :class:`StashTable` and :class:`AsyncStashTable`.

A view holds only the table name and a client; every operation is a round trip to the dirty
arbiter, so the view always shows the current contents. A table that does not exist reads as
empty (``len`` 0, ``in`` false, ``t[k]`` raises ``KeyError``); writing creates it.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from gunicorn.dirty.errors import StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.stash import payloads
from gunicorn.dirty.stash.payloads import UNSET

if TYPE_CHECKING:
    from gunicorn.dirty.stash.client import AsyncStashClient, StashClient


class StashTable(MutableMapping[Any, Any]):
    """A ``MutableMapping`` over stash table ``name``.

    ``t[k]`` raises :class:`~gunicorn.dirty.errors.StashKeyNotFoundError`, which is also a
    ``KeyError``; ``t[k] = v``, ``del t[k]``, ``k in t``, ``len(t)``, iteration, ``get``,
    ``keys``, ``items``, ``values`` and ``clear`` behave as for a dict. ``items()`` and
    ``values()`` fetch the whole table in one round trip (one reply frame, at most 64 MiB);
    iteration fetches the keys once, then yields them. ``setdefault`` is atomic (it stores with
    ``if_absent``); ``pop`` and ``update`` are several round trips and are not.
    """

    def __init__(self, name: str, client: StashClient) -> None:
        self.name = name
        self.client = client

    def __repr__(self) -> str:
        return f"<StashTable {self.name!r}>"

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.client._call(payloads.get(self.name, key))
        except StashTableNotFoundError as exc:
            raise StashKeyNotFoundError(self.name, key) from exc

    def __setitem__(self, key: Any, value: Any) -> None:
        self.client.put(self.name, key, value)

    def __delitem__(self, key: Any) -> None:
        try:
            deleted = self.client.delete(self.name, key)
        except StashTableNotFoundError as exc:
            raise StashKeyNotFoundError(self.name, key) from exc
        if not deleted:
            raise StashKeyNotFoundError(self.name, key)

    def __contains__(self, key: object) -> bool:
        return self.client.exists(self.name, key)

    def __len__(self) -> int:
        try:
            return self.client.count(self.name)
        except StashTableNotFoundError:
            return 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def get(self, key: Any, default: Any = None) -> Any:
        return self.client.get(self.name, key, default)

    def keys(self, pattern: str | None = None) -> list[Any]:  # type: ignore[override]
        """The keys (matching the glob ``pattern`` if given), as a list."""
        try:
            return self.client.keys(self.name, pattern)
        except StashTableNotFoundError:
            return []

    def items(self, pattern: str | None = None) -> list[tuple[Any, Any]]:  # type: ignore[override]
        """``(key, value)`` pairs, as a list, in one round trip."""
        try:
            return self.client.items(self.name, pattern)
        except StashTableNotFoundError:
            return []

    def values(self, pattern: str | None = None) -> list[Any]:  # type: ignore[override]
        """The values, as a list, in one round trip."""
        try:
            return self.client.values(self.name, pattern)
        except StashTableNotFoundError:
            return []

    def clear(self) -> None:
        try:
            self.client.clear(self.name)
        except StashTableNotFoundError:
            pass

    def setdefault(self, key: Any, default: Any = None) -> Any:
        # put(if_absent) then get: whoever stored first wins, every caller sees that value.
        if self.client.put(self.name, key, default, if_absent=True):
            return default
        return self[key]

    def put(self, key: Any, value: Any, *, ttl: float | None = None,
            if_absent: bool = False) -> bool:
        """:meth:`StashClient.put` on this table."""
        return self.client.put(self.name, key, value, ttl=ttl, if_absent=if_absent)

    def incr(self, key: Any, delta: int = 1, *, ttl: float | None = None) -> int:
        """:meth:`StashClient.incr` on this table."""
        return self.client.incr(self.name, key, delta, ttl=ttl)


class AsyncStashTable:
    """The asyncio view of stash table ``name``: coroutine methods named like dict methods.

    ``await t.get(k, default)``, ``await t.put(k, v, ttl=..., if_absent=...)``,
    ``await t.delete(k)``, ``await t.contains(k)``, ``await t.count()``, ``await t.keys()``,
    ``await t.items()``, ``await t.values()``, ``await t.clear()``, ``await t.incr(k)``. A
    missing table reads as empty, as with :class:`StashTable`.
    """

    def __init__(self, name: str, client: AsyncStashClient) -> None:
        self.name = name
        self.client = client

    def __repr__(self) -> str:
        return f"<AsyncStashTable {self.name!r}>"

    async def get(self, key: Any, default: Any = None) -> Any:
        return await self.client.get(self.name, key, default)

    async def put(self, key: Any, value: Any, *, ttl: float | None = None,
                  if_absent: bool = False) -> bool:
        return await self.client.put(self.name, key, value, ttl=ttl, if_absent=if_absent)

    async def delete(self, key: Any, *, if_value: Any = UNSET) -> bool:
        try:
            return await self.client.delete(self.name, key, if_value=if_value)
        except StashTableNotFoundError:
            return False

    async def contains(self, key: Any) -> bool:
        return await self.client.exists(self.name, key)

    async def count(self) -> int:
        try:
            return await self.client.count(self.name)
        except StashTableNotFoundError:
            return 0

    async def keys(self, pattern: str | None = None) -> list[Any]:
        try:
            return await self.client.keys(self.name, pattern)
        except StashTableNotFoundError:
            return []

    async def items(self, pattern: str | None = None) -> list[tuple[Any, Any]]:
        try:
            return await self.client.items(self.name, pattern)
        except StashTableNotFoundError:
            return []

    async def values(self, pattern: str | None = None) -> list[Any]:
        try:
            return await self.client.values(self.name, pattern)
        except StashTableNotFoundError:
            return []

    async def clear(self) -> int:
        try:
            return await self.client.clear(self.name)
        except StashTableNotFoundError:
            return 0

    async def incr(self, key: Any, delta: int = 1, *, ttl: float | None = None) -> int:
        return await self.client.incr(self.name, key, delta, ttl=ttl)
