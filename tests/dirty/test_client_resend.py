"""The sync client's fast path: the resend rule across arbiter restarts, the shared receive
buffer, and many threads on one connection. Real Unix sockets, a fake arbiter (see
test_client_fake_arbiter) or a real gunicorn with a dirty pool."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading

import pytest
from conftest import ECHO, dirty_server
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.errors import DirtyConnectionError
from gunicorn.dirty.stash import StashClient
from harness import wait_until
from test_client_fake_arbiter import FakeArbiter

APP = "t:App"


@pytest.fixture
def arbiter():
    # tmp_path can exceed the 108-byte AF_UNIX path limit; a short private dir cannot.
    directory = tempfile.mkdtemp(prefix="gd-")
    fake = FakeArbiter(os.path.join(directory, "arbiter.sock"))
    yield fake
    fake.close()
    shutil.rmtree(directory, ignore_errors=True)


def restart(arbiter: FakeArbiter) -> None:
    arbiter.stop()
    os.unlink(arbiter.path)
    arbiter.start()


def echoed(arbiter: FakeArbiter) -> list[object]:
    return [r["args"][0] for r in arbiter.requests if r["action"] == "echo"]


def test_request_sent_into_a_dead_connection_is_resent_once(arbiter):
    with DirtyClient(arbiter.path, timeout=5) as client:
        assert client.execute(APP, "echo", 1) == 1
        restart(arbiter)
        assert client.execute(APP, "echo", 2) == 2
    assert echoed(arbiter) == [1, 2]
    assert arbiter.connections == 2


def test_stream_started_after_an_idle_restart_needs_no_retry(arbiter):
    with DirtyClient(arbiter.path, timeout=5) as client:
        assert list(client.stream(APP, "stream", 2)) == [0, 1]
        restart(arbiter)
        assert list(client.stream(APP, "stream", 3)) == [0, 1, 2]
    assert arbiter.connections == 2


def test_request_that_reached_the_arbiter_is_not_resent(arbiter):
    with DirtyClient(arbiter.path, timeout=5) as client:
        with pytest.raises(DirtyConnectionError):
            client.execute(APP, "drop")
        assert [r["action"] for r in arbiter.requests] == ["drop"]
        assert client.execute(APP, "echo", 3) == 3
    assert arbiter.connections == 2


def test_arbiter_gone_for_good_fails_after_one_resend(arbiter):
    with DirtyClient(arbiter.path, timeout=5) as client:
        assert client.execute(APP, "echo", 1) == 1
        arbiter.stop()
        os.unlink(arbiter.path)
        with pytest.raises(DirtyConnectionError, match="cannot connect"):
            client.execute(APP, "echo", 2)
    assert echoed(arbiter) == [1]


def test_threads_sharing_a_client_ride_through_an_idle_restart(arbiter):
    client = DirtyClient(arbiter.path, timeout=5)
    barrier = threading.Barrier(8)
    results: dict[int, list[object]] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            got = [client.execute(APP, "echo", (i, 0))]
            barrier.wait(5)  # all idle: the main thread restarts the arbiter now
            barrier.wait(5)
            got.append(client.execute(APP, "echo", (i, 1)))
            results[i] = got
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(7)]
    for t in threads:
        t.start()
    barrier.wait(5)
    restart(arbiter)
    barrier.wait(5)
    for t in threads:
        t.join(5)
    client.close()
    assert not errors
    assert results == {i: [[i, 0], [i, 1]] for i in range(7)}
    assert len(echoed(arbiter)) == 14, "no request ran twice"
    assert arbiter.connections == 2


def test_large_replies_interleave_through_the_shared_receive_buffer(arbiter):
    # Replies bigger than the 256 KiB receive buffer arrive in pieces, several calls at once.
    client = DirtyClient(arbiter.path, timeout=5)
    results: dict[int, bool] = {}

    def run(i: int) -> None:
        for size in (10, 300_000, 700_000 + i, 1):
            value = bytes([i]) * size
            results[i] = client.execute(APP, "echo", value) == value and results.get(i, True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    client.close()
    assert results == {i: True for i in range(6)}
    assert arbiter.connections == 1


def test_idle_stash_client_survives_a_killed_arbiter_and_runs_incr_once():
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        stash = StashClient(server.socket_path(), timeout=5)
        assert stash.incr("hits", "k") == 1
        old = server.arbiter_pid()
        os.kill(old, signal.SIGKILL)

        def new_arbiter() -> bool:
            try:
                return server.arbiter_pid() != old
            except DirtyConnectionError:
                return False

        assert wait_until(new_arbiter, 15)
        # The stash died with the arbiter; the idle client's first call after the restart
        # goes out on a fresh connection, exactly once.
        assert stash.incr("hits", "k") == 1
        assert stash.get("hits", "k") == 1
        stash.close()
