"""StashStore: every op, errors, ttl with a hand-driven clock, glob, incr, invariants.

The tests taking ``store`` run twice: on the in-arbiter StashStore and on the Redis backend
(through the same request maps), so both give the same results and errors. Those that drive
the clock by hand or look at the store's internals take ``local_store``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.dirty.errors import (
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    error_from_payload,
)
from gunicorn.dirty.stash.store import StashOp, StashStore, key_text
from hypothesis import given, settings
from hypothesis import strategies as st


def op(store: StashStore, name: str, now: float = 0.0, **fields: Any) -> Any:
    return store.apply({"op": name, **fields}, now)


class RedisView:
    """The Redis backend behind the store's two entry points. Redis keeps its own clock, so
    ``now`` is ignored: the tests given this view never move time."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def apply(self, payload: Any, now: float) -> Any:
        return self.backend.call(payload)

    def ensure(self, names: list[str]) -> None:
        for name in names:
            self.backend.call({"op": "ensure", "table": name})


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "local":
        yield StashStore()
        return
    from gunicorn.dirty.stash.redis_backend import RedisBackend

    server = request.getfixturevalue("redis_server")
    backend = RedisBackend(server.url, request.getfixturevalue("stash_prefix"), timeout=10)
    yield RedisView(backend)
    backend.close()


@pytest.fixture
def local_store() -> StashStore:
    return StashStore()


def test_put_creates_table_and_get_returns_value_as_given(store):
    value = {"name": "Alice", "tags": [1, 2.5, None, b"\x00"], "ok": True}
    assert op(store, "put", table="s", key="u:1", value=value) is True
    assert op(store, "get", table="s", key="u:1") == value
    assert op(store, "tables") == ["s"]


@pytest.mark.parametrize("key", ["k", 7, -3, b"raw"], ids=["str", "int", "negative", "bytes"])
def test_scalar_keys_round_trip(store, key):
    op(store, "put", table="t", key=key, value="v")
    assert op(store, "get", table="t", key=key) == "v"
    assert op(store, "keys", table="t") == [key]


@pytest.mark.parametrize("key", [None, [1], {"a": 1}, 1.5, True],
                         ids=["none", "list", "dict", "float", "bool"])
def test_non_scalar_keys_are_refused_naming_the_type(store, key):
    with pytest.raises(StashError, match=type(key).__name__):
        op(store, "put", table="t", key=key, value=1)


def test_put_overwrites(store):
    op(store, "put", table="t", key="k", value=1)
    op(store, "put", table="t", key="k", value=2)
    assert op(store, "get", table="t", key="k") == 2


def test_put_needs_a_value_but_none_is_a_value(store):
    with pytest.raises(StashError, match="value"):
        op(store, "put", table="t", key="k")
    op(store, "put", table="t", key="k", value=None)
    assert op(store, "get", table="t", key="k") is None


def test_put_if_absent_stores_only_once(store):
    assert op(store, "put", table="locks", key="job", value="a", if_absent=True) is True
    assert op(store, "put", table="locks", key="job", value="b", if_absent=True) is False
    assert op(store, "get", table="locks", key="job") == "a"


def test_get_missing_key_raises_key_error_subclass(store):
    op(store, "ensure", table="t")
    with pytest.raises(StashKeyNotFoundError) as info:
        op(store, "get", table="t", key="nope")
    assert isinstance(info.value, KeyError)
    assert (info.value.table, info.value.key) == ("t", "nope")


@pytest.mark.parametrize("name,fields", [
    ("get", {"key": "k"}), ("delete", {"key": "k"}), ("keys", {}), ("items", {}),
    ("values", {}), ("count", {}), ("clear", {}), ("info", {}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_ops_on_a_missing_table_raise_table_not_found(store, name, fields):
    with pytest.raises(StashTableNotFoundError) as info:
        op(store, name, table="ghost", **fields)
    assert info.value.table == "ghost"


def test_errors_survive_the_wire_form(store):
    op(store, "ensure", table="t")
    with pytest.raises(StashKeyNotFoundError) as info:
        op(store, "get", table="t", key=b"k")
    again = error_from_payload(info.value.to_payload())
    assert type(again) is StashKeyNotFoundError and again.key == b"k"


def test_delete_reports_whether_the_key_was_there(store):
    op(store, "put", table="t", key="k", value=1)
    assert op(store, "delete", table="t", key="k") is True
    assert op(store, "delete", table="t", key="k") is False
    assert op(store, "exists", table="t", key="k") is False


def test_delete_if_value_only_removes_the_owners_key(store):
    op(store, "put", table="locks", key="job", value="token-a")
    assert op(store, "delete", table="locks", key="job", if_value="token-b") is False
    assert op(store, "delete", table="locks", key="job", if_value="token-a") is True
    op(store, "put", table="locks", key="n", value=None)
    assert op(store, "delete", table="locks", key="n", if_value=None) is True


def test_incr_starts_at_zero_and_is_exact(store):
    assert op(store, "incr", table="c", key="hits") == 1
    assert op(store, "incr", table="c", key="hits", delta=10) == 11
    assert op(store, "incr", table="c", key="hits", delta=-12) == -1
    assert op(store, "get", table="c", key="hits") == -1


@pytest.mark.parametrize("value", ["3", 1.5, True, None, [1]],
                         ids=["str", "float", "bool", "none", "list"])
def test_incr_of_a_non_integer_value_fails_and_leaves_it(store, value):
    op(store, "put", table="c", key="k", value=value)
    with pytest.raises(StashError, match="not an int"):
        op(store, "incr", table="c", key="k")
    assert op(store, "get", table="c", key="k") == value


@pytest.mark.parametrize("delta", [1.0, "1", True], ids=["float", "str", "bool"])
def test_incr_delta_must_be_an_int(store, delta):
    with pytest.raises(StashError, match="delta"):
        op(store, "incr", table="c", key="k", delta=delta)


def test_incr_refuses_to_overflow_int64(store):
    op(store, "put", table="c", key="k", value=2**63 - 1)
    with pytest.raises(StashError, match="overflow"):
        op(store, "incr", table="c", key="k")
    with pytest.raises(StashError, match="overflow"):
        op(store, "incr", table="c", key="new", delta=2**63)


@pytest.mark.parametrize("pattern,expected", [
    ("user:*", ["user:1", "user:22"]),
    ("user:?", ["user:1"]),
    ("*[0-9]", ["user:1", "user:22", "7"]),
    ("USER:*", []),
    ("b*", ["bytes"]),
    ("7", ["7"]),
], ids=["star", "question", "class", "case-sensitive", "bytes-key", "int-key"])
def test_keys_glob(store, pattern, expected):
    for key in ("user:1", "user:22", "admin", 7, b"bytes"):
        op(store, "put", table="t", key=key, value=1)
    keys = op(store, "keys", table="t", pattern=pattern)
    assert sorted(map(key_text, keys)) == sorted(expected)


def test_items_values_and_count(store):
    for i in range(5):
        op(store, "put", table="t", key=f"k{i}", value=i * 10)
    assert sorted(op(store, "items", table="t")) == [[f"k{i}", i * 10] for i in range(5)]
    assert sorted(op(store, "values", table="t", pattern="k[0-1]")) == [0, 10]
    assert op(store, "count", table="t") == 5


def test_pattern_must_be_text(store):
    op(store, "ensure", table="t")
    with pytest.raises(StashError, match="pattern"):
        op(store, "keys", table="t", pattern=b"*")


def test_clear_keeps_the_table(store):
    op(store, "put", table="t", key="a", value=1)
    op(store, "put", table="t", key="b", value=1, ttl=5)
    assert op(store, "clear", table="t") == 2
    assert op(store, "exists", table="t") is True
    assert op(store, "count", table="t") == 0
    assert op(store, "info", table="t") == {"keys": 0, "expiring": 0}


def test_info_per_table_and_for_all(store):
    op(store, "put", table="a", key="x", value=1, ttl=10)
    op(store, "put", table="a", key="y", value=1)
    op(store, "ensure", table="b")
    assert op(store, "info", table="a") == {"keys": 2, "expiring": 1}
    assert op(store, "info") == {"a": {"keys": 2, "expiring": 1}, "b": {"keys": 0, "expiring": 0}}


def test_ensure_is_idempotent_and_says_if_it_created(store):
    assert op(store, "ensure", table="t") is True
    op(store, "put", table="t", key="k", value=1)
    assert op(store, "ensure", table="t") is False
    assert op(store, "get", table="t", key="k") == 1
    store.ensure(["t", "u"])
    assert op(store, "tables") == ["t", "u"]


def test_exists_never_raises(store):
    assert op(store, "exists", table="t") is False
    assert op(store, "exists", table="t", key="k") is False
    op(store, "ensure", table="t")
    assert op(store, "exists", table="t") is True
    assert op(store, "exists", table="t", key="k") is False


def test_delete_table(store):
    op(store, "put", table="t", key="k", value=1, ttl=100)
    assert op(store, "delete_table", table="t") is True
    assert op(store, "delete_table", table="t") is False
    assert op(store, "tables") == []
    op(store, "put", table="t", key="k", value=2)
    assert op(store, "info", table="t") == {"keys": 1, "expiring": 0}


def test_a_dropped_tables_pending_expiry_spares_its_successor(local_store):
    store = local_store
    op(store, "put", table="t", key="k", value=1, ttl=1)
    op(store, "delete_table", table="t")
    op(store, "put", table="t", key="k", value=2)
    assert store.expire(5.0) == 0
    assert op(store, "get", table="t", key="k", now=5.0) == 2


@pytest.mark.parametrize("payload", [
    [], {"op": "nope"}, {"op": ["put"]}, {}, {"op": "put", "table": "", "key": "k", "value": 1},
    {"op": "put", "table": 3, "key": "k", "value": 1}, {"op": "get", "table": None, "key": 1},
], ids=["not-a-map", "unknown-op", "unhashable-op", "no-op", "empty-table", "int-table",
        "no-table"])
def test_malformed_requests_raise_stash_error(store, payload):
    with pytest.raises(StashError):
        store.apply(payload, 0.0)


def test_every_op_is_dispatched(store):
    for name in StashOp:
        try:
            store.apply({"op": name.value, "table": "t", "key": "k", "value": 1}, 0.0)
        except StashError:
            pass  # missing-table errors are fine; "unknown op" would mean a gap


# -- ttl ---------------------------------------------------------------------------------------

def test_ttl_expires_at_the_deadline(local_store):
    store = local_store
    op(store, "put", table="t", key="k", value=1, ttl=10, now=100.0)
    assert op(store, "get", table="t", key="k", now=109.9) == 1
    with pytest.raises(StashKeyNotFoundError):
        op(store, "get", table="t", key="k", now=110.0)
    assert op(store, "count", table="t", now=110.0) == 0


def test_expired_keys_vanish_from_every_view(local_store):
    store = local_store
    op(store, "put", table="t", key="short", value=1, ttl=1, now=0.0)
    op(store, "put", table="t", key="long", value=2, now=0.0)
    assert op(store, "keys", table="t", now=2.0) == ["long"]
    assert op(store, "exists", table="t", key="short", now=2.0) is False
    assert op(store, "info", table="t", now=2.0) == {"keys": 1, "expiring": 0}


def test_put_without_ttl_clears_a_previous_ttl(local_store):
    store = local_store
    op(store, "put", table="t", key="k", value=1, ttl=1, now=0.0)
    op(store, "put", table="t", key="k", value=2, now=0.5)
    assert op(store, "get", table="t", key="k", now=50.0) == 2


def test_reput_with_a_longer_ttl_outlives_the_first_deadline(local_store):
    store = local_store
    op(store, "put", table="t", key="k", value=1, ttl=1, now=0.0)
    op(store, "put", table="t", key="k", value=2, ttl=10, now=0.5)
    assert op(store, "get", table="t", key="k", now=5.0) == 2
    assert store.expire(10.5) == 1


def test_if_absent_succeeds_once_the_key_expired(local_store):
    store = local_store
    op(store, "put", table="locks", key="job", value="a", ttl=5, if_absent=True, now=0.0)
    assert op(store, "put", table="locks", key="job", value="b", if_absent=True, now=4.0) is False
    assert op(store, "put", table="locks", key="job", value="b", if_absent=True, now=5.0) is True


def test_incr_ttl_applies_on_creation_only(local_store):
    store = local_store
    op(store, "incr", table="rate", key="ip", ttl=60, now=0.0)
    op(store, "incr", table="rate", key="ip", ttl=60, now=59.0)
    assert op(store, "get", table="rate", key="ip", now=59.5) == 2
    assert op(store, "incr", table="rate", key="ip", ttl=60, now=60.0) == 1


@pytest.mark.parametrize("ttl", [0, -1, "5", True, float("nan")],
                         ids=["zero", "negative", "str", "bool", "nan"])
def test_bad_ttl_is_refused(store, ttl):
    with pytest.raises(StashError, match="ttl"):
        op(store, "put", table="t", key="k", value=1, ttl=ttl)


def test_expire_counts_and_bumps_version(local_store):
    store = local_store
    for i in range(3):
        op(store, "put", table="t", key=i, value=i, ttl=i + 1, now=0.0)
    version = store.version
    assert store.expire(2.0) == 2
    assert store.version > version
    assert store.expire(2.0) == 0


def test_version_counts_mutations_only(local_store):
    store = local_store
    op(store, "put", table="t", key="k", value=1)
    version = store.version
    op(store, "get", table="t", key="k")
    op(store, "keys", table="t")
    op(store, "exists", table="t")
    assert store.version == version
    op(store, "incr", table="t", key="n")
    assert store.version > version


# -- model-based property test -------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "c", 1, b"d"])
_ops = st.one_of(
    st.tuples(st.just("put"), _keys, st.integers(-5, 5), st.none() | st.integers(1, 5),
              st.booleans()),
    st.tuples(st.just("delete"), _keys),
    st.tuples(st.just("incr"), _keys, st.integers(-3, 3)),
    st.tuples(st.just("tick"), st.integers(0, 3)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ops, max_size=40))
def test_store_matches_a_dict_model_with_expiry(steps):
    store = StashStore()
    model: dict[Any, tuple[int, float | None]] = {}
    now = 0.0

    def live() -> dict[Any, int]:
        return {k: v for k, (v, dl) in model.items() if dl is None or dl > now}

    for step in steps:
        kind = step[0]
        if kind == "tick":
            now += step[1]
            continue
        alive = live()
        if kind == "put":
            _, key, value, ttl, if_absent = step
            stored = op(store, "put", table="t", key=key, value=value, ttl=ttl,
                        if_absent=if_absent, now=now)
            assert stored == (not if_absent or key not in alive)
            if stored:
                model[key] = (value, None if ttl is None else now + ttl)
        elif kind == "delete":
            store.ensure(["t"])
            assert op(store, "delete", table="t", key=step[1], now=now) == (step[1] in alive)
            model.pop(step[1], None)
        else:
            _, key, delta = step
            if key in alive:
                model[key] = (alive[key] + delta, model[key][1])
            else:
                model[key] = (delta, None)
            assert op(store, "incr", table="t", key=key, delta=delta, now=now) == model[key][0]
        store.ensure(["t"])
        assert dict(op(store, "items", table="t", now=now)) == live()
