"""What makes a stash request valid, and how keys match globs: shared by every backend.

The in-arbiter store (:mod:`.store`) and the Redis backend (:mod:`.redis_backend`) check table
names, keys, ttls and ``incr`` deltas with these functions and raise the same errors with the
same messages, so a program sees no difference between them. Nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from typing import Any

from gunicorn.dirty.errors import StashError

# msgpack carries integers in [-2**63, 2**64 - 1]; a counter is kept in the signed range so it
# can always travel back to the caller (and so Redis's HINCRBY can hold it).
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

# fnmatch's metacharacters: a pattern's literal prefix ends at the first of them.
_GLOB_META = frozenset("*?[")


def is_int(value: Any) -> bool:
    """An int that a counter may hold: bool is an int subclass, but True + 1 is no count."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_table(name: Any) -> str:
    """``name`` if it is a valid table name (a non-empty str); StashError otherwise."""
    if not isinstance(name, str) or not name:
        raise StashError(f"stash table name must be a non-empty str, not {name!r}")
    return name


def check_key(key: Any) -> Any:
    """``key`` if it is a valid key (str, int or bytes); StashError naming its type otherwise."""
    # Only hashable scalars: msgpack turns tuples into lists, so anything else could never be
    # looked up again by the same spelling.
    if isinstance(key, (str, int, bytes)) and not isinstance(key, bool):
        return key
    raise StashError(f"stash keys must be str, int or bytes, not {type(key).__name__}")


def check_ttl(ttl: Any) -> float | None:
    """``ttl`` (seconds, a positive number) or ``None``; StashError otherwise."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise StashError(f"stash ttl must be a positive number of seconds, not {ttl!r}")
    return ttl


def check_delta(delta: Any) -> int:
    """An ``incr`` delta: an int (not a bool); StashError otherwise."""
    if not is_int(delta):
        raise StashError(f"incr delta must be an int, not {type(delta).__name__}")
    return int(delta)


def check_pattern(pattern: Any) -> str | None:
    """A glob pattern (str) or ``None``; StashError otherwise."""
    if pattern is not None and not isinstance(pattern, str):
        raise StashError(f"stash key pattern must be a str, not {type(pattern).__name__}")
    return pattern


def not_an_int(table: str, key: Any, current: Any) -> StashError:
    """The error of ``incr`` on a key whose value is not an int."""
    return StashError(f"cannot incr {key!r} in stash table {table!r}: "
                      f"its value is a {type(current).__name__}, not an int")


def overflow(table: str, key: Any) -> StashError:
    """The error of ``incr`` past the int64 range."""
    return StashError(f"incr of {key!r} in stash table {table!r} overflows int64")


def key_text(key: Any) -> str:
    """The text a glob pattern is matched against: str keys as they are, ints in decimal,
    bytes decoded byte-for-character (latin-1), so every key can be matched."""
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("latin-1")
    return str(key)


def matching(keys: Iterable[Any], pattern: Any) -> Iterator[Any]:
    """The keys of ``keys`` whose :func:`key_text` matches the glob ``pattern`` (all when
    ``pattern`` is None). Case-sensitive on every platform; StashError for a non-str pattern."""
    if check_pattern(pattern) is None:
        return iter(list(keys))
    # fnmatchcase: the same result on every platform (fnmatch folds case on Windows).
    return (key for key in list(keys) if fnmatch.fnmatchcase(key_text(key), pattern))


def literal_prefix(pattern: str) -> str:
    """The ASCII text every key matching ``pattern`` starts with (may be empty).

    It stops at the first glob metacharacter and at the first non-ASCII character: ASCII is
    spelled with the same bytes in a str key (UTF-8), a bytes key (latin-1) and an int key
    (decimal), so a store can pre-filter keys by bytes before the exact :func:`matching`.
    """
    for index, char in enumerate(pattern):
        if char in _GLOB_META or not char.isascii():
            return pattern[:index]
    return pattern
