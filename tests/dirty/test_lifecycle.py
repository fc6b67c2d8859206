"""Supervision of the dirty pool: crashes, timeouts, signals, scaling, shutdown, backpressure."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
from conftest import ECHO, descendants, dirty_server, kill_quietly
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import (
    DirtyBusyError,
    DirtyNoWorkersAvailableError,
    DirtyTimeoutError,
    DirtyWorkerError,
)
from harness import pid_alive, run_gunicorn, wait_until


def _pids(server) -> list[int]:  # noqa: ANN001
    return [w["pid"] for w in server.status()["workers"]]


def test_sigkill_mid_call_fails_the_call_and_worker_is_replaced() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        [old] = _pids(server)
        errors: list[BaseException] = []

        def call() -> None:
            with server.client() as client:
                try:
                    client.execute(ECHO, "sleep", 5)
                except Exception as exc:  # noqa: BLE001 -- the assertion inspects it
                    errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        wait_until(lambda: server.status()["workers"][0]["in_flight"] == 1, 5)
        started = time.monotonic()
        os.kill(old, signal.SIGKILL)
        caller.join(5)
        assert time.monotonic() - started < 2.0
        assert len(errors) == 1 and isinstance(errors[0], DirtyWorkerError)
        status = server.booted(1)
        assert status["workers"][0]["pid"] != old
        with server.client() as client:
            assert client.execute(ECHO, "echo", "again") == "again"


def test_a_crashed_worker_leaves_status_at_once_and_calls_wait_for_its_replacement() -> None:
    # The arbiter learns of the death from its link (EOF) before it can reap the pid: from then
    # on STATUS must not list the dead worker, and a call must queue for the replacement, not
    # fail with DirtyNoWorkersAvailableError until the next supervision tick.
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        [old] = _pids(server)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: old not in _pids(server), 5, message="dead worker gone from STATUS")
        with server.client() as client:
            assert client.execute(ECHO, "pid") != old
        assert server.booted(1)["workers"][0]["pid"] != old


def test_dirty_timeout_fails_the_call_and_recycles_the_worker() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1", "--dirty-timeout", "1",
                      "--dirty-graceful-timeout", "1") as server:
        [old] = _pids(server)
        with server.client(timeout=10) as client:
            started = time.monotonic()
            with pytest.raises(DirtyTimeoutError):
                client.execute(ECHO, "sleep", 30)
            assert time.monotonic() - started < 3.0
            wait_until(lambda: not pid_alive(old), 5, message="stuck worker killed")
            status = server.booted(1)
            assert status["workers"][0]["pid"] != old
            assert client.execute(ECHO, "echo", 1) == 1


def test_boot_crash_backs_off_and_calls_fail_fast() -> None:
    args = ("--dirty-app", "dirty_apps:CrashOnBootApp", "--dirty-workers", "1")
    server_cm = dirty_server(*args, workers=0)
    with server_cm as server:
        server.wait_for_log("failed to boot", count=2, timeout=10)
        with server.client() as client:
            started = time.monotonic()
            with pytest.raises(DirtyNoWorkersAvailableError):
                client.execute("dirty_apps:CrashOnBootApp", "pid")
            assert time.monotonic() - started < 1.0
        # Backoff: far fewer boot attempts than a tight loop would make in the same time.
        attempts = server.log().count("failed to boot")
        assert attempts <= 5


def test_master_sigkill_leaves_no_dirty_process() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "2", workers=2) as server:
        arbiter = server.arbiter_pid()
        dirty = [arbiter, *descendants(arbiter)]
        assert len(dirty) == 3
        socket_path = server.socket_path()
        os.kill(server.pid, signal.SIGKILL)
        for pid in server.worker_pids():
            if pid not in dirty:
                kill_quietly(pid)  # the HTTP worker notices on its own; not under test here
        wait_until(lambda: not any(pid_alive(p) for p in dirty), 3.5,
                   message="dirty processes gone")
        assert not os.path.exists(socket_path)


def test_term_stops_cleanly_and_removes_the_socket() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        socket_path = server.socket_path()
        dirty = [server.arbiter_pid(), *_pids(server)]
        assert server.stop(signal.SIGTERM) == 0
        assert not os.path.exists(socket_path)
        assert not os.path.exists(os.path.dirname(socket_path))
        assert not any(pid_alive(p) for p in dirty)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "group-term"])
def test_a_signal_to_the_whole_process_group_stops_without_respawning(sig: int) -> None:
    # Ctrl-C in a terminal (or a supervisor signalling the group) reaches every process of the
    # server's group at once: dirty workers must not die first and be replaced mid-shutdown.
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "2", workers=2) as server:
        arbiter = server.arbiter_pid()
        dirty = [arbiter, *descendants(arbiter)]
        assert len(dirty) == 3
        os.killpg(server.pid, sig)
        wait_until(lambda: server.proc.poll() is not None, 15, message="master exits")
        wait_until(lambda: not any(pid_alive(p) for p in dirty), 5, message="dirty gone")
        log = server.log()
        assert "replacing it" not in log and "Spawned dirty worker" not in log.split(
            "Handling signal")[-1]


def test_hup_replaces_workers_and_calls_keep_working() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "2", workers=2) as server:
        old = set(_pids(server))
        os.kill(server.arbiter_pid(), signal.SIGHUP)
        wait_until(lambda: not set(_pids(server)) & old and len(_pids(server)) == 2, 10,
                   message="workers replaced")
        with server.client() as client:
            assert client.execute(ECHO, "pid") not in old


def test_master_hup_reaches_the_dirty_arbiter() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        [old] = _pids(server)
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: _pids(server) and old not in _pids(server), 10,
                   message="worker replaced")


def test_ttin_ttou_and_manage() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        arbiter = server.arbiter_pid()
        os.kill(arbiter, signal.SIGTTIN)
        server.booted(2)
        os.kill(arbiter, signal.SIGTTOU)
        server.booted(1)
        os.kill(arbiter, signal.SIGTTOU)  # the last holder of EchoApp stays
        server.wait_for_log("Cannot remove a dirty worker")
        with server.client() as client:
            result = client.request(MessageType.MANAGE, {"op": "add", "count": 2})
            assert result["done"] == 2
            server.booted(3)
            result = client.request(MessageType.MANAGE, {"op": "remove", "count": 5})
            assert result["done"] == 2 and "reason" in result
        server.booted(1)


def test_limited_app_refuses_extra_workers() -> None:
    with dirty_server("--dirty-app", "dirty_apps:LimitedApp", "--dirty-workers", "3") as server:
        server.wait_for_log("Starting 1 dirty workers instead of 3")
        with server.client() as client:
            result = client.request(MessageType.MANAGE, {"op": "add", "count": 1})
        assert result["done"] == 0


def test_backpressure_fails_fast_with_busy() -> None:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1",
                      "--dirty-max-queue", "1") as server:
        async def run() -> list[object]:
            client = DirtyClient(server.socket_path(), timeout=10)
            # One runs, one is pipelined into the worker, one waits in the arbiter's queue.
            running = [asyncio.ensure_future(client.execute_async(ECHO, "sleep", 0.3))
                       for _ in range(3)]
            await asyncio.sleep(0.1)
            started = time.monotonic()
            with pytest.raises(DirtyBusyError):
                await client.execute_async(ECHO, "echo", 1)
            assert time.monotonic() - started < 0.3
            results = await asyncio.gather(*running)
            await client.close_async()
            return results

        assert len(asyncio.run(run())) == 3


def test_bad_spec_exits_2_with_one_line() -> None:
    result = run_gunicorn(["--dirty-app", "no_colon_here", "--dirty-workers", "1",
                           "dirty_http:app"])
    assert result.returncode == 2
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "dirty_apps" in lines[0]


def test_help_lists_dirty_settings() -> None:
    result = run_gunicorn(["--help"])
    for flag in ("--dirty-app", "--dirty-workers", "--dirty-timeout", "--dirty-threads",
                 "--dirty-graceful-timeout", "--dirty-max-queue"):
        assert flag in result.stdout
