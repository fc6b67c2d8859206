"""The stash in Redis when Redis fails: unreachable at start, killed and restarted, paused.

The server always starts; stash calls fail fast with StashUnavailableError naming the server
(never its password), or StashTimeoutError after the call's timeout; they recover by
themselves once Redis is back, and with an append-only file nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from apps.ctl_support import socket_of
from gunicorn.ctl import ControlClient, ControlCommandError
from gunicorn.dirty.errors import (
    DirtyConnectionError,
    DirtyTimeoutError,
    StashTimeoutError,
    StashUnavailableError,
)
from gunicorn.dirty.stash import AsyncStashClient, RedisBackend, StashClient
from harness import GunicornServer, free_port, wait_until
from redis_harness import RedisServer
from test_stash_process import fetch

PASSWORD = "pw-never-shown"


def failure(srv: GunicornServer, path: str, **query: Any) -> dict[str, Any]:
    """The JSON error body of a request the app answers with 500."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{srv.url}{path}?{qs}", timeout=10)
    assert info.value.code == 500
    return json.loads(info.value.read())


def stash_server(tmp_path: Any, url: str) -> GunicornServer:
    sock = tmp_path / "run" / "gunicorn.ctl"
    return GunicornServer(["-w", "1", "-k", "gthread", "--threads", "2", "--control-socket",
                           str(sock), "--dirty-app", "stash_apps:StashDirtyApp",
                           "--dirty-workers", "1", "--dirty-stash-url", url,
                           "stash_apps:app"]).start()


def test_redis_down_at_start_then_up(tmp_path):
    port = free_port()
    redis = RedisServer(tmp_path / "redis", port=port, password=PASSWORD)
    srv = stash_server(tmp_path, redis.url)
    try:
        error = failure(srv, "/get", t="t", k="k")
        assert error["error"] == "StashUnavailableError"
        assert f"redis://127.0.0.1:{port}/0" in error["msg"] and PASSWORD not in error["msg"]
        with ControlClient(socket_of(srv), timeout=10) as ctl, \
                pytest.raises(ControlCommandError, match=f"127.0.0.1:{port}") as info:
            ctl.send("stash tables", [])
        assert PASSWORD not in str(info.value)

        redis.start()
        wait_until(lambda: _answers(srv), 15, message="stash calls to recover")
        assert fetch(srv, "/put", t="t", k="k", v='"after"')["stored"] is True
        assert fetch(srv, "/get", t="t", k="k")["value"] == "after"
    finally:
        srv.stop()
        redis.stop()
    assert PASSWORD not in srv.log()
    assert "Cannot create the declared stash tables" in srv.log()
    srv.tmp.cleanup()


def _answers(srv: GunicornServer) -> bool:
    try:
        fetch(srv, "/get", t="t", k="k")
    except AssertionError:  # a 500: still unreachable
        return False
    return True


def test_redis_killed_and_restarted_keeps_what_it_persisted(tmp_path):
    redis = RedisServer(tmp_path / "redis", aof=True).start()
    srv = stash_server(tmp_path, redis.url)
    mine = StashClient(backend=RedisBackend(redis.url, "gunicorn", timeout=5))
    try:
        fetch(srv, "/put", t="kept", k="k", v=json.dumps({"n": 1}))
        fetch(srv, "/incr", t="kept", k="hits", threads=2, n=50)
        assert mine.get("kept", "hits") == 100, "the test process sees the server's stash"

        redis.kill()
        for _ in range(3):  # every call fails, at once, with the typed error
            assert failure(srv, "/get", t="kept", k="k")["error"] == "StashUnavailableError"
        with pytest.raises(StashUnavailableError) as info:
            mine.incr("kept", "hits")
        assert isinstance(info.value, DirtyConnectionError)
        with pytest.raises(StashUnavailableError):
            asyncio.run(AsyncStashClient(backend=mine.backend).get("kept", "k"))

        redis.start()
        # The first call after Redis is back succeeds: dead pooled connections are replaced.
        assert mine.get("kept", "hits") == 100
        wait_until(lambda: _answers(srv), 15, message="the server's stash to recover")
        assert fetch(srv, "/get", t="kept", k="k")["value"] == {"n": 1}
        fetch(srv, "/incr", t="kept", k="hits", threads=2, n=5)
        assert mine.get("kept", "hits") == 110
    finally:
        mine.close()
        srv.stop()
        srv.tmp.cleanup()
        redis.stop()


def test_a_redis_that_does_not_answer_times_out(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        client = StashClient(backend=RedisBackend(redis.url, "paused", timeout=0.5))
        client.put("t", "k", 1)
        redis.pause()
        try:
            with pytest.raises(StashTimeoutError) as info:
                client.get("t", "k")
            assert isinstance(info.value, DirtyTimeoutError) and info.value.timeout == 0.5
            with pytest.raises(StashTimeoutError):
                StashClient(backend=RedisBackend(redis.url, "fresh", timeout=0.5)).tables()
        finally:
            redis.resume()
        assert client.get("t", "k") == 1
