"""--metrics-bind through real servers: /metrics read by prometheus_client's own parser,
/healthz, the plugin relay's metrics and health hooks, and the missing-extra exit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import pytest
from apps.arb_support import arb_server
from harness import APPS, GunicornServer, free_port, run_gunicorn, wait_until
from metrics_scrape import fetch, health, metrics_server, sample_sum, scrape, wait_booted

WORKERS = {
    "sync": ["-k", "sync", "obs_apps:app"],
    "gthread": ["-k", "gthread", "--threads", "4", "obs_apps:app"],
    "asgi": ["-k", "asgi", "obs_apps:asgi_app"],
}


def app_get(srv, path="/"):
    status, _, body = fetch(srv.host, srv.port, path)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("worker", list(WORKERS), ids=list(WORKERS))
def test_requests_of_two_workers_add_up(worker):
    with metrics_server(["-w", "2", *WORKERS[worker]]) as srv:
        wait_booted(srv, 2)
        pids = {app_get(srv, f"/n{i}?q={i}")["pid"] for i in range(100)}
        families = wait_until(
            lambda: (f := scrape(srv)) and sample_sum(
                f, "gunicorn_requests", "gunicorn_requests_total") >= 100 and f,
            timeout=10, message="100 requests counted")
    assert sample_sum(families, "gunicorn_requests", "gunicorn_requests_total",
                      worker_class=worker, method="GET", status_class="2xx") == 100
    assert sample_sum(families, "gunicorn_request_duration_seconds",
                      "gunicorn_request_duration_seconds_count", worker_class=worker) == 100
    assert sample_sum(families, "gunicorn_response_body_bytes", "gunicorn_response_body_bytes_total",
                      worker_class=worker) > 0
    assert sample_sum(families, "gunicorn_worker_spawns", "gunicorn_worker_spawns_total") == 2
    assert sample_sum(families, "gunicorn_workers_expected") == 2
    assert len(pids) >= 1


def test_counts_of_a_killed_worker_are_kept_and_not_doubled():
    with metrics_server(["-w", "2", *WORKERS["sync"]]) as srv:
        wait_booted(srv, 2)
        served = [app_get(srv)["pid"] for _ in range(50)]
        victim = max(set(served), key=served.count)
        before = scrape(srv)
        assert sample_sum(before, "gunicorn_requests", "gunicorn_requests_total") == 50
        os.kill(victim, signal.SIGKILL)
        srv.wait_for_log(f"Worker \\(pid:{victim}\\) was sent SIGKILL")
        wait_booted(srv, 2)
        after_kill = scrape(srv)
        assert sample_sum(after_kill, "gunicorn_requests", "gunicorn_requests_total") == 50
        for _ in range(50):
            app_get(srv)
        families = scrape(srv)
    assert sample_sum(families, "gunicorn_requests", "gunicorn_requests_total") == 100
    assert sample_sum(families, "gunicorn_worker_exits", "gunicorn_worker_exits_total",
                      reason="signal_sigkill") == 1
    assert sample_sum(families, "gunicorn_worker_restarts", "gunicorn_worker_restarts_total") == 1
    assert sample_sum(families, "gunicorn_worker_spawns", "gunicorn_worker_spawns_total") == 3


def test_healthz_is_503_until_a_worker_has_booted(tmp_path):
    gate = tmp_path / "gate"
    conf = tmp_path / "gate_conf.py"
    conf.write_text("from obs_apps import gated_post_fork as post_fork\n")
    with metrics_server(["-w", "1", "-c", str(conf), *WORKERS["sync"]],
                        env={"OBS_GATE": str(gate)}) as srv, contextlib.ExitStack() as release:
        release.callback(gate.touch)  # a failing test must not leave the worker held
        srv.wait_for_log("Booting worker")
        def reported():
            try:
                status, body = health(srv)
            except ConnectionRefusedError:
                return False
            return body["arbiter"]["running"] and (status, body)
        status, body = wait_until(reported, timeout=10, message="a health report")
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["workers"] == {"booted": 0, "alive": 1, "expected": 1}
        gate.touch()
        status, body = wait_until(lambda: (r := health(srv))[0] == 200 and r, timeout=10,
                                  message="healthz 200")
    assert body["status"] == "ok"
    assert body["workers"]["booted"] == 1


def test_listen_backlog_is_reported():
    with metrics_server(["-w", "1", "--backlog", "64", *WORKERS["sync"]]) as srv:
        wait_booted(srv, 1)
        families = wait_until(lambda: (f := scrape(srv)) and "gunicorn_listen_backlog_limit" in f
                              and f, timeout=10, message="backlog gauge")
    assert sample_sum(families, "gunicorn_listen_backlog_limit",
                      listener=f"http://127.0.0.1:{srv.port}") == 64


def test_plugin_metrics_and_health_sections(tmp_path):
    port = free_port()
    args = ["--plugin", "obs_apps:ObsPlugin", f"metrics_bind=127.0.0.1:{port}",
            "worker_class=sync", "wsgi_app=obs_apps:app", "workers=1"]
    srv = arb_server(args, tmp_path, env={"OBS_PLUGIN_HEALTH": "fail"})
    srv.metrics_port = port
    with srv:
        wait_booted(srv, 1)
        families = scrape(srv)
        status, body = wait_until(lambda: (r := health(srv))[1]["workers"]["booted"] and r,
                                  timeout=10, message="booted worker in healthz")
    assert sample_sum(families, "gunicorn_obs_plugin_calls", "gunicorn_obs_plugin_calls_total",
                      kind="declared") == 1
    assert body["obs"] == {"ok": False, "ready": 0, "expected": 1}
    assert status == 503  # the plugin's section says it is not ready


def test_metrics_directory_is_private_and_removed(tmp_path):
    with metrics_server(["-w", "1", "--worker-tmp-dir", str(tmp_path), *WORKERS["sync"]]) as srv:
        wait_booted(srv, 1)
        app_get(srv)
        directory = wait_until(lambda: list(tmp_path.glob("gunicorn-metrics-*")),
                               message="metrics directory")[0]
        assert directory.stat().st_mode & 0o777 == 0o700
        assert list(directory.glob("counter_*.db"))
        assert srv.stop() == 0
    assert not directory.exists()


def test_unknown_paths_are_404_and_openmetrics_on_request():
    with metrics_server(["-w", "1", *WORKERS["sync"]]) as srv:
        wait_booted(srv, 1)
        assert fetch(srv.host, srv.metrics_port, "/nope")[0] == 404
        status, content_type, body = fetch(
            srv.host, srv.metrics_port, "/metrics",
            {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_metrics_bind_without_prometheus_client_exits_2(tmp_path):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'prometheus_client':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n")
    result = run_gunicorn(["--metrics-bind", "127.0.0.1:0", "hello:app"],
                          env={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(APPS)])})
    assert result.returncode == 2, result.stderr
    assert "metrics_bind" in result.stderr
    assert "gunicorn-core[metrics]" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_without_metrics_makes_no_directory(tmp_path):
    with GunicornServer(["-w", "1", "--worker-tmp-dir", str(tmp_path), *WORKERS["sync"]]) as srv:
        srv.wait_workers(1)
        app_get(srv)
        assert not list(Path(tmp_path).glob("gunicorn-metrics-*"))


def test_counts_survive_a_reload():
    with metrics_server(["-w", "2", *WORKERS["sync"]]) as srv:
        wait_booted(srv, 2)
        for _ in range(10):
            app_get(srv)
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_log("Worker exiting", count=2)
        wait_booted(srv, 2)
        for _ in range(10):
            app_get(srv)
        families = scrape(srv)
    assert sample_sum(families, "gunicorn_requests", "gunicorn_requests_total") == 20
    assert sample_sum(families, "gunicorn_reloads", "gunicorn_reloads_total") == 1
    assert sample_sum(families, "gunicorn_worker_exits", "gunicorn_worker_exits_total",
                      reason="retired") == 2
    assert sample_sum(families, "gunicorn_worker_restarts", "gunicorn_worker_restarts_total") == 0
    assert sample_sum(families, "gunicorn_workers_alive") == 2


def test_connections_waiting_for_a_worker_show_in_the_backlog(tmp_path):
    gate = tmp_path / "gate"
    conf = tmp_path / "gate_conf.py"
    conf.write_text("from obs_apps import gated_post_fork as post_fork\n")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.2)
    statsd = f"127.0.0.1:{receiver.getsockname()[1]}"
    seen = []

    def statsd_says(line):
        with contextlib.suppress(TimeoutError):
            seen.append(receiver.recv(4096).decode())
        return line in seen

    srv = metrics_server(["-w", "1", "-c", str(conf), "--statsd-host", statsd,
                          "--enable-backlog-metric", *WORKERS["sync"]], env={"OBS_GATE": str(gate)})
    with srv, contextlib.ExitStack() as clients:
        clients.callback(gate.touch)  # a failing test must not leave the worker held
        srv.wait_for_log("Booting worker")
        listener = f"http://127.0.0.1:{srv.port}"
        # Whatever already waits (the harness's readiness probe) stays: no worker accepts.
        before = wait_until(lambda: (f := scrape_when_up(srv)) and "gunicorn_listen_backlog" in f
                            and sample_sum(f, "gunicorn_listen_backlog", listener=listener) + 1,
                            timeout=10, message="a backlog gauge") - 1
        for _ in range(3):
            clients.enter_context(socket.create_connection((srv.host, srv.port), timeout=5))
        wait_until(lambda: sample_sum(scrape_when_up(srv), "gunicorn_listen_backlog",
                                      listener=listener) == before + 3, timeout=10,
                   message="3 more connections in the backlog gauge")
        wait_until(lambda: statsd_says(f"gunicorn.backlog:{before + 3:g}|h"), timeout=10,
                   message="the statsd backlog metric")
        gate.touch()
        wait_booted(srv, 1)
    receiver.close()


def scrape_when_up(srv):
    try:
        return scrape(srv)
    except ConnectionRefusedError:
        return {}
