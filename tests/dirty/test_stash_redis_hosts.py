"""Two "hosts" share one stash in Redis: two separate gunicorn masters, each with its own HTTP
workers, dirty arbiter and dirty pool, started with the same ``--dirty-stash-url``.

One pair talks to Redis over loopback TCP, the other over its Unix socket. What one server
writes the other reads (from HTTP workers and dirty workers alike); counters and
``put(if_absent=)`` stay atomic across them; expiry is seen by both; ``gunictl stash`` on
either shows the same tables.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from apps.ctl_support import socket_of
from gunicorn.ctl import ControlClient
from gunicorn.dirty.errors import StashError
from gunicorn.dirty.stash import StashClient
from harness import GunicornServer, wait_until
from test_stash_process import dirty, fetch, start

DIRTY = ["--dirty-app", "stash_apps:StashDirtyApp", "--dirty-workers", "1"]


def host(tmp: Any, name: str, url: str, prefix: str) -> GunicornServer:
    sock = tmp / name / "gunicorn.ctl"
    return start(["-w", "2", "-k", "gthread", "--threads", "4", "--control-socket", str(sock),
                  *DIRTY, "--dirty-stash-url", url, "--dirty-stash-prefix", prefix,
                  "stash_apps:app"])


@pytest.fixture(scope="module", params=["tcp", "unix"])
def hosts(request: pytest.FixtureRequest, redis_server: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GunicornServer, ...]]:
    url = redis_server.url if request.param == "tcp" else redis_server.unix_url
    prefix = f"hosts-{request.param}"
    tmp = tmp_path_factory.mktemp(f"hosts-{request.param}")
    servers: list[GunicornServer] = []
    try:
        for name in ("a", "b"):
            servers.append(host(tmp, name, url, prefix))
        yield tuple(servers)
    finally:
        for srv in servers:
            srv.stop()
            srv.tmp.cleanup()


def test_a_put_on_one_host_is_read_on_the_other(hosts):
    a, b = hosts
    assert a.pid != b.pid and dirty(a, "pid") != dirty(b, "pid")
    fetch(a, "/put", t="shared", k="from-a", v=json.dumps({"n": [1, 2]}))
    assert fetch(b, "/get", t="shared", k="from-a")["value"] == {"n": [1, 2]}
    assert dirty(b, "get", "shared", "from-a") == {"n": [1, 2]}
    dirty(b, "put", "shared", "from-b-dirty", "d")
    assert fetch(a, "/get", t="shared", k="from-b-dirty")["value"] == "d"
    assert fetch(a, "/get", t="shared", k="nope")["value"] == "<missing>"


def test_declared_tables_exist_in_redis_and_the_arbiter_holds_none(hosts):
    a, _b = hosts
    assert fetch(a, "/table", t="declared") == {"items": [], "len": 0, "keys": []}
    with _control(a) as ctl:
        names = {t["name"] for t in ctl.send("stash tables", [])["tables"]}
    assert {"declared", "counters"} <= names
    # A client aimed at the dirty arbiter is told where the stash is, not given an empty one.
    with StashClient(fetch(a, "/socket")["socket"], timeout=5) as at_arbiter, \
            pytest.raises(StashError, match="stash is in Redis at (redis|unix)://"):
        at_arbiter.tables()


def test_incr_is_exact_across_two_hosts(hosts):
    # 2 servers x 4 threads x 500 increments of one key, all at once.
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda srv: fetch(srv, "/incr", t="counters", k="exact",
                                                  threads=4, n=500), hosts))
    assert len(replies) == 2
    assert all(fetch(srv, "/get", t="counters", k="exact")["value"] == 4000 for srv in hosts)


def test_if_absent_race_between_hosts_has_one_winner(hosts):
    for round_ in range(3):
        key = f"job-{round_}"
        with ThreadPoolExecutor(2) as pool:
            claims = [pool.submit(fetch, srv, "/claim", t="locks", k=key, threads=8,
                                  token=token) for token, srv in zip("ab", hosts, strict=True)]
            replies = [claim.result() for claim in claims]
        won = [token for reply in replies for token in reply["won"]]
        assert len(won) == 1, won
        assert fetch(hosts[1], "/get", t="locks", k=key)["value"] == won[0]


def test_expiry_is_seen_by_both_hosts(hosts):
    a, b = hosts
    fetch(a, "/put", t="ttl", k="long", v='"kept"', ttl=600)
    fetch(a, "/put", t="ttl", k="short", v='"gone"', ttl=0.3)
    assert fetch(b, "/get", t="ttl", k="long")["value"] == "kept"
    for srv in hosts:
        wait_until(lambda srv=srv: fetch(srv, "/get", t="ttl", k="short")["value"]
                   == "<missing>", 10, message="the short key to expire")
    assert fetch(b, "/table", t="ttl")["keys"] == ["long"]


@contextlib.contextmanager
def _control(srv: GunicornServer) -> Iterator[ControlClient]:
    with ControlClient(socket_of(srv), timeout=10) as client:
        yield client


def test_gunictl_stash_commands_on_either_host_show_the_same_tables(hosts):
    a, b = hosts
    fetch(a, "/put", t="sessions", k="user:1", v=json.dumps({"name": "Alice"}))
    dirty(b, "put", "sessions", "user:2", {"name": "Bob"})
    seen = []
    for srv in hosts:
        with _control(srv) as ctl:
            tables = {t["name"]: t["keys"] for t in ctl.send("stash tables", [])["tables"]}
            keys = ctl.send("stash keys", ["sessions", "user:*"])["keys"]
            got = ctl.send("stash get", ["sessions", "user:2"])["value"]
            seen.append((tables["sessions"], keys, got))
    assert seen[0] == seen[1] == (2, ["user:1", "user:2"], {"name": "Bob"})
