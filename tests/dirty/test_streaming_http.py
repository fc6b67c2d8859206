"""Dirty streams end to end: an HTTP client, a real gunicorn (gthread or asgi), the dirty arbiter
and a dirty worker running ``stream_dirty:TokenApp``.

Orderings are proved with events the dirty worker leaves in files (a gate the test opens, a
marker written by the generator's ``finally``, counters), never with timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import DirtyServer, dirty_server
from gunicorn.dirty import (
    DirtyAppError,
    DirtyClient,
    DirtySerializationError,
    DirtyTimeoutError,
)
from gunicorn.dirty.codec import INITIAL_STREAM_WINDOW
from harness import wait_until

APP = "stream_dirty:TokenApp"  # tests/apps/stream_dirty.py
POOL = ["--dirty-app", APP, "--dirty-workers", "1", "--dirty-threads", "4"]


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[DirtyServer]:
    with dirty_server(*POOL, app="stream_http:wsgi_app") as server:
        yield server


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[DirtyServer]:
    # Grace 1 s (default 3): how long a vanished client's app task runs before it is cancelled.
    with dirty_server("-k", "asgi", "--asgi-disconnect-grace-period", "1", *POOL,
                      app="stream_http:asgi_app") as server:
        yield server


@pytest.fixture(params=["wsgi", "asgi"])
def front(request: pytest.FixtureRequest) -> tuple[str, DirtyServer]:
    """(kind, server): the gthread WSGI or the asgi Starlette front end."""
    return request.param, request.getfixturevalue(f"{request.param}_server")


def _url(kind: str, server: DirtyServer, action: str, *args: object) -> str:
    path = "/stream" if kind == "wsgi" else "/sse"
    return str(httpx.URL(f"{server.url}{path}",
                         params={"action": action, "args": json.dumps(list(args))}))


def _items(kind: str, lines: Iterator[str]) -> Iterator[tuple[str, object]]:
    """(event, data) per item: WSGI JSON lines or SSE events ("message", "error", "end")."""
    event = "message"
    for line in lines:
        if kind == "wsgi":
            data = json.loads(line)
            yield ("error" if isinstance(data, dict) and "error" in data else "message"), data
        elif line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: "):])
            event = "message"


def _in_flight(server: DirtyServer) -> int:
    return sum(w["in_flight"] for w in server.status()["workers"])


# -- the first chunk arrives while the producer is still running --------------------------------

@pytest.mark.parametrize("action", ["gated", "agated"], ids=["generator", "async-generator"])
def test_first_chunk_arrives_before_the_producer_finished(front: tuple[str, DirtyServer],
                                                          tmp_path: Path, action: str) -> None:
    kind, server = front
    with httpx.stream("GET", _url(kind, server, action, str(tmp_path), 4), timeout=10) as resp:
        assert resp.headers["transfer-encoding"] == "chunked"
        items = _items(kind, resp.iter_lines())
        assert next(items) == ("message", "first")
        # The producer is parked at its gate: it has neither finished nor been closed.
        assert not (tmp_path / "finished").exists() and not (tmp_path / "closed").exists()
        (tmp_path / "go").touch()
        rest = list(items)
    tokens = [data for event, data in rest if event == "message"]
    assert tokens == ["token-1", "token-2", "token-3"]
    assert (tmp_path / "finished").exists()
    if kind == "asgi":
        assert rest[-1] == ("end", None)


# -- the caller stops early: the generator's finally runs in the dirty worker -------------------

@pytest.mark.parametrize("action", ["endless", "aendless"], ids=["generator", "async-generator"])
def test_http_client_leaving_closes_the_generator(front: tuple[str, DirtyServer],
                                                  tmp_path: Path, action: str) -> None:
    kind, server = front
    marker = tmp_path / "closed"
    with httpx.stream("GET", _url(kind, server, action, str(marker)), timeout=10) as resp:
        items = _items(kind, resp.iter_lines())
        assert [next(items)[1] for _ in range(3)] == [0, 1, 2]
    # Leaving the block closed the connection mid-stream.
    wait_until(marker.exists, 10, message="the generator's finally")
    wait_until(lambda: _in_flight(server) == 0, 10, message="the worker's slot freed")
    with server.client() as client:
        assert client.execute(APP, "echo", "next call") == "next call"


def test_client_gone_during_a_gap_cancels_the_asgi_task(asgi_server: DirtyServer,
                                                        tmp_path: Path) -> None:
    # No chunk is due (the producer waits at a gate nobody opens), so no write can fail: only
    # the asgi worker noticing the disconnect and cancelling the app's task stops the stream.
    with httpx.stream("GET", _url("asgi", asgi_server, "agated", str(tmp_path), 3),
                      timeout=10) as resp:
        assert next(_items("asgi", resp.iter_lines())) == ("message", "first")
    wait_until((tmp_path / "closed").exists, 10, message="the generator's finally")
    assert not (tmp_path / "finished").exists()
    wait_until(lambda: _in_flight(asgi_server) == 0, 10, message="the worker's slot freed")


@pytest.mark.parametrize("action", ["endless", "aendless"], ids=["generator", "async-generator"])
def test_cancelled_task_closes_the_generator(wsgi_server: DirtyServer, tmp_path: Path,
                                             action: str) -> None:
    marker = tmp_path / "closed"
    socket_path = wsgi_server.socket_path()

    async def run() -> object:
        client = DirtyClient(socket_path, timeout=10)
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in client.stream_async(APP, action, str(marker)):
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # The same client keeps working on the same connection.
        result = await client.execute_async(APP, "echo", "after cancel")
        await client.close_async()
        return result

    assert asyncio.run(run()) == "after cancel"
    wait_until(marker.exists, 10, message="the generator's finally")


# -- an error mid-stream: the chunks already produced, then the error ---------------------------

@pytest.mark.parametrize("action", ["fail_after", "afail_after"],
                         ids=["generator", "async-generator"])
def test_error_mid_stream_over_http(front: tuple[str, DirtyServer], action: str) -> None:
    kind, server = front
    with httpx.stream("GET", _url(kind, server, action, 3), timeout=10) as resp:
        items = list(_items(kind, resp.iter_lines()))
    assert items[:3] == [("message", 0), ("message", 1), ("message", 2)]
    event, error = items[3]
    assert event == "error" and len(items) == 4
    assert error["error"] == "DirtyAppError" and error["error_type"] == "ValueError"
    assert "the model crashed" in error["message"]


def test_error_mid_stream_async_client(wsgi_server: DirtyServer) -> None:
    async def run() -> list[int]:
        got: list[int] = []
        async with DirtyClient(wsgi_server.socket_path(), timeout=10) as client:
            with pytest.raises(DirtyAppError, match="the model crashed") as info:
                async for item in client.stream_async(APP, "afail_after", 3):
                    got.append(item)
        assert info.value.error_type == "ValueError"
        return got

    assert asyncio.run(run()) == [0, 1, 2]


def test_unserialisable_item_mid_stream(wsgi_server: DirtyServer) -> None:
    got: list[int] = []
    with wsgi_server.client() as client:
        with pytest.raises(DirtySerializationError, match="set"):
            got.extend(client.stream(APP, "bad_item"))
        assert client.execute(APP, "echo", 2) == 2
    assert got == [1]


# -- timeouts -----------------------------------------------------------------------------------

@pytest.mark.timeout(40)
def test_six_second_gap_with_a_30s_timeout(wsgi_server: DirtyServer,
                                           asgi_server: DirtyServer) -> None:
    # The one slow test (~6 s): gunicorn 27 fails any gap over 5 s whatever the timeout. Three
    # readers wait through the same gap at once: the sync client, the asyncio client, and an
    # HTTP client of an SSE endpoint.
    results: dict[str, list[object]] = {}

    def sync_reader() -> None:
        with DirtyClient(wsgi_server.socket_path(), timeout=30) as client:
            results["sync"] = list(client.stream(APP, "gap", 6))

    def sse_reader() -> None:
        url = _url("asgi", asgi_server, "agap", 6)
        with httpx.stream("GET", url, timeout=30) as resp:
            results["sse"] = [d for e, d in _items("asgi", resp.iter_lines()) if e == "message"]

    async def async_reader() -> list[object]:
        async with DirtyClient(wsgi_server.socket_path(), timeout=30) as client:
            return [item async for item in client.stream_async(APP, "agap", 6)]

    threads = [threading.Thread(target=sync_reader), threading.Thread(target=sse_reader)]
    for thread in threads:
        thread.start()
    results["async"] = asyncio.run(async_reader())
    for thread in threads:
        thread.join(30)
    assert results == {name: ["before", "after"] for name in ("sync", "sse", "async")}


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_total_deadline_ends_a_steady_stream(wsgi_server: DirtyServer, tmp_path: Path,
                                             flavour: str) -> None:
    # Chunks every 5 ms never hit the per-chunk timeout; the total deadline still ends it.
    marker = tmp_path / "closed"
    got: list[int] = []
    with wsgi_server.client() as client:
        if flavour == "sync":
            stream = client.call_stream(APP, "endless", [str(marker)], timeout=5,
                                        total_timeout=0.5)
            with pytest.raises(DirtyTimeoutError, match="total timeout") as info:
                got.extend(stream)
        else:
            async def run() -> None:
                stream = client.call_stream_async(APP, "aendless", [str(marker)], timeout=5,
                                                  total_timeout=0.5)
                async for item in stream:
                    got.append(item)

            with pytest.raises(DirtyTimeoutError, match="total timeout") as info:
                asyncio.run(run())
    assert info.value.timeout == 0.5
    assert got == list(range(len(got))) and len(got) > 10
    wait_until(marker.exists, 10, message="the generator's finally")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_per_chunk_timeout_bounds_a_gap(wsgi_server: DirtyServer, flavour: str) -> None:
    with wsgi_server.client() as client:
        if flavour == "sync":
            stream = client.call_stream(APP, "gap", [3], timeout=0.3)
            assert next(stream) == "before"
            with pytest.raises(DirtyTimeoutError, match="no chunk"):
                next(stream)
        else:
            async def run() -> None:
                stream = client.call_stream_async(APP, "agap", [3], timeout=0.3)
                assert await stream.__anext__() == "before"
                await stream.__anext__()

            with pytest.raises(DirtyTimeoutError, match="no chunk"):
                asyncio.run(run())
        assert client.execute(APP, "echo", 1) == 1


# -- streams and ordinary calls from one process ------------------------------------------------

def test_streams_and_calls_interleave_from_one_process(wsgi_server: DirtyServer,
                                                       asgi_server: DirtyServer) -> None:
    # Inside one HTTP worker: a call between every two chunks of a stream, on the same client.
    for kind, server in (("wsgi", wsgi_server), ("asgi", asgi_server)):
        with httpx.stream("GET", f"{server.url}/interleave?n=40", timeout=10) as resp:
            items = [d for e, d in _items(kind, resp.iter_lines()) if e == "message"]
        assert items == [[i, f"echo-{i}"] for i in range(40)], kind
    # And one client shared by threads: two streams and a burst of calls at the same time.
    results: dict[str, object] = {}
    with wsgi_server.client() as client:
        def stream(name: str, action: str) -> None:
            results[name] = list(client.stream(APP, action, 300))

        def calls() -> None:
            results["calls"] = [client.execute(APP, "echo", i) for i in range(100)]

        threads = [threading.Thread(target=stream, args=("gen", "count")),
                   threading.Thread(target=stream, args=("agen", "acount")),
                   threading.Thread(target=calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert results == {"gen": list(range(300)), "agen": list(range(300)),
                       "calls": list(range(100))}


# -- flow control -------------------------------------------------------------------------------

def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _publish(path: str, value: int) -> None:
    # Atomic, so the producer never reads a half-written (empty) count.
    tmp = f"{path}.tmp"
    Path(tmp).write_text(str(value))
    os.replace(tmp, path)


def test_slow_reader_is_bounded_by_the_credit_window(wsgi_server: DirtyServer,
                                                     tmp_path: Path) -> None:
    # 1000 chunks of 32 KiB (32 MiB) through the arbiter: the producer never runs more than the
    # credit window ahead of the reader, and the arbiter does not buffer the stream.
    n, size = 1000, 32 * 1024
    produced, consumed, lead = (str(tmp_path / name) for name in ("produced", "consumed", "lead"))
    arbiter = wsgi_server.status()["arbiter_pid"]
    with wsgi_server.client() as client:
        stream = client.stream(APP, "counted", n, size, produced, consumed, lead)
        rss_before = _rss(arbiter)
        assert len(next(stream)) == size
        _publish(consumed, 1)
        # The reader pauses: the producer fills the window and stops there.
        wait_until(lambda: Path(produced).read_text() == str(INITIAL_STREAM_WINDOW), 10,
                   message="the producer filling the credit window")
        assert _rss(arbiter) - rss_before < 16 * 1024 * 1024
        for count, chunk in enumerate(stream, start=2):
            assert len(chunk) == size
            _publish(consumed, count)
    assert count == n
    # The reader records a chunk right after taking it, and its credit may reach the producer
    # first: hence one chunk of slack over the window.
    # ... and it did run ahead up to the window while the reader paused (not in lock step).
    assert INITIAL_STREAM_WINDOW - 1 <= int(Path(lead).read_text()) <= INITIAL_STREAM_WINDOW + 1


def test_a_reader_pausing_longer_than_dirty_timeout_is_not_a_stuck_worker() -> None:
    # A producer out of credit is waiting for the reader, not stuck: the stream must survive a
    # pause longer than dirty_timeout, and the worker must not be replaced.
    with dirty_server(*POOL, "--dirty-timeout", "1", app="stream_http:wsgi_app") as server:
        pid = server.status()["workers"][0]["pid"]
        with server.client(timeout=10) as client:
            stream = client.stream(APP, "count", 1000)
            assert next(stream) == 0
            wait_until(lambda: server.status()["workers"][0]["in_flight"] == 1, 5)
            time.sleep(1.6)  # the slow reader itself, not a synchronisation
            assert list(stream) == list(range(1, 1000))
        assert [w["pid"] for w in server.status()["workers"]] == [pid]
