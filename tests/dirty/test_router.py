"""The arbiter's routing tables: sans-IO, time passed in."""

from __future__ import annotations

import pytest
from gunicorn.dirty.errors import DirtyBusyError, DirtyNoWorkersAvailableError
from gunicorn.dirty.router import PREFETCH, Call, Router

# w1 (capacity 2) and w2 (capacity 1), each with PREFETCH pipelined calls on top.
ROOM = 3 + 2 * PREFETCH


def _router(timeout: float = 0.0, max_queue: int = 0) -> Router:
    router = Router(timeout, max_queue)
    router.add_worker("w1", ["A", "B"], capacity=2)
    router.add_worker("w2", ["A"], capacity=1)
    router.set_accepting("w1", True, 0.0)
    router.set_accepting("w2", True, 0.0)
    return router


def _call(app: str = "A", cid: int = 1) -> Call:
    return Call(object(), cid, app, b"")


def test_least_busy_worker_first() -> None:
    router = _router()
    first = router.submit(_call(cid=1), 0.0)
    second = router.submit(_call(cid=2), 0.0)
    assert first is not None and second is not None
    assert {first.call.worker.key, second.call.worker.key} == {"w1", "w2"}


def test_app_only_goes_to_its_holders() -> None:
    router = _router()
    dispatch = router.submit(_call("B"), 0.0)
    assert dispatch is not None and dispatch.call.worker.key == "w1"
    with pytest.raises(DirtyNoWorkersAvailableError):
        router.submit(_call("C"), 0.0)


def test_queue_fifo_and_freed_slot_takes_oldest() -> None:
    router = _router()
    running = [router.submit(_call(cid=i), 0.0) for i in range(ROOM)]
    assert all(running)
    waiting = [_call(cid=10), _call(cid=11)]
    assert [router.submit(c, 0.0) for c in waiting] == [None, None]
    done = running[0].call
    call, dispatches = router.finish(done.worker.key, done.worker_id, 1.0)
    assert call is done
    assert [d.call.client_id for d in dispatches] == [10]


def test_backpressure_bound() -> None:
    router = _router(max_queue=1)
    for i in range(ROOM):
        router.submit(_call(cid=i), 0.0)
    assert router.submit(_call(cid=ROOM), 0.0) is None
    with pytest.raises(DirtyBusyError):
        router.submit(_call(cid=4), 0.0)


def test_late_reply_for_cancelled_call_is_not_delivered() -> None:
    router = _router()
    dispatch = router.submit(_call(), 0.0)
    call = dispatch.call
    key, wid = call.worker.key, call.worker_id
    held, _ = router.cancel(call, 0.0)
    assert held
    assert router.finish(key, wid, 1.0) == (None, [])


def test_ids_are_unique_per_worker() -> None:
    router = _router()
    calls = [router.submit(_call(cid=i), 0.0).call for i in range(3)]
    on_w1 = [c.worker_id for c in calls if c.worker.key == "w1"]
    assert len(on_w1) == 2 and len(set(on_w1)) == 2 and 0 not in on_w1


def test_idle_slots_before_pipelining() -> None:
    router = _router()
    keys = [router.submit(_call(cid=i), 0.0).call.worker.key for i in range(3)]
    assert sorted(keys) == ["w1", "w1", "w2"]


def test_pipelined_call_deadline_starts_after_the_running_one() -> None:
    router = Router(timeout=5.0)
    router.add_worker("w", ["A"], capacity=1)
    router.set_accepting("w", True, 0.0)
    first = router.submit(_call(cid=1), 0.0).call
    second = router.submit(_call(cid=2), 1.0).call
    assert first.deadline == 5.0 and second.deadline == 10.0


def test_expiry_and_stream_progress() -> None:
    router = _router(timeout=5.0)
    call = router.submit(_call(), 0.0).call
    assert router.expired(4.0) == []
    router.progress(call, 4.0)
    assert router.expired(6.0) == []
    assert router.expired(9.0) == [call]


def test_dead_worker_returns_its_calls_and_queue_survives() -> None:
    router = _router()
    calls = [router.submit(_call(cid=i), 0.0).call for i in range(ROOM)]
    queued = _call(cid=99)
    router.submit(queued, 0.0)
    lost = router.remove_worker("w1")
    assert {c.client_id for c in lost} == {c.client_id for c in calls if c.worker is None}
    router.add_worker("w3", ["A", "B"], capacity=1)
    dispatches = router.set_accepting("w3", True, 1.0)
    assert [d.call for d in dispatches] == [queued]
