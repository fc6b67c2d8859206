import asyncio
import os
import shutil
import tempfile
import time

import pytest
from gunicorn.dirty import (
    DirtyClient,
    close_dirty_client_async,
    get_dirty_client,
    get_dirty_client_async,
)
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyConnectionError,
    DirtySerializationError,
    DirtyTimeoutError,
    StashKeyNotFoundError,
)
from test_client_fake_arbiter import FakeArbiter

APP = "t:App"


@pytest.fixture
def arbiter():
    sock_dir = tempfile.mkdtemp(prefix="gd-")
    fake = FakeArbiter(os.path.join(sock_dir, "arbiter.sock"))
    yield fake
    fake.close()
    shutil.rmtree(sock_dir, ignore_errors=True)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_execute_async_round_trip(arbiter):
    async def main():
        async with DirtyClient(arbiter.path, timeout=5) as client:
            return await client.execute_async(APP, "echo", [1, "two", b"3"])

    assert run(main()) == [1, "two", b"3"]


def test_many_tasks_share_one_connection_concurrently(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.execute_async(APP, "sleep", 0.3, i) for i in range(20))
        )
        elapsed = time.monotonic() - started
        await client.close_async()
        return results, elapsed

    results, elapsed = run(main())
    assert results == list(range(20))
    assert elapsed < 1.5  # concurrent, not 20 x 0.3 s
    assert arbiter.connections == 1


def test_replies_out_of_order_reach_their_callers(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        slow = asyncio.ensure_future(client.execute_async(APP, "sleep", 0.3, "slow"))
        fast = await client.execute_async(APP, "echo", "fast")
        return fast, await slow

    assert run(main()) == ("fast", "slow")


def test_timeout_cancels_and_late_reply_dropped(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        with pytest.raises(DirtyTimeoutError):
            await client.call_async(APP, "late", [0.2, "stale"], timeout=0.05)
        result = await client.call_async(APP, "sleep", [0.4, "fresh"])
        return result, client._aconn._table.dropped

    assert run(main()) == ("fresh", 1)
    arbiter.wait_cancelled()


def test_cancelled_task_sends_cancel(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        task = asyncio.ensure_future(client.execute_async(APP, "sleep", 5, None))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await client.execute_async(APP, "echo", "after") == "after"

    run(main())
    arbiter.wait_cancelled()


def test_errors_keep_class(arbiter):
    async def main():
        client = DirtyClient(arbiter.path)
        with pytest.raises(DirtyAppError, match="nope"):
            await client.execute_async(APP, "fail", "nope")
        with pytest.raises(StashKeyNotFoundError):
            await client.request_async(MessageType.STASH, {"op": "get", "table": "t", "key": 1})
        assert await client.request_async(MessageType.STATUS) == {"status": "ok"}

    run(main())


def test_unserialisable_argument(arbiter):
    async def main():
        client = DirtyClient(arbiter.path)
        with pytest.raises(DirtySerializationError, match="frozenset"):
            await client.execute_async(APP, "echo", frozenset())
        return await client.execute_async(APP, "echo", 1)

    assert run(main()) == 1


def test_connection_loss_fails_all_pending_then_reconnects(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        pending = [
            asyncio.ensure_future(client.execute_async(APP, "sleep", 5, i)) for i in range(3)
        ]
        await asyncio.sleep(0.1)
        with pytest.raises(DirtyConnectionError):
            await client.execute_async(APP, "drop")
        for fut in pending:
            with pytest.raises(DirtyConnectionError):
                await fut
        return await client.execute_async(APP, "echo", "again")

    assert run(main()) == "again"
    assert arbiter.connections == 2


def test_reconnect_after_server_restart(arbiter):
    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        assert await client.execute_async(APP, "echo", 1) == 1
        arbiter.stop()
        os.unlink(arbiter.path)
        arbiter.start()
        # The loop notices the closed connection as soon as it runs; the next call reconnects.
        for _ in range(200):
            if client._aconn.closed:
                break
            await asyncio.sleep(0.01)
        return await client.execute_async(APP, "echo", 2)

    assert run(main()) == 2


def test_connect_failure(tmp_path):
    async def main():
        client = DirtyClient(str(tmp_path / "none.sock"))
        with pytest.raises(DirtyConnectionError, match="none.sock"):
            await client.execute_async(APP, "echo", 1)

    run(main())


def test_get_dirty_client_async_is_per_loop_not_per_task(arbiter, monkeypatch):
    monkeypatch.setenv("GUNICORN_DIRTY_SOCKET", arbiter.path)

    async def main():
        async def grab():
            return await get_dirty_client_async()

        clients = await asyncio.gather(*(asyncio.ensure_future(grab()) for _ in range(5)))
        assert all(c is clients[0] for c in clients)
        assert clients[0] is not get_dirty_client()
        await asyncio.gather(*(c.execute_async(APP, "echo", 1) for c in clients))
        await close_dirty_client_async()
        assert await get_dirty_client_async() is not clients[0]
        await close_dirty_client_async()
        return clients[0]

    first = run(main())
    second = run(main())
    assert first is not second  # a new loop gets its own client
    assert arbiter.connections == 2


def test_one_client_used_from_two_loops(arbiter):
    client = DirtyClient(arbiter.path, timeout=5)
    assert run(client.execute_async(APP, "echo", 1)) == 1
    assert run(client.execute_async(APP, "echo", 2)) == 2


def test_under_uvloop(arbiter):
    uvloop = pytest.importorskip("uvloop")

    async def main():
        client = DirtyClient(arbiter.path, timeout=5)
        results = await asyncio.gather(*(client.execute_async(APP, "echo", i) for i in range(10)))
        items = [i async for i in client.stream_async(APP, "stream", 100)]
        with pytest.raises(DirtyTimeoutError):
            await client.call_async(APP, "sleep", [1, None], timeout=0.05)
        return results, items

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results, items = runner.run(main())
    assert results == list(range(10)) and items == list(range(100))
