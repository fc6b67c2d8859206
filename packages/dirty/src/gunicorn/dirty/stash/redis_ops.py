"""Stash requests as Redis script calls, and script replies as stash results: no I/O here.

:func:`plan` turns a request map (from :mod:`.payloads`) into a :class:`Step`: the script of
:mod:`.redis_scripts` to run, its keys and arguments, and ``finish``, which turns the script's
reply into exactly what :meth:`StashStore.apply <gunicorn.dirty.stash.store.StashStore.apply>`
returns for the same request, or raises the same error. ``finish`` may return another
:class:`Step` to run (``delete(if_value=)`` when the stored encoding differs from the one
asked for but the values are equal). The sync and asyncio drivers in :mod:`.redis_backend`
share all of this. Request checks come from :mod:`.rules`, as in the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gunicorn.dirty.codec import decode_body, encode_body
from gunicorn.dirty.errors import (
    DirtySerializationError,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
)
from gunicorn.dirty.stash import redis_scripts as lua
from gunicorn.dirty.stash.redis_scripts import Script, Status
from gunicorn.dirty.stash.rules import (
    INT_MAX,
    INT_MIN,
    check_delta,
    check_key,
    check_pattern,
    check_table,
    check_ttl,
    is_int,
    literal_prefix,
    matching,
    not_an_int,
    overflow,
)
from gunicorn.dirty.stash.store import StashOp

# A deadline past this many ms from now is "never" (a double holds it exactly; inf would not
# survive Lua's tonumber).
_MAX_TTL_MS = 2**52
# delete(if_value=): how many times to follow a value whose encoding keeps changing.
_MAX_COMPARES = 8
_NIL = b"\xc0"  # msgpack None (encode_body(None) is the empty body)
_DECIMAL_START = frozenset(b"-0123456789")
_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Step:
    """One script call, and what to make of its reply."""

    script: Script
    keys: tuple[bytes, ...]
    args: tuple[bytes, ...]
    finish: Callable[[Any], Any]


class KeyLayout:
    """The Redis key names of one stash: ``{prefix}:tables``, ``{prefix}:h:<table>`` and
    ``{prefix}:x:<table>`` (see :mod:`.redis_scripts`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.base = b"{" + _text(prefix) + b"}:"
        self.tables = self.base + b"tables"

    def of(self, name: str) -> tuple[bytes, bytes, bytes]:
        """The tables set, and the hash and deadline set of table ``name``."""
        encoded = _text(name)
        return self.tables, self.base + b"h:" + encoded, self.base + b"x:" + encoded


# -- codecs ---------------------------------------------------------------------------------

def _text(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: msgpack would refuse it too
        raise DirtySerializationError("str", f"cannot encode value: {exc}") from exc


def encode_field(key: Any) -> bytes:
    """The hash field of a checked key: its type tag and its text."""
    if isinstance(key, str):
        return b"s" + _text(str.__str__(key))
    if isinstance(key, bytes):
        return b"b" + bytes(key)
    if not INT_MIN <= key < 2**64:
        encode_body(key)  # raises the DirtySerializationError the dirty wire would
    return b"i" + str(int(key)).encode()


def decode_field(field: bytes) -> Any:
    tag, text = field[:1], field[1:]
    if tag == b"s":
        return text.decode()
    if tag == b"i":
        return int(text)
    if tag == b"b":
        return bytes(text)
    raise StashError(f"unexpected field {field[:40]!r} in a stash table in Redis")


def encode_value(value: Any) -> bytes:
    """msgpack, except int64 ints in decimal (so ``HINCRBY`` can count them).
    Raises DirtySerializationError, naming the type, for a value msgpack cannot carry."""
    if is_int(value) and INT_MIN <= value <= INT_MAX:
        return str(int(value)).encode()
    if value is None:
        return _NIL
    return encode_body(value)


def decode_value(data: bytes) -> Any:
    if data[:1] and data[0] in _DECIMAL_START:
        return int(data)
    return decode_body(data)


def ttl_ms(ttl: Any) -> bytes:
    """A checked ttl (seconds) in whole ms, rounded up; ``b""`` for none."""
    seconds = check_ttl(ttl)
    if seconds is None:
        return b""
    scaled = seconds * 1000
    return str(_MAX_TTL_MS if scaled >= _MAX_TTL_MS else max(1, math.ceil(scaled))).encode()


def _as_sent(key: Any) -> Any:
    # What the dirty wire would deliver: msgpack sends a bytearray as bytes, a tuple as a list.
    if isinstance(key, bytearray | memoryview):
        return bytes(key)
    if isinstance(key, tuple):
        return list(key)
    return key


# -- requests -------------------------------------------------------------------------------

def plan(layout: KeyLayout, payload: Any) -> Step:
    """The first :class:`Step` of ``payload``, checked as the store checks it.

    Raises StashError for a malformed request, and DirtySerializationError (before any
    StashError, as the dirty wire would) for a field msgpack cannot carry.
    """
    try:
        if not isinstance(payload, dict):
            raise StashError(f"stash request must be a map, not {type(payload).__name__}")
        op = payload.get("op")
        planner = _PLANNERS.get(op) if isinstance(op, str) else None
        if planner is None:
            raise StashError(f"unknown stash op: {op!r}")
        return planner(layout, payload)
    except StashError:
        encode_body(payload)
        raise


def _table(layout: KeyLayout, p: dict[str, Any]) -> tuple[str, tuple[bytes, bytes, bytes]]:
    name = check_table(p.get("table"))
    return name, layout.of(name)


def _key(p: dict[str, Any]) -> Any:
    return check_key(_as_sent(p.get("key")))


def _status(reply: list[Any], name: str, key: Any = _ABSENT) -> Any:
    """The payload of an ``{status, ...}`` reply; raise for a missing table or key."""
    status = reply[0]
    if status == Status.NO_TABLE:
        raise StashTableNotFoundError(name)
    if status == Status.NO_KEY:
        raise StashKeyNotFoundError(name, key)
    return reply[1] if len(reply) > 1 else None


def _plan_put(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    key = _key(p)
    if "value" not in p:
        raise StashError("stash put needs a value")
    ttl = ttl_ms(p.get("ttl"))
    args = (_text(name), encode_field(key), encode_value(p["value"]), ttl,
            b"1" if p.get("if_absent") else b"")
    return Step(lua.PUT, keys, args, bool)


def _plan_get(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    key = _key(p)
    return Step(lua.GET, keys, (_text(name), encode_field(key)),
                lambda reply: decode_value(_status(reply, name, key)))


def _plan_delete(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    key = _key(p)
    args = (_text(name), encode_field(key))
    expected = p.get("if_value", _ABSENT)
    if expected is _ABSENT:
        return Step(lua.DELETE, keys, args + (b"", b""), lambda reply: _status(reply, name) == 1)
    wanted = encode_value(expected)
    # Compared as the store compares: the decoded values with ==, so 1 == 1.0 and key order
    # in a dict does not matter. The script compares bytes; when they differ but the values
    # are equal, delete again on the condition that the key still holds exactly those bytes.
    as_stored = decode_value(wanted)

    def finish(reply: list[Any], attempts: int = 1) -> Any:
        if reply[0] != Status.OTHER_VALUE:
            return _status(reply, name) == 1
        if attempts >= _MAX_COMPARES or decode_value(reply[1]) != as_stored:
            return False
        return Step(lua.DELETE, keys, args + (b"1", reply[1]),
                    lambda again: finish(again, attempts + 1))

    return Step(lua.DELETE, keys, args + (b"1", wanted), finish)


def _plan_incr(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    key = _key(p)
    delta = check_delta(p.get("delta", 1))
    ttl = ttl_ms(p.get("ttl"))
    if not INT_MIN <= delta <= INT_MAX:
        raise overflow(name, key)

    def finish(reply: list[Any]) -> int:
        if reply[0] == Status.OVERFLOW:
            raise overflow(name, key)
        if reply[0] == Status.NOT_AN_INT:
            current = decode_value(reply[1])
            # An int past int64 (stored as msgpack) cannot be counted by HINCRBY: as in the
            # store, adding to it overflows.
            raise overflow(name, key) if is_int(current) else not_an_int(name, key, current)
        return int(reply[1])

    return Step(lua.INCR, keys, (_text(name), encode_field(key), str(delta).encode(), ttl),
                finish)


def _plan_listing(mode: bytes) -> Callable[[KeyLayout, dict[str, Any]], Step]:
    def planner(layout: KeyLayout, p: dict[str, Any]) -> Step:
        name, keys = _table(layout, p)
        pattern = check_pattern(p.get("pattern"))
        prefix = b"" if pattern is None else literal_prefix(pattern).encode("ascii")
        args = (_text(name), mode, prefix, b"" if pattern is None else b"1")
        return Step(lua.LIST, keys, args,
                    lambda reply: _listing(mode, _status(reply, name), pattern))
    return planner


def _listing(mode: bytes, rows: list[bytes], pattern: str | None) -> list[Any]:
    if mode == b"k":
        return list(matching((decode_field(f) for f in rows), pattern))
    if mode == b"v" and pattern is None:
        return [decode_value(v) for v in rows]
    pairs = {decode_field(rows[i]): rows[i + 1] for i in range(0, len(rows), 2)}
    chosen = matching(pairs, pattern)
    if mode == b"v":
        return [decode_value(pairs[k]) for k in chosen]
    return [[k, decode_value(pairs[k])] for k in chosen]


def _plan_count(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    return Step(lua.COUNT, keys, (_text(name),), lambda reply: int(_status(reply, name)))


def _plan_clear(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    return Step(lua.CLEAR, keys, (_text(name),), lambda reply: int(_status(reply, name)))


def _plan_info(layout: KeyLayout, p: dict[str, Any]) -> Step:
    if p.get("table") is None:
        return Step(lua.INFO_ALL, (layout.tables,), (layout.base,), _all_info)
    name, keys = _table(layout, p)

    def finish(reply: list[Any]) -> dict[str, int]:
        _status(reply, name)
        return {"keys": int(reply[1]), "expiring": int(reply[2])}

    return Step(lua.INFO, keys, (_text(name),), finish)


def _all_info(reply: list[Any]) -> dict[str, dict[str, int]]:
    rows = {reply[i].decode(): {"keys": int(reply[i + 1]), "expiring": int(reply[i + 2])}
            for i in range(0, len(reply), 3)}
    return dict(sorted(rows.items()))


def _plan_ensure(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    return Step(lua.ENSURE, keys, (_text(name),), lambda reply: reply == 1)


def _plan_exists(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    if p.get("key") is None:
        return Step(lua.EXISTS, keys, (_text(name), b"", b""), lambda reply: reply == 1)
    field = encode_field(_key(p))
    return Step(lua.EXISTS, keys, (_text(name), field, b"1"), lambda reply: reply == 1)


def _plan_delete_table(layout: KeyLayout, p: dict[str, Any]) -> Step:
    name, keys = _table(layout, p)
    return Step(lua.DELETE_TABLE, keys, (_text(name),), lambda reply: reply == 1)


def _plan_tables(layout: KeyLayout, p: dict[str, Any]) -> Step:
    return Step(lua.TABLES, (layout.tables,), (),
                lambda reply: sorted(name.decode() for name in reply))


_PLANNERS: dict[str, Callable[[KeyLayout, dict[str, Any]], Step]] = {
    StashOp.PUT: _plan_put,
    StashOp.GET: _plan_get,
    StashOp.DELETE: _plan_delete,
    StashOp.INCR: _plan_incr,
    StashOp.KEYS: _plan_listing(b"k"),
    StashOp.ITEMS: _plan_listing(b"i"),
    StashOp.VALUES: _plan_listing(b"v"),
    StashOp.COUNT: _plan_count,
    StashOp.CLEAR: _plan_clear,
    StashOp.INFO: _plan_info,
    StashOp.ENSURE: _plan_ensure,
    StashOp.EXISTS: _plan_exists,
    StashOp.DELETE_TABLE: _plan_delete_table,
    StashOp.TABLES: _plan_tables,
}
