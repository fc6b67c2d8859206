import asyncio
import gc
import os
import shutil
import tempfile
import threading
import time

import pytest
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.codec import INITIAL_STREAM_WINDOW
from gunicorn.dirty.errors import DirtyAppError, DirtyConnectionError, DirtyTimeoutError
from harness import wait_until
from test_client_fake_arbiter import FakeArbiter

APP = "t:App"


@pytest.fixture
def arbiter():
    sock_dir = tempfile.mkdtemp(prefix="gd-")
    fake = FakeArbiter(os.path.join(sock_dir, "arbiter.sock"))
    yield fake
    fake.close()
    shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def client(arbiter):
    with DirtyClient(arbiter.path, timeout=5) as c:
        yield c


def test_stream_yields_every_chunk(client, arbiter):
    assert list(client.stream(APP, "stream", 500)) == list(range(500))
    # Credit came back in batches as chunks were consumed.
    assert sum(n for _, n in arbiter.credits) >= 500 - INITIAL_STREAM_WINDOW
    assert arbiter.max_unacked <= INITIAL_STREAM_WINDOW


def test_slow_reader_bounds_chunks_in_flight(client, arbiter):
    stream = client.stream(APP, "stream", 1000)
    assert next(stream) == 0
    assert wait_until(lambda: arbiter.max_unacked == INITIAL_STREAM_WINDOW, 5)
    time.sleep(0.2)  # give the producer a chance to overrun, which it must not
    assert arbiter.max_unacked == INITIAL_STREAM_WINDOW
    assert not arbiter.finished_streams
    stream.close()
    arbiter.wait_cancelled()


def test_error_mid_stream_after_chunks(client):
    got = []
    with pytest.raises(DirtyAppError, match="mid-stream"):
        for item in client.stream(APP, "stream_fail", 3):
            got.append(item)
    assert got == [0, 1, 2]


def test_break_sends_cancel(client, arbiter):
    for item in client.stream(APP, "stream", 100, 0.01):
        if item == 2:
            break
    gc.collect()
    arbiter.wait_cancelled()
    assert wait_until(lambda: arbiter.finished_streams, 5)
    assert client.execute(APP, "echo", "next") == "next"


def test_context_manager_closes(client, arbiter):
    with client.stream(APP, "stream", 100, 0.01) as stream:
        assert next(stream) == 0
    arbiter.wait_cancelled()
    assert list(stream) == []


def test_per_chunk_timeout_allows_long_streams(arbiter):
    # 6 chunks 0.1 s apart with a 0.3 s chunk timeout: 0.6 s overall, never a chunk gap > 0.3.
    with DirtyClient(arbiter.path, timeout=0.3) as client:
        assert list(client.stream(APP, "stream", 6, 0.1)) == list(range(6))


def test_chunk_gap_over_timeout(client, arbiter):
    stream = client.call_stream(APP, "stream", [3, 0.5], timeout=0.1)
    assert next(stream) == 0
    with pytest.raises(DirtyTimeoutError, match="no chunk"):
        next(stream)
    arbiter.wait_cancelled()


def test_total_timeout(client, arbiter):
    stream = client.call_stream(APP, "stream", [100, 0.05], timeout=1, total_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DirtyTimeoutError, match="total timeout"):
        for _ in stream:
            pass
    assert time.monotonic() - started < 1.0
    assert arbiter.requests[-1]["timeout"] == 0.3


def test_non_stream_action_yields_its_value(client):
    assert list(client.stream(APP, "value", "only")) == ["only"]


def test_execute_on_streaming_action_collects_chunks(client):
    assert client.execute(APP, "stream", 150) == list(range(150))


def test_stream_and_calls_interleave_on_one_connection(client, arbiter):
    out = []
    for item in client.stream(APP, "stream", 5, 0.01):
        out.append((item, client.execute(APP, "echo", item * 10)))
    assert out == [(i, i * 10) for i in range(5)]
    assert arbiter.connections == 1


def test_two_streams_from_two_threads(client):
    results: dict[int, list[int]] = {}

    def consume(i: int) -> None:
        results[i] = list(client.stream(APP, "stream", 200))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == {0: list(range(200)), 1: list(range(200))}


def test_connection_lost_mid_stream(client, arbiter):
    stream = client.stream(APP, "stream", 100, 0.05)
    assert next(stream) == 0
    arbiter.stop()
    with pytest.raises(DirtyConnectionError):
        list(stream)


def test_async_stream(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        items = [item async for item in client.stream_async(APP, "stream", 300)]
        other = await client.execute_async(APP, "echo", "x")
        return items, other

    items, other = asyncio.run(main())
    assert items == list(range(300)) and other == "x"
    assert arbiter.max_unacked <= INITIAL_STREAM_WINDOW


def test_async_streams_interleave_with_calls(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)

        async def consume():
            return [i async for i in client.stream_async(APP, "stream", 20, 0.01)]

        calls = [client.execute_async(APP, "sleep", 0.05, i) for i in range(5)]
        return await asyncio.gather(consume(), consume(), *calls)

    results = asyncio.run(main())
    assert results == [list(range(20)), list(range(20)), 0, 1, 2, 3, 4]
    assert arbiter.connections == 1


def test_async_early_break_and_cancelled_task(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        async with client.stream_async(APP, "stream", 100, 0.01) as stream:
            async for item in stream:
                if item == 1:
                    break

        async def consume():
            async for _ in client.stream_async(APP, "stream", 100, 0.05):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    arbiter.wait_cancelled(2)


def test_async_stream_error_and_timeouts(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        got = []
        with pytest.raises(DirtyAppError):
            async for item in client.stream_async(APP, "stream_fail", 2):
                got.append(item)
        assert got == [0, 1]
        with pytest.raises(DirtyTimeoutError, match="no chunk"):
            async for _ in client.call_stream_async(APP, "stream", [3, 0.5], timeout=0.1):
                pass
        with pytest.raises(DirtyTimeoutError, match="total"):
            stream = client.call_stream_async(APP, "stream", [50, 0.05], total_timeout=0.2)
            async for _ in stream:
                pass

    asyncio.run(main())
