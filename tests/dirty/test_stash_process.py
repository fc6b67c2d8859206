"""The stash through real processes: HTTP workers, dirty workers, the test process as a client,
concurrent incr, a killed dirty worker, and a full restart with dirty_stash_file.

The tests on the shared ``server`` run twice: with the tables in the dirty arbiter, and in
Redis (``--dirty-stash-url``), where the test process reaches them with a RedisBackend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gunicorn.dirty.errors import (
    DirtySerializationError,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
)
from gunicorn.dirty.stash import ArbiterBackend, AsyncStashClient, RedisBackend, StashClient
from harness import GunicornServer, pid_alive, wait_until

DIRTY = ["--dirty-app", "stash_apps:StashDirtyApp", "--dirty-workers", "1"]


def fetch(srv: GunicornServer, path: str, **query: Any) -> dict[str, Any]:
    qs = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in query.items())
    try:
        with urllib.request.urlopen(f"{srv.url}{path}?{qs}", timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(exc.read().decode()) from exc


def dirty(srv: GunicornServer, action: str, *args: Any) -> Any:
    return fetch(srv, "/dirty", action=action, args=json.dumps(args))["result"]


def start(args: list[str], ready: Any = None) -> GunicornServer:
    srv = GunicornServer(args).start()
    try:
        # The dirty pool boots after the HTTP port opens: wait until a dirty call goes through.
        wait_until(lambda: (ready or _answers)(srv), 15, message="dirty pool")
    except BaseException:
        srv.stop()  # a server that never became ready must not outlive the test
        srv.tmp.cleanup()
        raise
    return srv


def _answers(srv: GunicornServer) -> bool:
    try:
        return isinstance(dirty(srv, "pid"), int)
    except (AssertionError, OSError):
        return False


@pytest.fixture(scope="module", params=["arbiter", "redis"])
def server(request):
    args = []
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        args = ["--dirty-stash-url", redis_server.url, "--dirty-stash-prefix",
                f"process-{os.getpid()}"]
    srv = start(["-w", "2", *DIRTY, *args, "stash_apps:app"])
    srv.stash_url = redis_server.url if args else None
    yield srv
    srv.stop()
    srv.tmp.cleanup()


def backend_of(server: GunicornServer) -> Any:
    """How the test process reaches ``server``'s stash: its arbiter's socket, or Redis."""
    if server.stash_url is None:
        return ArbiterBackend(fetch(server, "/socket")["socket"], 5)
    return RedisBackend(server.stash_url, f"process-{os.getpid()}", 5)


@pytest.fixture
def client(server):
    with StashClient(backend=backend_of(server)) as c:
        yield c


def test_declared_tables_exist_at_start(client):
    assert {"declared", "counters"} <= set(client.tables())


def test_two_http_workers_share_a_table(server):
    fetch(server, "/put", t="shared", k="greeting", v=json.dumps({"hello": [1, 2]}))
    seen: dict[int, Any] = {}

    def both_workers_read() -> bool:
        with ThreadPoolExecutor(2) as pool:
            for reply in pool.map(lambda _: fetch(server, "/get", t="shared", k="greeting",
                                                  sleep=0.1), range(2)):
                seen[reply["pid"]] = reply["value"]
        return len(seen) == 2

    wait_until(both_workers_read, 10, interval=0)
    assert list(seen.values()) == [{"hello": [1, 2]}] * 2


def test_dirty_worker_and_http_worker_see_each_other(server):
    fetch(server, "/put", t="mixed", k="from-http", v='"h"')
    assert dirty(server, "get", "mixed", "from-http") == "h"
    dirty(server, "put", "mixed", "from-dirty", "d")
    assert fetch(server, "/get", t="mixed", k="from-dirty")["value"] == "d"
    assert fetch(server, "/get", t="mixed", k="nope")["value"] == "<missing>"


def test_concurrent_incr_from_threads_and_processes_is_exact(server, client):
    # 8 threads in each of the 2 HTTP workers, all incrementing one key at the same time.
    pids: set[int] = set()
    rounds = 0
    while len(pids) < 2 and rounds < 5:
        rounds += 1
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(lambda _: fetch(server, "/incr", t="counters", k="exact",
                                                    threads=8, n=100), range(2)))
        pids |= {reply["pid"] for reply in replies}
    assert len(pids) == 2, "both HTTP workers took part"
    assert client.get("counters", "exact") == rounds * 2 * 8 * 100


def test_concurrent_async_incr_inside_a_dirty_worker_is_exact(server, client):
    # 50 asyncio tasks on the dirty worker's loop while an HTTP worker increments too.
    with ThreadPoolExecutor(2) as pool:
        in_dirty = pool.submit(dirty, server, "aincr_many", "counters", "mixed", 50)
        pool.submit(fetch, server, "/incr", t="counters", k="mixed", threads=4, n=50).result()
        in_dirty.result()
    assert client.get("counters", "mixed") == 50 + 4 * 50


def test_table_view_from_an_http_worker(server):
    dirty(server, "put", "view", "a", 1)
    dirty(server, "put", "view", "b", 2)
    assert fetch(server, "/table", t="view") == {"items": [["a", 1], ["b", 2]], "len": 2,
                                                 "keys": ["a", "b"]}
    assert fetch(server, "/table", t="never") == {"items": [], "len": 0, "keys": []}


def test_errors_keep_their_class_in_the_test_process(client):
    table = client.table("errs")
    table["k"] = "text"
    with pytest.raises(KeyError):
        table["missing"]
    with pytest.raises(StashKeyNotFoundError):
        del table["missing"]
    with pytest.raises(StashTableNotFoundError):
        client.info("ghost-table")
    with pytest.raises(StashError, match="not an int"):
        client.incr("errs", "k")
    with pytest.raises(DirtySerializationError, match="set"):
        client.put("errs", "k", {1, 2})
    assert client.get("errs", "k") == "text", "the connection is still usable"
    assert client.get("ghost-table", "k", 5) == 5


def test_async_client_shares_one_connection_between_tasks(server):
    async def main() -> tuple[Any, ...]:
        async with AsyncStashClient(backend=backend_of(server)) as aclient:
            await asyncio.gather(*(aclient.incr("async", "n") for _ in range(200)))
            table = aclient.table("async")
            await table.put("k", [1, "x"], ttl=30)
            return (await aclient.get("async", "n"), await table.get("k"),
                    await table.get("nope", "d"), await table.count(),
                    await aclient.tables())

    n, k, missing, count, tables = asyncio.run(main())
    assert (n, k, missing, count) == (200, [1, "x"], "d", 2)
    assert "async" in tables


def test_ttl_and_if_absent_over_the_wire(client):
    assert client.put("locks", "job", "me", ttl=0.3, if_absent=True) is True
    assert client.put("locks", "job", "you", if_absent=True) is False
    wait_until(lambda: client.put("locks", "job", "you", if_absent=True), 5)
    assert client.delete("locks", "job", if_value="me") is False
    assert client.delete("locks", "job", if_value="you") is True


def test_tables_survive_a_killed_dirty_worker(tmp_path):
    srv = start(["-w", "1", *DIRTY, "stash_apps:app"])
    try:
        fetch(srv, "/put", t="durable", k="k", v="42")
        victim = dirty(srv, "pid")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not pid_alive(victim), 5)
        wait_until(lambda: _answers(srv) and dirty(srv, "pid") != victim, 15)
        assert dirty(srv, "get", "durable", "k") == 42
        assert fetch(srv, "/get", t="durable", k="k")["value"] == 42
    finally:
        srv.stop()
        srv.tmp.cleanup()


def _asgi_answers(srv: GunicornServer) -> bool:
    try:
        with urllib.request.urlopen(f"{srv.url}/incr?t=ready&k=n&n=1", timeout=5):
            return True
    except OSError:  # HTTPError (500 until the arbiter listens) is an OSError too
        return False


def _has_setting(name: str) -> bool:
    from gunicorn.dirty import settings

    return any(s.name == name for s in settings.SETTINGS)


@pytest.mark.skipif(not _has_setting("dirty_stash_file"),
                    reason="dirty_stash_file is not wired into the dirty arbiter yet")
def test_tables_survive_a_full_restart_with_dirty_stash_file(tmp_path):
    path = Path(tmp_path) / "stash.bin"
    args = ["-w", "1", *DIRTY, "--dirty-stash-file", str(path), "stash_apps:app"]
    srv = start(args)
    try:
        fetch(srv, "/put", t="kept", k="k", v=json.dumps({"n": 1}))
        dirty(srv, "incr_many", "kept", "hits", 3)
    finally:
        assert srv.stop() == 0
        srv.tmp.cleanup()
    assert path.exists()
    srv = start(args)
    try:
        assert fetch(srv, "/get", t="kept", k="k")["value"] == {"n": 1}
        assert dirty(srv, "get", "kept", "hits") == 3
    finally:
        srv.stop()
        srv.tmp.cleanup()


@pytest.mark.skipif(not _has_setting("dirty_stash_file"),
                    reason="dirty_stash_file is not wired into the dirty arbiter yet")
def test_periodic_save_survives_a_killed_dirty_arbiter(tmp_path):
    path = Path(tmp_path) / "stash.bin"
    srv = start(["-w", "1", *DIRTY, "--dirty-stash-file", str(path),
                 "--dirty-stash-save-interval", "1", "stash_apps:app"])
    try:
        fetch(srv, "/put", t="kept", k="k", v="7")
        wait_until(path.exists, 5)
        arbiter = int(srv.wait_for_log(r"Started sidecar dirty \(pid: (\d+)\)")[0])
        os.kill(arbiter, signal.SIGKILL)
        srv.wait_for_log(r"Started sidecar dirty", count=2)
        wait_until(lambda: _answers(srv), 15)
        assert fetch(srv, "/get", t="kept", k="k")["value"] == 7
    finally:
        srv.stop()
        srv.tmp.cleanup()


def test_async_api_from_an_asgi_worker():
    srv = start(["-w", "1", "-k", "asgi", *DIRTY, "stash_apps:asgi"], ready=_asgi_answers)
    try:
        with urllib.request.urlopen(f"{srv.url}/incr?t=aio&k=n&n=40", timeout=10) as resp:
            assert json.loads(resp.read())["value"] == 40
        with urllib.request.urlopen(f"{srv.url}/table?t=aio", timeout=10) as resp:
            assert json.loads(resp.read()) == {"items": [["a", 1], ["n", 40]], "count": 2,
                                               "missing": "dflt", "has_a": True}
    finally:
        srv.stop()
        srv.tmp.cleanup()
