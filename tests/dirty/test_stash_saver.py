"""StashSaver: load at start, periodic background saves only when changed, final save."""

from __future__ import annotations

import logging
import os
import time

import pytest
from gunicorn.dirty.stash.saver import StashSaver
from gunicorn.dirty.stash.store import StashStore
from harness import wait_until


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="test.stash")
    return logging.getLogger("test.stash")


def put(store: StashStore, key: str, value: int) -> None:
    store.apply({"op": "put", "table": "t", "key": key, "value": value}, time.monotonic())


def reloaded(path: str) -> dict:
    store = StashStore()
    store.load(path)
    return dict(store.apply({"op": "items", "table": "t"}, time.monotonic()))


def test_periodic_save_happens_after_the_interval_and_only_on_change(tmp_path, log):
    path = str(tmp_path / "stash.bin")
    store = StashStore()
    saver = StashSaver(store, path, interval=10, log=log)
    start = time.monotonic()
    put(store, "a", 1)
    saver.tick(start + 1)
    assert not os.path.exists(path), "not before the interval"
    saver.tick(start + 11)
    wait_until(lambda: os.path.exists(path), 5)
    wait_until(lambda: not saver._writer.is_alive(), 5)
    mtime = os.stat(path).st_mtime_ns
    saver.tick(start + 22)
    assert saver._writer is not None
    saver._writer.join(5)
    assert os.stat(path).st_mtime_ns == mtime, "unchanged tables are not rewritten"
    put(store, "b", 2)
    saver.tick(start + 33)
    saver._writer.join(5)
    assert reloaded(path) == {"a": 1, "b": 2}


def test_interval_zero_saves_only_at_stop(tmp_path, log):
    path = str(tmp_path / "stash.bin")
    store = StashStore()
    saver = StashSaver(store, path, interval=0, log=log)
    put(store, "a", 1)
    saver.tick(time.monotonic() + 10_000)
    assert not os.path.exists(path)
    assert saver.save_now() is True
    assert reloaded(path) == {"a": 1}


def test_load_then_save_round_trip_and_logs_the_count(tmp_path, log, caplog):
    path = str(tmp_path / "stash.bin")
    first = StashStore()
    put(first, "a", 1)
    StashSaver(first, path, 30, log).save_now()
    second = StashStore()
    assert StashSaver(second, path, 30, log).load() == 1
    assert "Loaded 1 stash keys" in caplog.text
    assert second.apply({"op": "get", "table": "t", "key": "a"}, 0.0) == 1


def test_corrupt_file_is_set_aside_and_the_stash_starts_empty(tmp_path, log, caplog):
    path = tmp_path / "stash.bin"
    path.write_bytes(b"\xc1 not msgpack")
    store = StashStore()
    saver = StashSaver(store, str(path), 30, log)
    assert saver.load() == 0
    assert "Cannot load the stash" in caplog.text
    assert (tmp_path / "stash.bin.corrupt").read_bytes() == b"\xc1 not msgpack"
    put(store, "a", 1)
    assert saver.save_now() is True
    assert reloaded(str(path)) == {"a": 1}


def test_unwritable_directory_is_logged_not_raised(tmp_path, log, caplog):
    path = str(tmp_path / "missing-dir" / "stash.bin")
    store = StashStore()
    put(store, "a", 1)
    assert StashSaver(store, path, 30, log).save_now() is False
    assert "Cannot write the stash file" in caplog.text
