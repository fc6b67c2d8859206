import os
import shutil
import tempfile
import threading
import time

import pytest
from gunicorn.dirty import DirtyClient, close_dirty_client, get_dirty_client
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyConnectionError,
    DirtyError,
    DirtyProtocolError,
    DirtySerializationError,
    DirtyTimeoutError,
    DirtyWorkerError,
    StashKeyNotFoundError,
)
from harness import wait_until
from test_client_fake_arbiter import FakeArbiter

APP = "t:App"


@pytest.fixture
def sock_dir():
    # tmp_path can exceed the 108-byte AF_UNIX path limit; a short private dir cannot.
    path = tempfile.mkdtemp(prefix="gd-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def arbiter(sock_dir):
    fake = FakeArbiter(os.path.join(sock_dir, "arbiter.sock"))
    yield fake
    fake.close()


@pytest.fixture
def client(arbiter):
    with DirtyClient(arbiter.path, timeout=5.0) as c:
        yield c


def test_execute_round_trip(client, arbiter):
    assert client.execute(APP, "echo", {"a": [1, 2.5, None, b"\x00"]}) == {
        "a": [1, 2.5, None, b"\x00"]
    }
    assert arbiter.requests[-1] == {
        "app": APP, "action": "echo", "args": [{"a": [1, 2.5, None, b"\x00"]}], "kwargs": {},
        "timeout": 5.0,
    }


def test_kwargs_pass_through_even_named_timeout(client, arbiter):
    client.execute(APP, "echo", 1, timeout=99, args="x")
    assert arbiter.requests[-1]["kwargs"] == {"timeout": 99, "args": "x"}
    assert arbiter.requests[-1]["timeout"] == 5.0


def test_tuple_arrives_as_list(client):
    assert client.execute(APP, "echo", (1, (2, 3))) == [1, [2, 3]]


def test_app_error_keeps_class_and_fields(client):
    with pytest.raises(DirtyAppError) as info:
        client.execute(APP, "fail", "bad input")
    err = info.value
    assert (err.message, err.app_path, err.action, err.error_type) == (
        "bad input", APP, "fail", "ValueError"
    )
    assert err.traceback == "Traceback..."
    assert client.execute(APP, "echo", 1) == 1  # connection still fine


def test_worker_error(client):
    with pytest.raises(DirtyWorkerError) as info:
        client.execute(APP, "worker_died")
    assert info.value.worker_id == 4242


def test_stash_error_class_survives(client):
    with pytest.raises(KeyError):
        client.request(MessageType.STASH, {"op": "get", "table": "t", "key": "k"})
    with pytest.raises(StashKeyNotFoundError) as info:
        client.request(MessageType.STASH, {"op": "get", "table": "t", "key": "k"})
    assert (info.value.table, info.value.key) == ("t", "k")


def test_status_request(client):
    assert client.request(MessageType.STATUS) == {"status": "ok"}


def test_timeout_cancels_and_late_reply_is_dropped(client, arbiter):
    started = time.monotonic()
    with pytest.raises(DirtyTimeoutError) as info:
        client.call(APP, "late", args=[0.3, "stale"], timeout=0.1)
    assert 0.09 < time.monotonic() - started < 1.0
    assert info.value.timeout == 0.1
    arbiter.wait_cancelled()
    # The late "stale" reply arrives during this call and must not be taken for its answer.
    assert client.call(APP, "sleep", args=[0.6, "fresh"]) == "fresh"
    assert client._conn._table.dropped == 1
    assert arbiter.connections == 1


def test_per_call_timeout_does_not_change_client(client):
    with pytest.raises(DirtyTimeoutError):
        client.call(APP, "sleep", [1.0, None], timeout=0.05)
    assert client.timeout == 5.0


def test_client_timeout_applies_to_execute(arbiter):
    with DirtyClient(arbiter.path, timeout=0.1) as c, pytest.raises(DirtyTimeoutError):
        c.execute(APP, "sleep", 2, None)
    arbiter.wait_cancelled()


def test_zero_timeout_waits_as_long_as_needed(arbiter):
    with DirtyClient(arbiter.path, timeout=0) as c:
        assert c.execute(APP, "sleep", 0.2, "ok") == "ok"
        assert arbiter.requests[-1]["timeout"] is None


def test_unserialisable_argument_sends_nothing(client, arbiter):
    with pytest.raises(DirtySerializationError) as info:
        client.execute(APP, "echo", {1, 2})
    assert info.value.type_name == "set"
    assert client.execute(APP, "echo", "still ok") == "still ok"
    assert [r["args"] for r in arbiter.requests] == [["still ok"]]


def test_connection_loss_mid_call(client, arbiter):
    with pytest.raises(DirtyConnectionError) as info:
        client.execute(APP, "drop")
    assert info.value.socket_path == arbiter.path
    assert client.execute(APP, "echo", "reconnected") == "reconnected"
    assert arbiter.connections == 2


def test_garbage_from_server_is_protocol_error_then_reconnect(client, arbiter):
    with pytest.raises(DirtyProtocolError):
        client.execute(APP, "garbage")
    assert client.execute(APP, "echo", 2) == 2


def test_reconnect_after_server_restart(client, arbiter):
    assert client.execute(APP, "echo", 1) == 1
    arbiter.stop()
    os.unlink(arbiter.path)
    with pytest.raises(DirtyConnectionError, match="GUNICORN_DIRTY_SOCKET"):
        client.execute(APP, "echo", 2)
    arbiter.start()
    assert client.execute(APP, "echo", 3) == 3


def test_restart_while_idle_is_transparent(client, arbiter):
    assert client.execute(APP, "echo", 1) == 1
    arbiter.stop()
    os.unlink(arbiter.path)
    arbiter.start()
    assert client.execute(APP, "echo", 2) == 2  # no failed call in between


def test_connect_failure_names_path(sock_dir):
    path = os.path.join(sock_dir, "nothing.sock")
    with pytest.raises(DirtyConnectionError) as info:
        DirtyClient(path).execute(APP, "echo", 1)
    assert info.value.socket_path == path and path in str(info.value)


def test_concurrent_threads_share_one_connection(client, arbiter):
    results: dict[int, object] = {}

    def worker(i: int) -> None:
        results[i] = client.execute(APP, "sleep", 0.05 * (i % 3), i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == {i: i for i in range(12)}
    assert arbiter.connections == 1


def test_short_timeout_thread_does_not_wait_for_a_slow_one(client, arbiter):
    slow = threading.Thread(target=client.execute, args=(APP, "sleep", 0.8, "slow"))
    slow.start()
    # The slow call is on the wire (so its thread is the connection's reader) once the arbiter
    # has its request.
    wait_until(lambda: any(r.get("args") == [0.8, "slow"] for r in arbiter.requests),
               5, message="the slow call at the arbiter")
    started = time.monotonic()
    with pytest.raises(DirtyTimeoutError):
        client.call(APP, "sleep", [1.0, None], timeout=0.1)
    assert time.monotonic() - started < 0.5
    assert client.execute(APP, "echo", "fast") == "fast"
    slow.join(5)


def test_get_dirty_client_is_per_thread(arbiter, monkeypatch):
    monkeypatch.setenv("GUNICORN_DIRTY_SOCKET", arbiter.path)
    try:
        first = get_dirty_client()
        assert get_dirty_client() is first
        other: list[DirtyClient] = []
        t = threading.Thread(target=lambda: other.append(get_dirty_client()))
        t.start()
        t.join()
        assert other[0] is not first
        assert first.execute(APP, "echo", 1) == 1
    finally:
        close_dirty_client()
    assert get_dirty_client() is not first
    close_dirty_client()


def test_missing_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GUNICORN_DIRTY_SOCKET", raising=False)
    close_dirty_client()
    with pytest.raises(DirtyError, match="GUNICORN_DIRTY_SOCKET"):
        get_dirty_client()


def test_cached_client_not_reused_after_fork(arbiter, monkeypatch):
    monkeypatch.setenv("GUNICORN_DIRTY_SOCKET", arbiter.path)
    parent = get_dirty_client()
    assert parent.execute(APP, "echo", "parent") == "parent"
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must get a fresh client and its own connection
        status = 1
        try:
            child = get_dirty_client()
            ok = child is not parent and child.execute(APP, "echo", "child") == "child"
            # A client object carried over by hand reconnects instead of sharing the socket.
            ok = ok and parent.execute(APP, "echo", "carried") == "carried"
            status = 0 if ok else 2
        finally:
            os.write(write_fd, bytes([status]))
            os._exit(status)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 1) == b"\x00"
        os.waitpid(pid, 0)
        assert parent.execute(APP, "echo", "parent again") == "parent again"
        assert arbiter.connections == 3
    finally:
        os.close(read_fd)
        close_dirty_client()
