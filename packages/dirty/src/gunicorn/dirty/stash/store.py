"""The stash tables themselves: a pure, sans-IO key/value store held by the dirty arbiter.

The arbiter owns one :class:`StashStore` and answers every STASH frame inline with
``store.apply(payload, now)``: no socket, no event loop and no clock is touched here, so the
arbiter never waits on a worker to serve the stash and tests drive time by hand.

Clock: ``now`` is whatever monotonic clock the caller uses (the arbiter passes
``time.monotonic()``). Expiry deadlines are kept on that clock, so a wall-clock jump never
expires or revives keys; :mod:`gunicorn.dirty.stash.persist` converts them to wall-clock time
only inside the stash file.

Expired keys are removed by :meth:`StashStore.expire`, which :meth:`apply` also runs first: the
next deadline is the head of a heap, so when nothing is due the sweep costs one comparison, and
no operation ever sees an expired key.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gunicorn.dirty.errors import StashError, StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.stash import persist
from gunicorn.dirty.stash.rules import (
    INT_MAX,
    INT_MIN,
    check_delta,
    check_key,
    check_table,
    check_ttl,
    is_int,
    key_text,
    matching,
    not_an_int,
    overflow,
)

__all__ = ["StashOp", "StashStore", "key_text"]

# Sentinel for "no if_value given": None is a legitimate stored value.
_ABSENT = object()

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10 (still supported) has no StrEnum: the same behaviour, spelled out
    from enum import Enum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


class StashOp(StrEnum):
    """The ``op`` field of a STASH payload (the payload schemas are in docs/stash.md)."""

    PUT = "put"
    GET = "get"
    DELETE = "delete"
    INCR = "incr"
    KEYS = "keys"
    ITEMS = "items"
    VALUES = "values"
    COUNT = "count"
    CLEAR = "clear"
    INFO = "info"
    ENSURE = "ensure"
    EXISTS = "exists"
    DELETE_TABLE = "delete_table"
    TABLES = "tables"


class _Table:
    """One table: values by key, plus the deadline and heap ticket of keys with a ttl."""

    __slots__ = ("data", "deadlines")

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        # key -> (deadline, ticket). The ticket identifies the heap entry that is still valid:
        # re-putting a key leaves its old heap entry behind, and the ticket tells it apart.
        self.deadlines: dict[Any, tuple[float, int]] = {}


class StashStore:
    """Named tables of key -> value, with optional per-key expiry.

    Keys are ``str``, ``int`` or ``bytes`` (hashable msgpack scalars); values are any
    msgpack-able value and are stored exactly as received. Every operation raises a
    :class:`~gunicorn.dirty.errors.StashError` subclass on failure, never anything else.

    ``version`` counts mutations (including expiries), so a periodic saver can skip writing
    when nothing changed since the last save.
    """

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}
        self._heap: list[tuple[float, int, str, Any]] = []
        self._tickets = itertools.count()
        self.version = 0
        self._ops: dict[str, Callable[[dict[str, Any], float], Any]] = {
            StashOp.PUT: self._op_put,
            StashOp.GET: self._op_get,
            StashOp.DELETE: self._op_delete,
            StashOp.INCR: self._op_incr,
            StashOp.KEYS: self._op_keys,
            StashOp.ITEMS: self._op_items,
            StashOp.VALUES: self._op_values,
            StashOp.COUNT: self._op_count,
            StashOp.CLEAR: self._op_clear,
            StashOp.INFO: self._op_info,
            StashOp.ENSURE: self._op_ensure,
            StashOp.EXISTS: self._op_exists,
            StashOp.DELETE_TABLE: self._op_delete_table,
            StashOp.TABLES: self._op_tables,
        }

    # -- entry points used by the arbiter -----------------------------------------------------

    def apply(self, payload: dict[str, Any], now: float) -> Any:
        """Run one STASH request and return its result (the RESPONSE ``result``).

        ``payload`` is the decoded STASH body: ``{"op": ..., "table": ..., ...}``. Raises
        :class:`StashTableNotFoundError` when the table does not exist (except for ``put``,
        ``incr`` and ``ensure``, which create it, and ``exists``, ``delete_table`` and
        ``tables``, which report absence), :class:`StashKeyNotFoundError` for ``get`` of a
        missing key, and :class:`StashError` for a malformed request.
        """
        if not isinstance(payload, dict):
            raise StashError(f"stash request must be a map, not {type(payload).__name__}")
        op = payload.get("op")
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            raise StashError(f"unknown stash op: {op!r}")
        self.expire(now)
        return handler(payload, now)

    def ensure(self, names: Iterable[str]) -> None:
        """Create each table of ``names`` that does not exist yet (``DirtyApp.stashes``)."""
        for name in names:
            self._create(check_table(name))

    def expire(self, now: float) -> int:
        """Remove every key whose deadline is ``<= now``; return how many were removed."""
        heap = self._heap
        removed = 0
        while heap and heap[0][0] <= now:
            _due, ticket, name, key = heapq.heappop(heap)
            table = self._tables.get(name)
            if table is None:
                continue
            entry = table.deadlines.get(key)
            if entry is not None and entry[1] == ticket:
                del table.deadlines[key]
                del table.data[key]
                removed += 1
        if removed:
            self.version += 1
        return removed

    def save(self, path: str, now: float | None = None, wall: float | None = None) -> None:
        """Write every table to ``path`` atomically (see :mod:`gunicorn.dirty.stash.persist`).

        ``now`` defaults to ``time.monotonic()`` (the clock ``apply`` is given) and ``wall`` to
        ``time.time()``. Raises ``OSError`` or :class:`StashError`. To keep an event loop
        responsive, call ``persist.dumps`` on the loop and ``persist.write_atomic`` in a thread.
        """
        persist.save(self, path, now, wall)

    def load(self, path: str, now: float | None = None, wall: float | None = None) -> int:
        """Load the tables saved in ``path``; return how many keys were loaded (0 if the file
        does not exist). Raises :class:`StashError` for a corrupt file (the store is unchanged)
        and ``OSError`` when the file cannot be read."""
        return persist.load(self, path, now, wall)

    def key_counts(self) -> dict[str, int]:
        """Keys per table (for the ``gunicorn_stash_keys`` gauge; expired keys may linger
        until the next :meth:`expire`)."""
        return {name: len(table.data) for name, table in self._tables.items()}

    def table_names(self) -> list[str]:
        """Names of the existing tables, sorted."""
        return sorted(self._tables)

    def entries(self, name: str) -> Iterator[tuple[Any, Any, float | None]]:
        """``(key, value, deadline or None)`` for every key of table ``name`` (persistence)."""
        table = self._tables[name]
        for key, value in table.data.items():
            entry = table.deadlines.get(key)
            yield key, value, None if entry is None else entry[0]

    def restore(self, name: str, entries: Iterable[tuple[Any, Any, float | None]]) -> None:
        """Replace table ``name`` with ``entries`` (as :meth:`entries` gives them)."""
        table = self._tables[check_table(name)] = _Table()
        for key, value, deadline in entries:
            self._set(name, table, check_key(key), value, deadline)
        self.version += 1

    # -- helpers ------------------------------------------------------------------------------

    def _create(self, name: str) -> _Table:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = _Table()
            self.version += 1
        return table

    def _existing(self, payload: dict[str, Any]) -> tuple[str, _Table]:
        name = check_table(payload.get("table"))
        table = self._tables.get(name)
        if table is None:
            raise StashTableNotFoundError(name)
        return name, table

    def _set(self, name: str, table: _Table, key: Any, value: Any,
             deadline: float | None) -> None:
        table.data[key] = value
        if deadline is None:
            table.deadlines.pop(key, None)
        else:
            ticket = next(self._tickets)
            table.deadlines[key] = (deadline, ticket)
            heapq.heappush(self._heap, (deadline, ticket, name, key))
        self.version += 1

    def _remove(self, table: _Table, key: Any) -> None:
        del table.data[key]
        # Its heap entry, if any, goes stale: the ticket no longer matches.
        table.deadlines.pop(key, None)
        self.version += 1

    # -- operations ---------------------------------------------------------------------------

    def _op_put(self, p: dict[str, Any], now: float) -> bool:
        name = check_table(p.get("table"))
        key = check_key(p.get("key"))
        if "value" not in p:
            raise StashError("stash put needs a value")
        deadline = _deadline(p.get("ttl"), now)
        table = self._create(name)
        if p.get("if_absent") and key in table.data:
            return False
        self._set(name, table, key, p["value"], deadline)
        return True

    def _op_get(self, p: dict[str, Any], now: float) -> Any:
        name, table = self._existing(p)
        key = check_key(p.get("key"))
        try:
            return table.data[key]
        except KeyError:
            raise StashKeyNotFoundError(name, key) from None

    def _op_delete(self, p: dict[str, Any], now: float) -> bool:
        _name, table = self._existing(p)
        key = check_key(p.get("key"))
        if key not in table.data:
            return False
        # if_value makes release-a-lock safe: only the holder's token deletes the key.
        expected = p.get("if_value", _ABSENT)
        if expected is not _ABSENT and table.data[key] != expected:
            return False
        self._remove(table, key)
        return True

    def _op_incr(self, p: dict[str, Any], now: float) -> int:
        name = check_table(p.get("table"))
        key = check_key(p.get("key"))
        delta = check_delta(p.get("delta", 1))
        # Checked even when the key exists (and keeps its expiry): a bad request is bad
        # whatever the table holds.
        deadline = _deadline(p.get("ttl"), now)
        if not INT_MIN <= delta <= INT_MAX:
            raise overflow(name, key)
        table = self._create(name)
        if key in table.data:
            current = table.data[key]
            if not is_int(current):
                raise not_an_int(name, key, current)
            value: int = current + delta
            if not INT_MIN <= value <= INT_MAX:
                raise overflow(name, key)
            # The key keeps the expiry it was created with (a counter window stays fixed).
            table.data[key] = value
            self.version += 1
            return value
        self._set(name, table, key, delta, deadline)
        return delta

    def _op_keys(self, p: dict[str, Any], now: float) -> list[Any]:
        _name, table = self._existing(p)
        return list(matching(table.data, p.get("pattern")))

    def _op_items(self, p: dict[str, Any], now: float) -> list[list[Any]]:
        _name, table = self._existing(p)
        data = table.data
        return [[key, data[key]] for key in matching(data, p.get("pattern"))]

    def _op_values(self, p: dict[str, Any], now: float) -> list[Any]:
        _name, table = self._existing(p)
        data = table.data
        return [data[key] for key in matching(data, p.get("pattern"))]

    def _op_count(self, p: dict[str, Any], now: float) -> int:
        return len(self._existing(p)[1].data)

    def _op_clear(self, p: dict[str, Any], now: float) -> int:
        _name, table = self._existing(p)
        count = len(table.data)
        table.data.clear()
        table.deadlines.clear()  # their heap entries go stale
        self.version += 1
        return count

    def _op_info(self, p: dict[str, Any], now: float) -> dict[str, Any]:
        if p.get("table") is None:
            return {name: _info(table) for name, table in sorted(self._tables.items())}
        return _info(self._existing(p)[1])

    def _op_ensure(self, p: dict[str, Any], now: float) -> bool:
        name = check_table(p.get("table"))
        existed = name in self._tables
        self._create(name)
        return not existed

    def _op_exists(self, p: dict[str, Any], now: float) -> bool:
        table = self._tables.get(check_table(p.get("table")))
        if table is None:
            return False
        if p.get("key") is None:
            return True
        return check_key(p["key"]) in table.data

    def _op_delete_table(self, p: dict[str, Any], now: float) -> bool:
        table = self._tables.pop(check_table(p.get("table")), None)
        if table is None:
            return False
        self.version += 1
        return True

    def _op_tables(self, p: dict[str, Any], now: float) -> list[str]:
        return self.table_names()


def _info(table: _Table) -> dict[str, int]:
    return {"keys": len(table.data), "expiring": len(table.deadlines)}


def _deadline(ttl: Any, now: float) -> float | None:
    seconds = check_ttl(ttl)
    return None if seconds is None else now + seconds
