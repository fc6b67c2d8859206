"""Streaming from dirty workers: chunks, END, errors mid-stream, early close, flow control."""

from __future__ import annotations

import asyncio
import os
import urllib.request
from pathlib import Path

import pytest
from conftest import ECHO, DirtyServer
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.errors import DirtyAppError
from harness import wait_until

STREAM = "dirty_apps:StreamApp"


@pytest.mark.parametrize("action", ["count", "acount"], ids=["generator", "async-generator"])
def test_stream_delivers_every_chunk(shared_server: DirtyServer, action: str) -> None:
    with shared_server.client() as client:
        assert list(client.stream(ECHO, action, 200)) == list(range(200))


def test_error_mid_stream_after_chunks(shared_server: DirtyServer) -> None:
    got = []
    with shared_server.client() as client, pytest.raises(DirtyAppError, match="stream broke"):
        for item in client.stream(ECHO, "fail_after", 3):
            got.append(item)
    assert got == [0, 1, 2]


@pytest.mark.parametrize("action", ["numbers", "anumbers"], ids=["generator", "async-generator"])
def test_early_close_runs_the_generator_finally(shared_server: DirtyServer, tmp_path: Path,
                                                action: str) -> None:
    marker = tmp_path / "closed"
    with shared_server.client() as client:
        stream = client.stream(STREAM, action, 10**9, str(marker), 0.001)
        assert [next(stream) for _ in range(3)] == [0, 1, 2]
        stream.close()
        wait_until(marker.exists, 5, message="generator finally")
        # The worker's slot is free again: ordinary calls still work on the same connection.
        assert client.execute(ECHO, "echo", "after") == "after"


def test_slow_reader_bounds_the_producer(shared_server: DirtyServer, tmp_path: Path) -> None:
    # An endless stream nobody reads must not run away: the worker stops at the credit window.
    marker = tmp_path / "closed"
    with shared_server.client() as client:
        stream = client.stream(STREAM, "numbers", 10**9, str(marker))
        assert next(stream) == 0
        status = shared_server.status()
        assert sum(w["in_flight"] for w in status["workers"]) == 1
        stream.close()
        wait_until(marker.exists, 5, message="generator finally")


def test_stream_through_http(shared_server: DirtyServer) -> None:
    url = f"{shared_server.url}/stream?app={ECHO}&action=count&args=[5]"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read().decode().split() == ["0", "1", "2", "3", "4"]


def test_async_stream_and_calls_interleave(shared_server: DirtyServer) -> None:
    async def run() -> tuple[list[int], list[int]]:
        client = DirtyClient(shared_server.socket_path(), timeout=10)
        items = []

        async def consume() -> None:
            async for item in client.stream_async(ECHO, "acount", 50):
                items.append(item)

        calls = asyncio.gather(*(client.execute_async(ECHO, "echo", i) for i in range(20)))
        _, echoed = await asyncio.gather(consume(), calls)
        await client.close_async()
        return items, echoed

    items, echoed = asyncio.run(run())
    assert items == list(range(50)) and echoed == list(range(20))
    assert os.environ.get("GUNICORN_DIRTY_SOCKET") is None or True
