"""The router's fairness rules, sans-IO: rotation among equal holders, least busy under load,
loading workers skipped, batched calls filling one batch, unstarted calls requeued."""

from __future__ import annotations

from collections import Counter

from gunicorn.dirty.router import PREFETCH, Call, Router


def _router(*keys: str, capacity: int = 1, apps: tuple[str, ...] = ("A",)) -> Router:
    router = Router()
    for key in keys:
        router.add_worker(key, apps, capacity)
        router.set_accepting(key, True, 0.0)
    return router


def _call(cid: int, app: str = "A", action: str = "x") -> Call:
    return Call(object(), cid, app, b"", action)


def _run(router: Router, call: Call) -> str:
    dispatch = router.submit(call, 0.0)
    assert dispatch is not None
    key = call.worker.key
    router.finish(key, call.worker_id, 0.0)
    return key


def test_sequential_calls_rotate_over_idle_holders() -> None:
    router = _router("w1", "w2", "w3", "w4")
    landed = Counter(_run(router, _call(i)) for i in range(40))
    assert landed == {"w1": 10, "w2": 10, "w3": 10, "w4": 10}


def test_rotation_is_per_app() -> None:
    router = _router("w1", "w2", apps=("A", "B"))
    order = [_run(router, _call(i, app)) for i, app in enumerate("AABABBAA")]
    a = [k for k, app in zip(order, "AABABBAA", strict=True) if app == "A"]
    assert all(x != y for x, y in zip(a, a[1:], strict=False))


def test_least_busy_beats_rotation() -> None:
    router = _router("w1", "w2", "w3")
    busy = router.submit(_call(0), 0.0).call.worker.key
    keys = {_run(router, _call(i)) for i in range(1, 7)}
    assert busy not in keys


def test_loading_workers_take_nothing_but_calls_wait_for_them() -> None:
    router = Router()
    router.add_worker("w1", (), 1, loading=["A"])
    assert router.submit(_call(1), 0.0) is None  # queued, not an error
    dispatches = router.worker_ready("w1", ["A"], {}, 1.0)
    assert [d.call.client_id for d in dispatches] == [1]


def test_batched_calls_fill_one_batch_before_spreading() -> None:
    router = _router("w1", "w2")
    for key in ("w1", "w2"):
        router.workers[key].batch_sizes = {("A", "embed"): 4}
    keys = [router.submit(_call(i, action="embed"), 0.0).call.worker.key for i in range(5)]
    assert keys[:4] == [keys[0]] * 4 and keys[4] != keys[0]
    assert router.workers[keys[0]].units == 1


def test_pipelined_calls_are_requeued_when_their_worker_dies() -> None:
    router = _router("w1")
    running = router.submit(_call(1), 0.0)
    pipelined = router.submit(_call(2), 0.0)
    assert not running.pipelined and pipelined.pipelined and PREFETCH == 1
    lost = router.remove_worker("w1")
    assert [c.started for c in lost] == [True, False]
    router.add_worker("w2", ["A"], 1)
    router.set_accepting("w2", True, 0.0)
    again = router.requeue([c for c in lost if not c.started], 1.0)
    assert [d.call.client_id for d in again] == [2] and again[0].call.worker.key == "w2"


def test_started_notice_marks_a_pipelined_call() -> None:
    router = _router("w1")
    router.submit(_call(1), 0.0)
    call = router.submit(_call(2), 0.0).call
    router.started("w1", call.worker_id)
    assert call.started
