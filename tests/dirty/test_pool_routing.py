"""Issue 14 items 1, 2 and 5 and issue 12's re-dispatch, through real processes: rotation over
equally loaded holders, per-app floors under TTOU and MANAGE remove, the per-app STATUS view,
and a pipelined call re-sent when its worker dies before starting it."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

import pytest
from conftest import ECHO, dirty_server
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import DirtyWorkerError
from harness import wait_until

TWO = "dirty_pool_apps:TwoApp"


def test_sequential_calls_rotate_over_equal_holders() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-app", TWO, "--dirty-workers", "4",
                      workers=4) as server:
        pids = {w["pid"] for w in server.status()["workers"]}
        with server.client() as client:
            landed = Counter(client.execute(ECHO, "pid") for _ in range(40))
            two = [client.execute(TWO, "pid") for _ in range(10)]
        assert set(landed) == pids and set(landed.values()) == {10}
        assert len(set(two)) == 2
        assert all(a != b for a, b in zip(two, two[1:], strict=False))  # strict alternation


def test_ttou_and_remove_keep_the_declared_count() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-app", TWO, "--dirty-workers", "3",
                      workers=3) as server:
        arbiter = server.arbiter_pid()
        os.kill(arbiter, signal.SIGTTOU)
        server.booted(2)
        refusal = ("Cannot remove a dirty worker: the remaining workers are the only holders of "
                   "dirty_pool_apps:TwoApp, which declares 2 workers")
        # One at a time: signals sent while one is pending are delivered once.
        for count in range(1, 6):
            os.kill(arbiter, signal.SIGTTOU)
            server.wait_for_log(refusal, count=count)
        status = server.booted(2)
        two = next(a for a in status["apps"] if a["path"] == TWO)
        assert two["current_workers"] == 2
        with server.client() as client:
            reply = client.request(MessageType.MANAGE, {"op": "remove", "count": 3})
        assert reply["done"] == 0 and "TwoApp, which declares 2 workers" in reply["reason"]
        assert len(server.booted(2)["workers"]) == 2


def test_status_gives_the_per_app_view() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-app", TWO, "--dirty-workers", "3",
                      workers=3) as server:
        status = server.status()
        pids = sorted(w["pid"] for w in status["workers"])
        apps = {a["import_path"]: a for a in status["apps"]}
        assert apps[ECHO]["worker_count"] is None and apps[ECHO]["current_workers"] == 3
        assert sorted(apps[ECHO]["worker_pids"]) == pids
        assert apps[TWO]["worker_count"] == 2 and apps[TWO]["current_workers"] == 2
        assert set(apps[TWO]["worker_pids"]) < set(pids)
        assert all(w["state"] == "ready" for w in status["workers"])


def test_an_unstarted_pipelined_call_is_redispatched_when_its_worker_dies() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        [old] = [w["pid"] for w in server.status()["workers"]]
        outcomes: dict[str, object] = {}

        def call(name: str, action: str, *args: object) -> None:
            with server.client(timeout=20) as client:
                try:
                    outcomes[name] = client.execute(ECHO, action, *args)
                except DirtyWorkerError as exc:
                    outcomes[name] = exc

        running = threading.Thread(target=call, args=("running", "sleep", 10))
        running.start()
        wait_until(lambda: server.status()["workers"][0]["in_flight"] == 1, 5)
        waiting = threading.Thread(target=call, args=("waiting", "pid"))
        waiting.start()  # pipelined: held inside the worker behind the sleep
        wait_until(lambda: server.status()["workers"][0]["in_flight"] == 2, 5)
        os.kill(old, signal.SIGKILL)
        running.join(10)
        waiting.join(20)
        assert isinstance(outcomes["running"], DirtyWorkerError)
        assert "died while running" in str(outcomes["running"])
        assert isinstance(outcomes["waiting"], int) and outcomes["waiting"] != old


@pytest.mark.parametrize("count", [3], ids=["three-holders"])
def test_least_busy_still_comes_first_under_load(count: int) -> None:
    # One holder busy with a long call: the next calls go to the idle ones, not in turn.
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", str(count), workers=count) \
            as server:
        with server.client(timeout=20) as client:
            busy_pid: list[int] = []
            sleeper = threading.Thread(target=lambda: busy_pid.append(
                client.execute(ECHO, "sleep", 1.5)))
            sleeper.start()
            wait_until(lambda: sum(w["in_flight"] for w in server.status()["workers"]) == 1, 5)
            busy = next(w["pid"] for w in server.status()["workers"] if w["in_flight"])
            landed = {client.execute(ECHO, "pid") for _ in range(6)}
            sleeper.join(10)
        assert busy not in landed and len(landed) == count - 1
