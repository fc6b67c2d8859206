"""``@batch`` (issue 14) through real processes: each caller gets its own output, concurrent
calls fill one batch, errors and wrong-length results fail the whole batch, a caller that
gives up is left out without hurting the others, and routing keeps a batch on one worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DirtyServer, dirty_server
from gunicorn.dirty import DirtyClient, batch
from gunicorn.dirty.errors import DirtyAppError, DirtyTimeoutError

BATCH = "dirty_pool_apps:BatchApp"


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirtyServer]:
    with dirty_server("--dirty-app", BATCH, "--dirty-workers", "1",
                      env={"DIRTY_TEST_DIR": str(tmp_path_factory.mktemp("batch"))}) as server:
        yield server


async def _gather(server: DirtyServer, action: str, inputs: list[object],
                  timeout: float = 10) -> list[object]:
    client = DirtyClient(server.socket_path(), timeout=timeout)
    try:
        return await asyncio.gather(*(client.execute_async(BATCH, action, x) for x in inputs),
                                    return_exceptions=True)
    finally:
        await client.close_async()


def _batches(server: DirtyServer) -> list[list[object]]:
    with server.client() as client:
        return client.execute(BATCH, "seen")


@pytest.mark.parametrize("action", ["double", "adouble"], ids=["sync", "async"])
def test_each_caller_gets_its_own_output_from_shared_batches(one_worker: DirtyServer,
                                                             action: str) -> None:
    before = len(_batches(one_worker))
    inputs = list(range(100, 116))
    assert asyncio.run(_gather(one_worker, action, inputs)) == [x * 2 for x in inputs]
    batches = _batches(one_worker)[before:]
    assert sorted(x for b in batches for x in b) == inputs
    assert len(batches) < len(inputs) and all(len(b) <= 8 for b in batches)


def test_a_failing_batch_fails_each_of_its_callers(one_worker: DirtyServer) -> None:
    results = asyncio.run(_gather(one_worker, "boom", list(range(4))))
    assert all(isinstance(r, DirtyAppError) and r.error_type == "ValueError"
               and "bad batch" in str(r) for r in results)


def test_a_wrong_length_result_fails_them_with_a_clear_error(one_worker: DirtyServer) -> None:
    results = asyncio.run(_gather(one_worker, "short", list(range(3))))
    assert all(isinstance(r, DirtyAppError) and "returned 2 results for 3 inputs" in str(r)
               for r in results)


def test_a_batched_call_takes_exactly_one_input(one_worker: DirtyServer) -> None:
    with one_worker.client() as client, pytest.raises(DirtyAppError, match="exactly one"):
        client.execute(BATCH, "double", 1, 2)
    with one_worker.client() as client:
        assert client.execute(BATCH, "double", 21) == 42


def test_a_caller_that_gives_up_is_left_out_of_its_batch(one_worker: DirtyServer) -> None:
    # gather_slowly waits 0.6 s for company: the impatient caller leaves before it runs.
    async def run() -> tuple[object, list[object]]:
        patient = DirtyClient(one_worker.socket_path(), timeout=10)
        hasty = DirtyClient(one_worker.socket_path(), timeout=0.1)
        try:
            gone = asyncio.ensure_future(hasty.execute_async(BATCH, "gather_slowly", -1))
            others = asyncio.gather(*(patient.execute_async(BATCH, "gather_slowly", x)
                                      for x in (1, 2, 3)))
            outcome = await asyncio.gather(gone, return_exceptions=True)
            return outcome[0], await others
        finally:
            await patient.close_async()
            await hasty.close_async()

    before = len(_batches(one_worker))
    gone, others = asyncio.run(run())
    assert isinstance(gone, DirtyTimeoutError)
    assert others == [2, 4, 6]
    assert _batches(one_worker)[before:] == [[1, 2, 3]]


def test_cancelled_caller_does_not_hurt_the_others(one_worker: DirtyServer) -> None:
    async def run() -> list[object]:
        client = DirtyClient(one_worker.socket_path(), timeout=10)
        try:
            calls = [asyncio.ensure_future(client.execute_async(BATCH, "gather_slowly", x))
                     for x in (10, 20, 30)]
            await asyncio.sleep(0.1)  # the three are in the open batch, which waits 0.6 s
            calls[1].cancel()
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await client.close_async()

    before = len(_batches(one_worker))
    first, second, third = asyncio.run(run())
    assert (first, third) == (20, 60) and isinstance(second, asyncio.CancelledError)
    assert _batches(one_worker)[before:] == [[10, 30]]


def test_concurrent_calls_of_a_batched_action_stay_on_one_worker(tmp_path: Path) -> None:
    with dirty_server("--dirty-app", BATCH, "--dirty-workers", "2", workers=2,
                      env={"DIRTY_TEST_DIR": str(tmp_path)}) as server:
        results = asyncio.run(_gather(server, "tagged", list(range(8))))
        assert [x for _, x in results] == list(range(8))
        assert len({pid for pid, _ in results}) == 1  # one batch, not one call per worker
        # A ninth caller finds the batch full and opens one on the other (idle) worker.
        results = asyncio.run(_gather(server, "tagged", list(range(9))))
        assert len({pid for pid, _ in results}) == 2


def test_the_decorator_checks_its_arguments_and_leaves_the_function_usable() -> None:
    for bad in ({"max_size": 0}, {"max_size": 1.5}, {"max_wait": -1}):
        with pytest.raises(ValueError):
            batch(**bad)

    @batch
    def plain(xs: list[int]) -> list[int]:
        return [x + 1 for x in xs]

    assert plain([1, 2]) == [2, 3]
