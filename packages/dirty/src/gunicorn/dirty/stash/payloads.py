"""STASH request payloads, built in one place for the sync and the asyncio clients.

Each function returns the msgpack map a STASH frame carries; :class:`StashStore` in the dirty
arbiter is the other end. Optional fields are left out when unset, so the common ``get`` and
``put`` frames stay small. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

from gunicorn.dirty.stash.store import StashOp

# Marks "no if_value condition": None is a value a caller may legitimately compare against.
UNSET: Any = object()

# The op strings of the hot operations, looked up once: ``StashOp.GET.value`` goes through the
# enum machinery on every access, which costs more than building the whole payload.
_PUT = StashOp.PUT.value
_GET = StashOp.GET.value
_DELETE = StashOp.DELETE.value
_INCR = StashOp.INCR.value
_EXISTS = StashOp.EXISTS.value


def put(table: str, key: Any, value: Any, ttl: float | None, if_absent: bool) -> dict[str, Any]:
    payload = {"op": _PUT, "table": table, "key": key, "value": value}
    if ttl is not None:
        payload["ttl"] = ttl
    if if_absent:
        payload["if_absent"] = True
    return payload


def get(table: str, key: Any) -> dict[str, Any]:
    return {"op": _GET, "table": table, "key": key}


def delete(table: str, key: Any, if_value: Any = UNSET) -> dict[str, Any]:
    payload = {"op": _DELETE, "table": table, "key": key}
    if if_value is not UNSET:
        payload["if_value"] = if_value
    return payload


def incr(table: str, key: Any, delta: int, ttl: float | None) -> dict[str, Any]:
    payload = {"op": _INCR, "table": table, "key": key, "delta": delta}
    if ttl is not None:
        payload["ttl"] = ttl
    return payload


def listing(op: StashOp, table: str, pattern: str | None) -> dict[str, Any]:
    """``keys``, ``items`` or ``values`` of ``table``, optionally filtered by a glob."""
    payload: dict[str, Any] = {"op": op.value, "table": table}
    if pattern is not None:
        payload["pattern"] = pattern
    return payload


def on_table(op: StashOp, table: str) -> dict[str, Any]:
    """``count``, ``clear``, ``ensure`` or ``delete_table``."""
    return {"op": op.value, "table": table}


def info(table: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"op": StashOp.INFO.value}
    if table is not None:
        payload["table"] = table
    return payload


def exists(table: str, key: Any) -> dict[str, Any]:
    payload = {"op": _EXISTS, "table": table}
    if key is not None:
        payload["key"] = key
    return payload


def tables() -> dict[str, Any]:
    return {"op": StashOp.TABLES.value}


def pairs(result: list[list[Any]]) -> list[tuple[Any, Any]]:
    """``items`` travel as lists of two-element lists; callers get ``(key, value)`` tuples."""
    return [(key, value) for key, value in result]
