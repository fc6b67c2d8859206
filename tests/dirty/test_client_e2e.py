"""The clients against a real gunicorn with a dirty arbiter and dirty workers."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import ECHO, DirtyServer, dirty_server
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyConnectionError,
    DirtyError,
    DirtyTimeoutError,
    DirtyWorkerError,
)
from harness import wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[DirtyServer]:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "2", "--dirty-threads", "4",
                      workers=2) as srv:
        yield srv


def test_execute_and_app_error(server):
    with server.client() as client:
        assert client.execute(ECHO, "echo", {"k": [1, b"2", None]}) == {"k": [1, b"2", None]}
        with pytest.raises(DirtyAppError) as info:
            client.execute(ECHO, "boom", "bad")
        assert info.value.error_type == "ValueError" and info.value.message == "bad"


def test_timeout_then_late_reply_is_never_delivered(server):
    with server.client() as client:
        with pytest.raises(DirtyTimeoutError):
            client.call(ECHO, "sleep", [0.4], timeout=0.1)
        # The sleep's reply (a pid) would arrive during this call; ids keep it out.
        assert client.call(ECHO, "sleep", [0.6]) != "x"
        assert client.execute(ECHO, "echo", "x") == "x"


def test_unserialisable_result_fails_clearly(server):
    with server.client() as client:
        with pytest.raises(DirtyError, match="set"):
            client.execute(ECHO, "unserialisable")
        assert client.execute(ECHO, "echo", 1) == 1


def test_concurrent_async_calls_share_one_connection(server):
    async def main() -> tuple[list[int], float]:
        client = server.client()
        started = time.monotonic()
        pids = await asyncio.gather(*(client.execute_async(ECHO, "asleep", 0.3) for _ in range(8)))
        elapsed = time.monotonic() - started
        await client.close_async()
        return pids, elapsed

    pids, elapsed = asyncio.run(main())
    assert len(pids) == 8 and elapsed < 2.0


def test_stream_and_calls_interleave(server):
    with server.client() as client:
        out = [(i, client.execute(ECHO, "echo", i)) for i in client.stream(ECHO, "count", 50)]
        assert out == [(i, i) for i in range(50)]


def test_worker_killed_mid_call(server):
    with server.client() as client:
        result: list[BaseException] = []

        def call() -> None:
            try:
                client.execute(ECHO, "sleep", 5)
            except BaseException as exc:  # noqa: BLE001 -- handed to the test thread
                result.append(exc)

        busy = {w["pid"] for w in server.status()["workers"]}
        t = threading.Thread(target=call)
        t.start()
        wait_until(lambda: any(w["in_flight"] for w in server.status()["workers"]), 5)
        for pid in busy:
            os.kill(pid, signal.SIGKILL)
        t.join(5)
        assert result and isinstance(result[0], DirtyWorkerError)
        server.booted(2)
        assert client.execute(ECHO, "echo", "alive") == "alive"


def test_reconnect_after_dirty_arbiter_restart(server):
    path = server.socket_path()
    with server.client() as client:
        assert client.execute(ECHO, "echo", 1) == 1
        old = server.arbiter_pid()
        os.kill(old, signal.SIGKILL)

        def works() -> bool:
            try:
                return client.execute(ECHO, "echo", 2) == 2
            except (DirtyConnectionError, DirtyError):
                return False

        assert wait_until(works, 15)
        assert server.arbiter_pid() != old
        assert server.socket_path() == path
    server.booted(2)
