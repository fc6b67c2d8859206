"""Issue 14 item 4 and readiness, through real processes: a failed ``init()`` is retried with
backoff while callers see its original error; a loading worker takes no call, and a call for
an app whose only holder is loading waits for it instead of failing."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DirtyServer
from gunicorn.dirty.errors import DirtyAppError, DirtyError, DirtyTimeoutError
from harness import wait_until

FLAKY = "dirty_pool_apps:FlakyInitApp"
SLOW = "dirty_pool_apps:SlowInitApp"


@contextlib.contextmanager
def loading_server(tmp_path: Path, *args: str, slow: float = 1.5) -> Iterator[DirtyServer]:
    """A server whose dirty workers may still be loading when it is handed out."""
    server = DirtyServer(["-w", "1", "-k", "gthread", "--threads", "4", "--no-control-socket",
                          *args, "dirty_http:app"],
                         env={"DIRTY_TEST_DIR": str(tmp_path), "SLOW_INIT": str(slow)})
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.tmp.cleanup()


def _status(server: DirtyServer) -> dict | None:
    try:
        return server.status()
    except DirtyError:
        return None  # the arbiter is not listening yet


def test_failed_init_is_retried_and_callers_see_the_original_error(tmp_path: Path) -> None:
    with loading_server(tmp_path, "--dirty-app", FLAKY, "--dirty-workers", "1") as server:
        wait_until(lambda: (s := _status(server)) and s["workers"]
                   and s["workers"][0]["booted"], 15, message="worker booted")
        errors: list[DirtyAppError] = []
        with server.client() as client:
            def answered() -> int | None:
                try:
                    return client.execute(FLAKY, "pid")
                except DirtyAppError as exc:
                    errors.append(exc)
                    return None
            pid = wait_until(answered, 15, interval=0.05, message="a retry that succeeds")
        assert pid == server.status()["workers"][0]["pid"]  # retried in place, same worker
        assert errors, "callers must see the error while the app is failing"
        assert all(e.error_type == "RuntimeError" and "weights not there yet" in str(e)
                   and "not found" not in str(e) for e in errors)
        assert (tmp_path / "flaky-attempts").read_text() == "3"
        server.wait_for_log("loaded in worker .* after 2 retries")
        app = next(a for a in server.status()["apps"] if a["path"] == FLAKY)
        assert app["error"] is None and app["current_workers"] == 1


def test_a_call_waits_for_a_loading_worker_and_status_shows_the_load(tmp_path: Path) -> None:
    with loading_server(tmp_path, "--dirty-app", SLOW, "--dirty-workers", "1") as server:
        loading = wait_until(lambda: (s := _status(server)) and s["workers"] and s, 15,
                             message="a worker listed")
        worker = loading["workers"][0]
        assert worker["state"] == "loading" and worker["loading_for"] is not None
        app = next(a for a in loading["apps"] if a["path"] == SLOW)
        assert app["loading"] == [worker["pid"]] and app["current_workers"] == 0
        with server.client(timeout=20) as client:
            assert client.execute(SLOW, "pid") == worker["pid"]  # waited, then served
        ready = server.status()["workers"][0]
        assert ready["state"] == "ready" and ready["loading_for"] is None
        assert ready["load_seconds"][SLOW] >= 1.0


def test_calls_go_only_to_ready_holders_while_a_replacement_loads(tmp_path: Path) -> None:
    with loading_server(tmp_path, "--dirty-app", SLOW, "--dirty-workers", "1",
                        slow=2.0) as server:
        server.booted(1, timeout=20)
        [old] = [w["pid"] for w in server.status()["workers"]]
        os.kill(server.arbiter_pid(), signal.SIGHUP)  # the new worker loads for 2 s
        wait_until(lambda: any(w["state"] == "loading" for w in server.status()["workers"]),
                   10, message="replacement loading")
        served: list[int] = []
        with server.client(timeout=20) as client:
            while True:
                pid = client.execute(SLOW, "pid")
                # Only a call that returned while the replacement still loads proves the
                # routing (one racing its readiness may rightly go to either worker).
                if not any(w["state"] == "loading" for w in server.status()["workers"]):
                    break
                served.append(pid)
        assert served and set(served) == {old}


def test_a_call_for_a_loading_app_times_out_rather_than_failing_at_once(
        tmp_path: Path) -> None:
    with loading_server(tmp_path, "--dirty-app", SLOW, "--dirty-workers", "1",
                        slow=5.0) as server:
        wait_until(lambda: (s := _status(server)) and s["workers"], 15, message="a worker")
        with server.client(timeout=0.5) as client, pytest.raises(DirtyTimeoutError):
            client.execute(SLOW, "pid")
        with server.client(timeout=20) as client:
            assert client.execute(SLOW, "pid") == server.status()["workers"][0]["pid"]
