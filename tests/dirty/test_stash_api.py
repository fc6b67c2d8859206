"""The stash's public surface, and the client payloads against the store (no sockets)."""

from __future__ import annotations

import inspect

import msgpack
from gunicorn.dirty import stash
from gunicorn.dirty.stash import payloads
from gunicorn.dirty.stash.store import StashOp, StashStore


def test_public_names_are_sorted_and_exist():
    assert stash.__all__ == sorted(stash.__all__)
    for name in stash.__all__:
        assert hasattr(stash, name), name


def test_every_sync_function_has_an_awaitable_twin():
    for name in ("put", "get", "delete", "incr", "exists", "keys", "items", "values", "count",
                 "clear", "info", "ensure", "delete_table", "tables"):
        assert inspect.iscoroutinefunction(getattr(stash, "a" + name)), name
        assert (inspect.signature(getattr(stash, name))
                == inspect.signature(getattr(stash, "a" + name))), name


def test_from_gunicorn_dirty_import_stash():
    import gunicorn.dirty

    assert gunicorn.dirty.stash is stash
    assert stash.StashKeyNotFoundError is gunicorn.dirty.StashKeyNotFoundError


def test_optional_fields_are_left_out():
    assert payloads.put("t", "k", 1, None, False) == {"op": "put", "table": "t", "key": "k",
                                                     "value": 1}
    assert payloads.get("t", "k") == {"op": "get", "table": "t", "key": "k"}
    assert payloads.delete("t", "k") == {"op": "delete", "table": "t", "key": "k"}
    assert payloads.delete("t", "k", None)["if_value"] is None
    assert payloads.exists("t", None) == {"op": "exists", "table": "t"}
    assert payloads.info(None) == {"op": "info"}


def test_client_payloads_are_understood_by_the_store():
    """Every request a client builds, sent through msgpack, gets the documented result."""
    store = StashStore()

    def run(payload):
        return store.apply(msgpack.unpackb(msgpack.packb(payload)), 0.0)

    assert run(payloads.put("t", "k", [1, 2], 10, True)) is True
    assert run(payloads.get("t", "k")) == [1, 2]
    assert run(payloads.incr("t", "n", 5, None)) == 5
    assert sorted(run(payloads.listing(StashOp.KEYS, "t", None))) == ["k", "n"]
    assert payloads.pairs(run(payloads.listing(StashOp.ITEMS, "t", "n"))) == [("n", 5)]
    assert run(payloads.listing(StashOp.VALUES, "t", "k")) == [[1, 2]]
    assert run(payloads.on_table(StashOp.COUNT, "t")) == 2
    assert run(payloads.info("t")) == {"keys": 2, "expiring": 1}
    assert run(payloads.exists("t", "k")) is True
    assert run(payloads.delete("t", "k", "wrong")) is False
    assert run(payloads.delete("t", "k")) is True
    assert run(payloads.on_table(StashOp.CLEAR, "t")) == 1
    assert run(payloads.on_table(StashOp.ENSURE, "u")) is True
    assert run(payloads.tables()) == ["t", "u"]
    assert run(payloads.on_table(StashOp.DELETE_TABLE, "u")) is True
