"""The stash API on both backends, from the test process: the same calls give the same results.

``client`` is a StashClient on the in-arbiter store of a real dirty arbiter, or on Redis (a
real redis-server); ``aclient`` the asyncio twin. Then what only Redis has: its key layout
(nothing outside the prefix is touched, prefixes keep stashes apart), expiry on Redis's own
clock, the URL forms (TCP, Unix socket, database number, password) and fork safety.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import dirty_server
from gunicorn.dirty.errors import (
    DirtySerializationError,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    StashUnavailableError,
)
from gunicorn.dirty.stash import AsyncStashClient, RedisBackend, StashClient
from harness import wait_until


@pytest.fixture(scope="module")
def arbiter_socket() -> Iterator[str]:
    with dirty_server("--dirty-app", "stash_apps:StashDirtyApp", "--dirty-workers", "1",
                      app="stash_apps:app") as server:
        yield server.socket_path()


@pytest.fixture(params=["arbiter", "redis"])
def backend(request: pytest.FixtureRequest, stash_prefix: str) -> Any:
    if request.param == "arbiter":
        from gunicorn.dirty.stash import ArbiterBackend

        return ArbiterBackend(request.getfixturevalue("arbiter_socket"), 10)
    return RedisBackend(request.getfixturevalue("redis_server").url, stash_prefix, 10)


@pytest.fixture
def client(backend: Any, stash_prefix: str) -> Iterator[StashClient]:
    with StashClient(backend=backend) as c:
        yield c
        for name in c.tables():
            if name.startswith(stash_prefix):
                c.delete_table(name)


@pytest.fixture
def t(stash_prefix: str) -> str:
    """A table name of this test's own (the arbiter's store is shared by the module)."""
    return f"{stash_prefix}-table"


# -- both backends ------------------------------------------------------------------------

VALUES = [None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, float("inf"), "",
          "héllo", b"", b"\x00\xff", [1, [2, [3]]], {"a": {"b": [None]}}, {1: "int key"},
          "12", "-3", [], {}]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_values_round_trip_with_their_types(client, t, value):
    client.put(t, "k", value)
    got = client.get(t, "k")
    assert got == value and type(got) is type(value)
    assert client.items(t) == [("k", value)]


def test_tuples_come_back_as_lists(client, t):
    client.put(t, "k", (1, (2, 3)))
    assert client.get(t, "k") == [1, [2, 3]]


def test_str_int_and_bytes_keys_are_distinct(client, t):
    for key, value in (("7", "str"), (7, "int"), (b"7", "bytes")):
        client.put(t, key, value)
    assert (client.get(t, "7"), client.get(t, 7), client.get(t, b"7")) == ("str", "int",
                                                                           "bytes")
    assert sorted(client.keys(t), key=repr) == sorted(["7", 7, b"7"], key=repr)
    assert client.count(t) == 3


def test_unsendable_values_and_keys_fail_before_anything_is_sent(client, t):
    with pytest.raises(DirtySerializationError, match="set"):
        client.put(t, "k", {1, 2})
    with pytest.raises(DirtySerializationError):
        client.put(t, {1}, 1)
    with pytest.raises(StashError, match="float"):
        client.put(t, 1.5, 1)
    assert not client.exists(t)


GLOB_KEYS = ["a[b", "a*b", "a?b", "a\\b", "a]b", "ab", "axb", "[x]", "\\", "*", "é[1]", 12,
             b"a[b", b"\xe9x"]
PATTERNS = ["a[[]b", "a[*]b", "a[?]b", "a\\b", "a\\*", "a*b", "a?b", "[[]*", "*]*", "\\",
            "[!a]*", "a[!x]b", "[*]", "é*", "é[[]1]", "1?", "*x", "?x", "a[]]b", "a[b", "",
            "*"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_glob_patterns_match_as_fnmatchcase(client, t, pattern):
    for key in GLOB_KEYS:
        client.put(t, key, 1)
    def text(key: Any) -> str:
        return key.decode("latin-1") if isinstance(key, bytes) else str(key)
    expected = sorted((k for k in GLOB_KEYS if fnmatch.fnmatchcase(text(k), pattern)), key=repr)
    assert sorted(client.keys(t, pattern), key=repr) == expected
    assert sorted(client.items(t, pattern), key=repr) == sorted(
        ((k, 1) for k in expected), key=repr)
    assert client.values(t, pattern) == [1] * len(expected)


def test_missing_tables_and_keys(client, t):
    assert client.get(t, "k", "dflt") == "dflt"
    assert client.exists(t) is False and client.delete_table(t) is False
    for call in (client.keys, client.count, client.clear, client.info):
        with pytest.raises(StashTableNotFoundError):
            call(t)
    assert client.ensure(t) is True and client.ensure(t) is False
    with pytest.raises(StashKeyNotFoundError):
        client.table(t)["nope"]
    assert t in client.tables() and client.info()[t] == {"keys": 0, "expiring": 0}


def test_table_view_is_a_mutable_mapping(client, t):
    view = client.table(t)
    view["a"] = 1
    view.update({"b": 2, "c": 3})
    assert len(view) == 3 and "a" in view and sorted(view) == ["a", "b", "c"]
    assert view.setdefault("a", 9) == 1 and view.setdefault("d", 4) == 4
    assert view.pop("d") == 4 and view.incr("a", 10) == 11
    del view["b"]
    with pytest.raises(KeyError):
        del view["b"]
    assert sorted(view.items()) == [("a", 11), ("c", 3)]
    view.clear()
    assert len(view) == 0 and client.exists(t)


def test_locks_and_counters(client, t):
    assert client.put(t, "lock", "me", ttl=60, if_absent=True) is True
    assert client.put(t, "lock", "you", ttl=60, if_absent=True) is False
    assert client.delete(t, "lock", if_value="you") is False
    assert client.delete(t, "lock", if_value="me") is True
    client.put(t, "n", 1.0)
    assert client.delete(t, "n", if_value=1) is True, "compared as values: 1 == 1.0"
    client.put(t, "d", {"x": 1, "y": 2})
    assert client.delete(t, "d", if_value={"y": 2, "x": 1}) is True, "dict order is no matter"
    assert client.incr(t, "c", -5) == -5 and client.incr(t, "c", 2**62) == 2**62 - 5
    with pytest.raises(StashError, match="overflow"):
        client.incr(t, "c", 2**63 - 1)
    assert client.get(t, "c") == 2**62 - 5
    client.put(t, "big", 2**64 - 1)
    with pytest.raises(StashError, match="overflow"):
        client.incr(t, "big")
    client.put(t, "s", "12")
    with pytest.raises(StashError, match="not an int"):
        client.incr(t, "s")


def test_ttl_on_the_real_clock(client, t):
    client.put(t, "short", 1, ttl=0.2)
    client.put(t, "long", 2, ttl=600)
    client.incr(t, "window", ttl=0.2)
    client.put(t, "reset", 3, ttl=0.2)
    client.put(t, "reset", 4)  # no ttl: permanent again
    wait_until(lambda: not client.exists(t, "short") and not client.exists(t, "window"), 10,
               message="the short keys to expire")
    assert sorted(client.keys(t)) == ["long", "reset"]
    assert client.info(t) == {"keys": 2, "expiring": 1}
    assert client.put(t, "short", 5, if_absent=True) is True
    assert client.incr(t, "window") == 1


def test_async_client_on_either_backend(backend, t):
    async def main() -> tuple[Any, ...]:
        async with AsyncStashClient(backend=backend) as aclient:
            await asyncio.gather(*(aclient.incr(t, "n") for _ in range(100)))
            view = aclient.table(t)
            await view.put("k", [1, "x"], ttl=60)
            result = (await aclient.get(t, "n"), await view.get("k"),
                      await view.get("nope", "d"), await view.count(),
                      sorted(await view.keys()), await aclient.exists(t, "k"))
            await aclient.delete_table(t)
            return result

    assert asyncio.run(main()) == (100, [1, "x"], "d", 2, ["k", "n"], True)


# -- Redis only ---------------------------------------------------------------------------

@pytest.fixture
def raw(redis_server: Any) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_key_layout_keeps_other_users_and_prefixes_apart(redis_server, raw, stash_prefix):
    raw.set("unrelated", "theirs")
    raw.hset("{other}:h:t", "sk", "theirs")
    mine = StashClient(backend=RedisBackend(redis_server.url, stash_prefix))
    neighbour = StashClient(backend=RedisBackend(redis_server.url, stash_prefix + "x"))
    mine.put("t", "k", "mine", ttl=60)
    neighbour.put("t", "k", "neighbour's")
    assert mine.get("t", "k") == "mine" and neighbour.get("t", "k") == "neighbour's"
    keys = {k.decode() for k in raw.keys(f"{{{stash_prefix}}}:*")}
    assert keys == {f"{{{stash_prefix}}}:tables", f"{{{stash_prefix}}}:h:t",
                    f"{{{stash_prefix}}}:x:t"}
    assert raw.hgetall(f"{{{stash_prefix}}}:h:t") == {b"sk": b"\xa4mine"}
    assert mine.delete_table("t") is True
    assert raw.exists(f"{{{stash_prefix}}}:h:t", f"{{{stash_prefix}}}:x:t") == 0
    assert raw.get("unrelated") == b"theirs" and raw.hget("{other}:h:t", "sk") == b"theirs"
    assert neighbour.get("t", "k") == "neighbour's"


def test_counters_are_plain_integers_in_redis(redis_server, raw, stash_prefix):
    client = StashClient(backend=RedisBackend(redis_server.url, stash_prefix))
    client.incr("c", "hits", 41)
    raw.hincrby(f"{{{stash_prefix}}}:h:c", "shits", 1)  # what any Redis tool may do
    assert client.get("c", "hits") == 42


def test_unix_socket_and_database_number(redis_server, raw, stash_prefix):
    url = f"unix://{redis_server.socket}?db=3"
    client = StashClient(backend=RedisBackend(url, stash_prefix))
    client.put("t", "k", "in db 3")
    assert raw.exists(f"{{{stash_prefix}}}:h:t") == 0
    import redis

    db3 = redis.Redis.from_url(redis_server.url.replace("/0", "/3"))
    assert db3.hget(f"{{{stash_prefix}}}:h:t", "sk") == b"\xa7in db 3"
    db3.close()
    over_tcp = StashClient(backend=RedisBackend(redis_server.url[:-1] + "3", stash_prefix))
    assert over_tcp.get("t", "k") == "in db 3"


def test_password_protected_redis(tmp_path, stash_prefix):
    from redis_harness import RedisServer

    with RedisServer(tmp_path / "auth", password="s3cr3t-pw") as server:
        good = StashClient(backend=RedisBackend(server.url, stash_prefix, 5))
        assert good.put("t", "k", 1) is True
        bad_url = server.url.replace("s3cr3t-pw", "wrong-pw")
        with pytest.raises(StashUnavailableError) as info:
            StashClient(backend=RedisBackend(bad_url, stash_prefix, 5)).get("t", "k")
        assert "wrong-pw" not in str(info.value) and "s3cr3t" not in str(info.value)
        assert info.value.address == f"redis://127.0.0.1:{server.port}/0"
        assert "wrong-pw" not in repr(RedisBackend(bad_url))


def test_tls_with_rediss(tmp_path, stash_prefix):
    from redis_harness import RedisServer, self_signed_certificate

    tmp_path.joinpath("tls").mkdir()
    with RedisServer(tmp_path / "tls", tls=self_signed_certificate(tmp_path / "tls"),
                     password="tls-secret") as server:
        client = StashClient(backend=RedisBackend(server.url, stash_prefix, 5))
        assert client.incr("t", "n") == 1 and client.get("t", "n") == 1
        plain = server.url.replace("rediss://", "redis://").split("?")[0]
        with pytest.raises(StashUnavailableError) as info:
            StashClient(backend=RedisBackend(plain, stash_prefix, 5)).get("t", "n")
        assert "tls-secret" not in str(info.value)


def test_a_backend_used_before_fork_works_in_the_child_and_the_parent(redis_server,
                                                                     stash_prefix):
    backend = RedisBackend(redis_server.url, stash_prefix)
    client = StashClient(backend=backend)
    client.put("t", "parent", 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: same backend object, new connections
        try:
            ok = client.get("t", "parent") == 1 and client.incr("t", "n") == 1
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 2) == b"ok"
    os.close(read)
    os.waitpid(pid, 0)
    # The child closed its copies of the parent's sockets: the parent's connection still works.
    assert client.get("t", "n") == 1 and client.incr("t", "n") == 2
