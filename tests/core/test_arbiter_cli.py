"""The arbiter behind the real command line (``python -m gunicorn``) and the real workers."""

from __future__ import annotations

import http.client
import os
import signal

import pytest
from harness import GunicornServer, children_of, pid_alive, server, wait_until


def _get(srv) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_cli_serves_reloads_and_stops(worker):
    with server(["-w", "2", "-k", worker, "hello:app"]) as srv:
        before = set(srv.wait_workers(2))
        assert _get(srv) == (200, b"Hello, World!")
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len(srv.worker_pids()) == 2 and not before & set(srv.worker_pids()),
                   15, message="new workers after HUP")
        assert _get(srv) == (200, b"Hello, World!")
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0
        assert not any(pid_alive(p) for p in before)


@pytest.mark.parametrize(("app", "status", "reason"), [
    ("arb_no_such_module:app", 4, "App failed to load."),
    ("arb_broken_app:app", 3, "Worker failed to boot."),
], ids=["import-error", "boot-error"])
def test_cli_worker_failures_halt_the_master(app, status, reason):
    srv = GunicornServer(["-w", "2", app]).start(wait=False)
    try:
        assert srv.wait_exit(15) == status
        assert f"Reason: {reason}" in srv.log()
    finally:
        srv.stop()
        srv.tmp.cleanup()


def test_cli_usr2_re_exec_keeps_the_port(tmp_path):
    pidfile = tmp_path / "gunicorn.pid"
    srv = GunicornServer(["-w", "1", "-p", str(pidfile), "hello:app"]).start()
    new_master = None
    try:
        srv.send_signal(signal.SIGUSR2)
        new_pidfile = tmp_path / "gunicorn.pid.2"
        new_master = int(wait_until(lambda: new_pidfile.exists() and new_pidfile.read_text(),
                                    15, message="gunicorn.pid.2"))
        wait_until(lambda: children_of(new_master), 15, message="new master's worker")
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0
        wait_until(lambda: pidfile.exists() and int(pidfile.read_text()) == new_master, 10,
                   message="promotion")
        assert _get(srv) == (200, b"Hello, World!")
    finally:
        if new_master and pid_alive(new_master):
            os.kill(new_master, signal.SIGTERM)
            wait_until(lambda: not pid_alive(new_master), 15)
        srv.stop()
        srv.tmp.cleanup()
