"""The dirty pool through real processes: HTTP endpoints and DirtyClient against the socket."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
import urllib.request
from urllib.parse import urlencode

import pytest
from conftest import ECHO, DirtyServer
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.errors import (
    DirtyActionNotFoundError,
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtySerializationError,
)


def _get(server: DirtyServer, path: str, **query: object) -> tuple[int, dict]:
    url = f"{server.url}{path}?{urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_worker_sees_the_socket(shared_server: DirtyServer) -> None:
    status, body = _get(shared_server, "/socket")
    assert status == 200 and body["socket"] == shared_server.socket_path()
    info = os.stat(body["socket"])
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(body["socket"])).st_mode) == 0o700


@pytest.mark.parametrize(("action", "args", "expected"), [
    ("echo", [{"a": [1, "x"]}], {"a": [1, "x"]}),
    ("asleep", [0.01], None),
], ids=["sync", "async"])
def test_http_endpoint_calls_dirty_app(shared_server: DirtyServer, action: str, args: list,
                                       expected: object) -> None:
    status, body = _get(shared_server, "/call", app=ECHO, action=action, args=json.dumps(args))
    assert status == 200
    if expected is not None:
        assert body["result"] == expected
    else:
        assert body["result"] in [w["pid"] for w in shared_server.status()["workers"]]


def test_http_endpoint_reports_typed_errors(shared_server: DirtyServer) -> None:
    status, body = _get(shared_server, "/call", app=ECHO, action="boom", args='["bad"]')
    assert status == 500 and body["error"] == "DirtyAppError" and "bad" in body["message"]


def test_client_errors_keep_their_class(shared_server: DirtyServer) -> None:
    with shared_server.client() as client:
        with pytest.raises(DirtyAppError) as info:
            client.execute(ECHO, "boom", "kaput")
        assert info.value.error_type == "ValueError" and "kaput" in info.value.message
        assert "Traceback" in (info.value.traceback or "")
        with pytest.raises(DirtyActionNotFoundError):
            client.execute(ECHO, "_private")
        with pytest.raises(DirtyActionNotFoundError):
            client.execute(ECHO, "missing")
        with pytest.raises(DirtyAppNotFoundError):
            client.execute("dirty_apps:Nope", "x")
        with pytest.raises(DirtySerializationError, match="set"):
            client.execute(ECHO, "unserialisable")
        assert client.execute(ECHO, "echo", [1, 2]) == [1, 2]


def test_init_failure_fails_fast_without_crash_loop(shared_server: DirtyServer) -> None:
    before = [w["pid"] for w in shared_server.status()["workers"]]
    with shared_server.client() as client:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(DirtyAppError) as info:
                client.execute("dirty_apps:BrokenInitApp", "pid")
            assert time.monotonic() - started < 1.0
            assert info.value.error_type == "RuntimeError"
            assert "model file missing" in str(info.value)
    status = shared_server.status()
    assert [w["pid"] for w in status["workers"]] == before
    broken = next(a for a in status["apps"] if a["path"] == "dirty_apps:BrokenInitApp")
    assert broken["error"] and broken["workers"] == []


def test_limited_app_held_by_one_worker(shared_server: DirtyServer) -> None:
    status = shared_server.status()
    limited = next(a for a in status["apps"] if a["path"] == "dirty_apps:LimitedApp")
    assert limited["limit"] == 1 and len(limited["workers"]) == 1
    with shared_server.client() as client:
        pids = {client.execute("dirty_apps:LimitedApp", "pid") for _ in range(5)}
    assert pids == set(limited["workers"])


def test_dirty_threads_give_real_concurrency(shared_server: DirtyServer) -> None:
    # 2 workers x 4 threads: 8 sleeps of 0.3 s overlap instead of taking 2.4 s.
    async def run() -> float:
        client = DirtyClient(shared_server.socket_path(), timeout=10)
        await client.execute_async(ECHO, "echo", 1)
        started = time.monotonic()
        await asyncio.gather(*(client.execute_async(ECHO, "sleep", 0.3) for _ in range(8)))
        elapsed = time.monotonic() - started
        await client.close_async()
        return elapsed

    assert asyncio.run(run()) < 0.9


def test_async_actions_overlap_in_one_worker(shared_server: DirtyServer) -> None:
    async def run() -> tuple[float, set[int]]:
        client = DirtyClient(shared_server.socket_path(), timeout=10)
        started = time.monotonic()
        pids = await asyncio.gather(*(client.execute_async(ECHO, "asleep", 0.3)
                                      for _ in range(6)))
        elapsed = time.monotonic() - started
        await client.close_async()
        return elapsed, set(pids)

    elapsed, _ = asyncio.run(run())
    assert elapsed < 0.9
