"""The stash file: save/load round trip, ttl across clocks, corrupt files, atomic writes."""

from __future__ import annotations

import os
import stat
import threading

import msgpack
import pytest
from gunicorn.dirty.errors import StashError, StashKeyNotFoundError
from gunicorn.dirty.stash import persist
from gunicorn.dirty.stash.store import StashStore


def filled() -> StashStore:
    store = StashStore()
    store.apply({"op": "put", "table": "s", "key": "u:1", "value": {"n": [1, b"x", None]}}, 0.0)
    store.apply({"op": "put", "table": "s", "key": 7, "value": 1.5}, 0.0)
    store.apply({"op": "put", "table": "s", "key": b"raw", "value": "v", "ttl": 100}, 0.0)
    store.apply({"op": "incr", "table": "c", "key": "hits", "delta": 41}, 0.0)
    store.ensure(["empty"])
    return store


def test_round_trip_keeps_tables_keys_values_and_types(tmp_path):
    path = str(tmp_path / "stash.bin")
    filled().save(path, now=0.0, wall=1000.0)
    store = StashStore()
    assert store.load(path, now=50.0, wall=1000.0) == 4
    assert store.apply({"op": "tables"}, 50.0) == ["c", "empty", "s"]
    assert store.apply({"op": "get", "table": "s", "key": "u:1"}, 50.0) == {"n": [1, b"x", None]}
    assert store.apply({"op": "get", "table": "s", "key": 7}, 50.0) == 1.5
    assert store.apply({"op": "incr", "table": "c", "key": "hits"}, 50.0) == 42


def test_ttl_is_kept_as_wall_clock_time_across_different_monotonic_clocks(tmp_path):
    path = str(tmp_path / "stash.bin")
    # Saved at wall 1000 with 100 s left; loaded 30 s later (wall) on a clock that restarted.
    filled().save(path, now=0.0, wall=1000.0)
    store = StashStore()
    store.load(path, now=5.0, wall=1030.0)
    assert store.apply({"op": "get", "table": "s", "key": b"raw"}, 74.9) == "v"
    with pytest.raises(StashKeyNotFoundError):
        store.apply({"op": "get", "table": "s", "key": b"raw"}, 75.0)


def test_keys_that_expired_while_down_are_not_loaded(tmp_path):
    path = str(tmp_path / "stash.bin")
    filled().save(path, now=0.0, wall=1000.0)
    store = StashStore()
    assert store.load(path, now=0.0, wall=1100.0) == 3
    assert store.apply({"op": "exists", "table": "s", "key": b"raw"}, 0.0) is False


def test_saving_drops_already_expired_keys(tmp_path):
    path = str(tmp_path / "stash.bin")
    store = filled()
    store.save(path, now=200.0, wall=1000.0)
    doc = msgpack.unpackb(open(path, "rb").read(), raw=False, strict_map_key=False)
    assert [row[0] for row in doc["tables"]["s"]] == ["u:1", 7]


def test_load_replaces_saved_tables_and_keeps_others(tmp_path):
    path = str(tmp_path / "stash.bin")
    filled().save(path)
    store = StashStore()
    store.ensure(["declared"])
    store.apply({"op": "put", "table": "s", "key": "stale", "value": 0}, 0.0)
    store.load(path)
    assert "declared" in store.table_names()
    assert store.apply({"op": "exists", "table": "s", "key": "stale"}, 0.0) is False


def test_missing_file_loads_nothing(tmp_path):
    assert StashStore().load(str(tmp_path / "none.bin")) == 0


@pytest.mark.parametrize("data", [
    b"", b"\xc1garbage", msgpack.packb([1, 2]), msgpack.packb({"format": "other"}),
    msgpack.packb({"format": "gunicorn-dirty-stash", "version": 99, "tables": {}}),
    msgpack.packb({"format": "gunicorn-dirty-stash", "version": 1, "tables": {"t": [[1, 2]]}}),
    msgpack.packb({"format": "gunicorn-dirty-stash", "version": 1,
                   "tables": {"t": [["ok", 1, None]], "u": [[[1], 2, None]]}}),
    msgpack.packb({"format": "gunicorn-dirty-stash", "version": 1,
                   "tables": {"t": [["k", 1, "soon"]]}}),
], ids=["empty", "garbage", "list", "foreign", "future-version", "short-row", "list-key",
        "bad-expiry"])
def test_corrupt_file_raises_and_leaves_the_store_unchanged(tmp_path, data):
    path = tmp_path / "stash.bin"
    path.write_bytes(data)
    store = StashStore()
    store.apply({"op": "put", "table": "t", "key": "keep", "value": 1}, 0.0)
    with pytest.raises(StashError):
        store.load(str(path))
    assert store.apply({"op": "items", "table": "t"}, 0.0) == [["keep", 1]]
    assert store.table_names() == ["t"]


def test_file_is_private_and_no_temporary_is_left(tmp_path):
    path = tmp_path / "stash.bin"
    filled().save(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["stash.bin"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "stash.bin"
    filled().save(str(path))
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    # Injected fault: a real full disk cannot be produced portably in a test.
    monkeypatch.setattr(persist.os, "fsync", disk_full)
    with pytest.raises(OSError):
        StashStore().save(str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["stash.bin"]


def test_reader_never_sees_a_partial_file(tmp_path):
    path = str(tmp_path / "stash.bin")
    big = StashStore()
    for i in range(2000):
        big.apply({"op": "put", "table": "t", "key": i, "value": "x" * 64}, 0.0)
    big.save(path)
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(StashStore().load(path))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(20):
            big.apply({"op": "put", "table": "t", "key": "n", "value": n}, 0.0)
            big.save(path)
    finally:
        stop.set()
        thread.join(10)
    assert seen and set(seen) <= {2000, 2001}
