"""Dirty and stash metrics, and the dirty section of /healthz, through a real server: calls made
through an HTTP endpoint, /metrics read with prometheus_client's parser."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from urllib.parse import urlencode

from conftest import ECHO, DirtyServer, dirty_server
from harness import free_port, wait_until
from metrics_scrape import fetch, health, sample_sum, scrape, wait_booted, wait_metric

CALLS = ("gunicorn_dirty_calls", "gunicorn_dirty_calls_total")


@contextlib.contextmanager
def metrics_pool(*args, app="dirty_http:app", workers=1, env=None):
    port = free_port()
    with dirty_server("--metrics-bind", f"127.0.0.1:{port}", *args, app=app, workers=workers,
                      env=env) as srv:
        srv.metrics_port = port
        wait_booted(srv, 1)
        yield srv


def call(srv, action, *args, app=ECHO):
    query = urlencode({"app": app, "action": action, "args": json.dumps(list(args))})
    status, _, body = fetch(srv.host, srv.port, f"/call?{query}", timeout=60)
    return status, json.loads(body)


def in_background(srv, action, *args):
    answers = []
    thread = threading.Thread(target=lambda: answers.append(call(srv, action, *args)))
    thread.start()
    return thread, answers


def calls_of(families, **labels):
    return sample_sum(families, *CALLS, app=ECHO, **labels)


def test_calls_by_outcome_duration_and_queue_depth():
    args = ("--dirty-app", ECHO, "--dirty-workers", "1", "--dirty-threads", "1",
            "--dirty-timeout", "3", "--dirty-max-queue", "1")
    with metrics_pool(*args) as srv:
        for value in range(3):
            assert call(srv, "echo", value) == (200, {"result": value})
        assert call(srv, "boom")[1]["error"] == "DirtyAppError"
        # One call runs, one waits inside the worker (pipelined), one waits in the queue...
        held = [in_background(srv, "sleep", 1.0) for _ in range(3)]
        wait_metric(srv, "gunicorn_dirty_queue_depth", 1, app=ECHO)
        # ... so the queue (dirty_max_queue 1) is full.
        assert call(srv, "sleep", 0)[1]["error"] == "DirtyBusyError"
        for thread, answers in held:
            thread.join(30)
            assert answers[0][0] == 200
        wait_metric(srv, "gunicorn_dirty_queue_depth", 0, app=ECHO)
        assert call(srv, "sleep", 6)[1]["error"] == "DirtyTimeoutError"
        srv.booted(1)  # the stuck worker was replaced
        thread, answers = in_background(srv, "sleep", 20)
        victim = wait_until(lambda: [w["pid"] for w in srv.status()["workers"]
                                     if w["in_flight"]], timeout=10, message="a running call")
        os.kill(victim[0], signal.SIGKILL)
        thread.join(30)
        assert answers[0][1]["error"] == "DirtyWorkerError"
        srv.booted(1)
        families = wait_metric(srv, "gunicorn_dirty_workers", 1, app=ECHO, state="ready")
    assert calls_of(families, action="echo", outcome="ok") == 3
    assert calls_of(families, action="boom", outcome="app_error") == 1
    assert calls_of(families, action="sleep", outcome="ok") == 3
    assert calls_of(families, action="sleep", outcome="busy") == 1
    assert calls_of(families, action="sleep", outcome="timeout") == 1
    assert calls_of(families, action="sleep", outcome="worker_died") == 1
    # Every call that reached a worker (not the refused one) has a duration.
    assert sample_sum(families, "gunicorn_dirty_call_duration_seconds",
                      "gunicorn_dirty_call_duration_seconds_count", app=ECHO) == 9
    assert sample_sum(families, "gunicorn_dirty_call_duration_seconds",
                      "gunicorn_dirty_call_duration_seconds_sum", app=ECHO) >= 3 + 3


def test_actions_a_client_makes_up_are_not_labels():
    with metrics_pool("--dirty-app", ECHO, "--dirty-workers", "1") as srv:
        for name in ("nope-1", "nope-2", "_private"):
            assert call(srv, name)[1]["error"] == "DirtyActionNotFoundError"
        families = wait_metric(srv, CALLS[0], 3, CALLS[1], app=ECHO, outcome="app_error")
    assert calls_of(families, action="other", outcome="app_error") == 3


def test_counts_survive_a_killed_dirty_arbiter_and_its_gauges_go():
    with metrics_pool("--dirty-app", ECHO, "--dirty-workers", "2", workers=2) as srv:
        for value in range(4):
            call(srv, "echo", value)
        wait_metric(srv, "gunicorn_dirty_workers", 2, app=ECHO, state="ready")
        arbiter = srv.arbiter_pid()
        os.kill(arbiter, signal.SIGKILL)
        srv.wait_for_log(f"Sidecar dirty \\(pid:{arbiter}\\) .*restarting")
        srv.booted(2)  # the new arbiter's workers (booted() retries while it starts)
        assert srv.arbiter_pid() != arbiter
        call(srv, "echo", 4)
        families = wait_metric(srv, CALLS[0], 5, CALLS[1], app=ECHO, action="echo", outcome="ok")
        # The dead arbiter's gauges left with it: two ready workers, not four.
        families = wait_metric(srv, "gunicorn_dirty_workers", 2, app=ECHO, state="ready")
    assert sample_sum(families, "gunicorn_dirty_workers", app=ECHO, state="loading") == 0


def test_gauges_of_a_reaped_dirty_worker_are_dropped():
    app = "dirty_apps:GaugeApp"
    with metrics_pool("--dirty-app", app, "--dirty-workers", "2", workers=2) as srv:
        wait_metric(srv, "test_dirty_app_workers", 2)
        victim = srv.status()["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in [w["pid"] for w in srv.status()["workers"]],
                   timeout=10, message="the killed worker reaped")
        srv.booted(2)
        wait_metric(srv, "test_dirty_app_workers", 2)


def test_stash_operations_and_keys_per_table():
    with metrics_pool("--dirty-app", "stash_apps:StashDirtyApp", "--dirty-workers", "1",
                      app="stash_apps:app") as srv:
        for key in ("a", "b", "c"):
            query = urlencode({"t": "declared", "k": key, "v": json.dumps(key)})
            assert fetch(srv.host, srv.port, f"/put?{query}")[0] == 200
        assert fetch(srv.host, srv.port, "/put?t=adhoc&k=x&v=1")[0] == 200
        for _ in range(2):
            assert fetch(srv.host, srv.port, "/get?t=declared&k=a")[0] == 200
        families = wait_metric(srv, "gunicorn_stash_keys", 3, table="declared")
        families = wait_metric(srv, "gunicorn_stash_keys", 1, table="adhoc")
    ops = ("gunicorn_stash_operations", "gunicorn_stash_operations_total")
    assert sample_sum(families, *ops, op="put") == 4
    assert sample_sum(families, *ops, op="get") == 2
    assert sample_sum(families, "gunicorn_stash_keys", table="counters") == 0


def test_healthz_has_a_ready_dirty_section():
    with metrics_pool("--dirty-app", ECHO, "--dirty-workers", "2", workers=2) as srv:
        status, body = wait_until(lambda: (r := health(srv))[1].get("dirty", {}).get("ready")
                                  == 2 and r, timeout=10, message="2 ready dirty workers")
    assert status == 200, body
    dirty = body["dirty"]
    assert dirty["ok"] is True and dirty["running"] is True and dirty["expected"] == 2
    assert dirty["apps"] == {ECHO: {"state": "ready", "ready": 2, "loading": 0}}


def test_healthz_stays_up_while_the_pool_loads_at_boot(tmp_path):
    gate = tmp_path / "init-gate"
    app = "dirty_apps:GatedInitApp"
    port = free_port()
    srv = DirtyServer(["-w", "1", "-k", "gthread", "--no-control-socket", "--metrics-bind",
                       f"127.0.0.1:{port}", "--dirty-app", app, "--dirty-workers", "1",
                       "dirty_http:app"], env={"DIRTY_INIT_GATE": str(gate)})
    srv.metrics_port = port
    with srv, contextlib.ExitStack() as release:
        release.callback(gate.touch)  # a failing test must not leave the worker loading
        status, body = wait_until(
            lambda: (r := health_when_up(srv)) and r[1]["workers"]["booted"]
            and r[1].get("dirty", {}).get("running") and r, timeout=20,
            message="a health report with the dirty arbiter")
        assert status == 200
        assert body["dirty"]["apps"][app]["state"] == "starting"
        assert body["dirty"]["ready"] == 0 and body["dirty"]["loading"] == 1
        gate.touch()
        status, body = wait_until(
            lambda: (r := health(srv))[1]["dirty"]["ready"] == 1 and r, timeout=20,
            message="the dirty worker ready")
    assert status == 200 and body["dirty"]["apps"][app]["state"] == "ready"


def test_healthz_is_503_while_an_app_has_no_worker():
    app = "dirty_apps:BrokenInitApp"
    with metrics_pool("--dirty-app", ECHO, "--dirty-app", app, "--dirty-workers", "1") as srv:
        status, body = wait_until(
            lambda: (r := health(srv))[1].get("dirty", {}).get("apps", {}).get(app) and r,
            timeout=10, message="the broken app in the health report")
        families = scrape(srv)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["dirty"]["apps"][app]["state"] == "unavailable"
    assert "model file missing" in body["dirty"]["apps"][app]["error"]
    assert body["dirty"]["apps"][ECHO]["state"] == "ready"
    assert sample_sum(families, "gunicorn_dirty_workers", app=app, state="failed") == 1


def health_when_up(srv):
    try:
        return health(srv)
    except ConnectionRefusedError:
        return None
