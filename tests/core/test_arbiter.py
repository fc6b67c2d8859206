"""The master process driven through real signals (via tests/apps/arb_run.py)."""

from __future__ import annotations

import json
import os
import signal

import pytest
from apps.arb_support import arb_server, get, marks, serving_pid, wait_marks
from harness import children_of, free_port, pid_alive, wait_until


def test_serves_and_term_exits_zero_leaving_no_children(tmp_path):
    srv = arb_server(["workers=2", "worker_exit=arb_apps.worker_exit",
                      "on_exit=arb_apps.on_exit"], tmp_path).start()
    try:
        workers = srv.wait_workers(2)
        assert get(srv)[0] == 200
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(10) == 0
        assert not any(pid_alive(p) for p in workers)
        assert len(marks(tmp_path, "worker_exit")) == 2
        assert marks(tmp_path, "on_exit") == [str(srv.pid)]
        assert "Shutting down: Master" in srv.log()
    finally:
        srv.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_quick_stop(tmp_path, sig):
    srv = arb_server(["workers=2", "graceful_timeout=30"], tmp_path).start()
    try:
        workers = srv.wait_workers(2)
        srv.send_signal(sig)
        assert srv.wait_exit(5) == 0
        wait_until(lambda: not any(pid_alive(p) for p in workers), 5)
    finally:
        srv.stop()


def test_ttin_ttou_change_the_worker_count(tmp_path):
    srv = arb_server(["workers=2", "nworkers_changed=arb_apps.nworkers_changed"],
                     tmp_path).start()
    try:
        srv.wait_workers(2)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(3)
        # Pending signals of one kind merge, so each TTOU waits for the previous one.
        for count in range(1, 5):
            srv.send_signal(signal.SIGTTOU)
            srv.wait_for_log("Handling signal: ttou", count=count)
        srv.wait_workers(1)
        assert len(srv.worker_pids()) == 1  # never below one
        assert marks(tmp_path, "nworkers_changed")[:3] == ["None->2", "2->3", "3->2"]
    finally:
        srv.stop()


def test_hup_replaces_every_worker_and_keeps_serving(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"workers": 2}))
    srv = arb_server(["--json", str(settings), "on_reload=arb_apps.on_reload"], tmp_path).start()
    try:
        before = set(srv.wait_workers(2))
        settings.write_text(json.dumps({"workers": 3}))
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len(srv.worker_pids()) == 3 and not before & set(srv.worker_pids()),
                   10, message="three new workers")
        assert serving_pid(srv) not in before
        assert marks(tmp_path, "on_reload") == [str(srv.pid)]
    finally:
        srv.stop()


def test_hup_with_broken_config_keeps_running(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"workers": 1}))
    srv = arb_server(["--json", str(settings)], tmp_path).start()
    try:
        srv.wait_workers(1)
        settings.write_text(json.dumps({"workers": "many"}))
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_log("Reload failed")
        assert get(srv)[0] == 200
    finally:
        srv.stop()


def test_worker_killed_with_sigkill_is_replaced(tmp_path):
    srv = arb_server(["workers=2", "child_exit=arb_apps.child_exit"], tmp_path).start()
    try:
        victim = srv.wait_workers(2)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(srv.worker_pids()) == 2 and victim not in srv.worker_pids(), 10)
        assert "Perhaps out of memory?" in srv.log()
        assert str(victim) in marks(tmp_path, "child_exit")
        assert get(srv)[0] == 200
    finally:
        srv.stop()


def test_stuck_worker_is_aborted_then_replaced(tmp_path):
    srv = arb_server(["worker_class=arb_workers.StuckWorker", "timeout=1",
                      "graceful_timeout=1", "worker_abort=arb_apps.worker_abort"], tmp_path).start(wait=False)
    try:
        first = srv.wait_workers(1)[0]
        aborted = wait_marks(tmp_path, "worker_abort")
        assert aborted[0] == str(first)
        srv.wait_for_log(rf"WORKER TIMEOUT \(pid:{first}\)")
        wait_until(lambda: srv.worker_pids() and first not in srv.worker_pids(), 10)
    finally:
        srv.stop()


def test_timeout_zero_disables_the_murder(tmp_path):
    srv = arb_server(["worker_class=arb_workers.StuckWorker", "timeout=0",
                      "graceful_timeout=1"],
                     tmp_path).start(wait=False)
    try:
        first = srv.wait_workers(1)[0]
        srv.wait_for_log("Booting worker")
        with pytest.raises(TimeoutError):
            srv.wait_for_log("WORKER TIMEOUT", timeout=1.5)
        assert srv.worker_pids() == [first]
    finally:
        srv.stop()


def test_worker_boot_failure_halts_the_master(tmp_path):
    srv = arb_server(["wsgi_app=arb_broken_app:app", "workers=3"], tmp_path).start(wait=False)
    try:
        assert srv.wait_exit(15) == 3
        log = srv.log()
        assert "Worker failed to boot." in log
        assert "arb_broken_app refuses to import" in log
        assert log.count("Booting worker") <= 3  # no crash loop
    finally:
        srv.stop()


def test_app_load_failure_halts_the_master(tmp_path):
    srv = arb_server(["wsgi_app=arb_no_such_module:app"], tmp_path).start(wait=False)
    try:
        assert srv.wait_exit(15) == 4
        assert "App failed to load." in srv.log()
        assert "arb_no_such_module" in srv.log()
    finally:
        srv.stop()


def test_preload_app_failure_exits_4_with_one_clear_line(tmp_path):
    srv = arb_server(["wsgi_app=arb_no_such_module:app", "preload_app=true"],
                     tmp_path).start(wait=False)
    try:
        assert srv.wait_exit(15) == 4
        assert "App failed to load: no module named 'arb_no_such_module'" in srv.log()
        assert "Booting worker" not in srv.log()
    finally:
        srv.stop()


def test_preload_app_serves(tmp_path):
    srv = arb_server(["preload_app=true", "raw_env=ARB_BODY=preloaded"], tmp_path).start()
    try:
        assert get(srv)[1].endswith("preloaded")
    finally:
        srv.stop()


def test_hooks_run_in_master_and_worker(tmp_path):
    hooks = ["on_starting", "when_ready", "pre_fork", "post_fork"]
    srv = arb_server([f"{h}=arb_apps.{h}" for h in hooks], tmp_path).start()
    try:
        worker = srv.wait_workers(1)[0]
        wait_marks(tmp_path, "post_fork")
        assert marks(tmp_path, "on_starting") == [str(srv.pid)]
        assert marks(tmp_path, "when_ready") == [str(srv.pid)]
        assert marks(tmp_path, "pre_fork") == [str(srv.pid)]
        assert marks(tmp_path, "post_fork") == [str(worker)]
    finally:
        srv.stop()


def test_unknown_child_is_reaped_quietly(tmp_path):
    # The pre_fork hook runs in the master and forks a short-lived process the arbiter never
    # spawned: the same situation as orphans adopted by a master running as PID 1.
    srv = arb_server(["pre_fork=arb_apps.stray_pre_fork", "loglevel=debug"], tmp_path).start()
    try:
        srv.wait_for_log("Reaped unknown child")
        assert get(srv)[0] == 200
        stray = int(wait_marks(tmp_path, "stray")[0])
        assert not pid_alive(stray)
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_max_requests_recycles_the_worker(tmp_path):
    srv = arb_server(["max_requests=2"], tmp_path).start()
    try:
        first = serving_pid(srv)
        serving_pid(srv)
        wait_until(lambda: srv.worker_pids() and first not in srv.worker_pids(), 10)
        assert serving_pid(srv) != first
    finally:
        srv.stop()


def test_worker_environment_has_raw_env_and_plugin_environ(tmp_path):
    srv = arb_server(["raw_env=ARB_BODY=from-raw-env", "--plugin", "arb_plugins:EnvPlugin"],
                     tmp_path).start()
    try:
        assert get(srv)[1].endswith("from-raw-env plugin=1")
    finally:
        srv.stop()


def test_daemon_mode_detaches_and_winch_stops_the_workers(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    errorlog = tmp_path / "error.log"
    srv = arb_server(["daemon=true", f"pidfile={pidfile}", f"errorlog={errorlog}", "workers=2"],
                     tmp_path).start(wait=False)
    master = None
    try:
        assert srv.wait_exit(10) == 0  # the launching process returns at once
        master = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10))
        assert master != srv.pid
        wait_until(lambda: len(children_of(master)) == 2, 10, message="daemon's workers")
        assert get(srv)[0] == 200
        os.kill(master, signal.SIGWINCH)
        wait_until(lambda: children_of(master) == [], 10, message="workers stopped")
        assert pid_alive(master)
        os.kill(master, signal.SIGTERM)
        wait_until(lambda: not pid_alive(master), 10, message="daemon exit")
        assert not pidfile.exists()
        assert "graceful stop of workers" in errorlog.read_text()
    finally:
        if master and pid_alive(master):
            os.kill(master, signal.SIGKILL)
        srv.stop()


def _socket_count(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # an fd closed while we looked
            pass
    return count


def test_hup_rebinds_when_bind_changes(tmp_path):
    new_port = free_port()
    settings = tmp_path / "settings.json"
    settings.write_text("{}")
    # The master's socket count below is the listeners only: no control socket.
    srv = arb_server(["--json", str(settings), "control_socket_disable=true"], tmp_path).start()
    try:
        before = set(srv.wait_workers(1))
        settings.write_text(json.dumps({"bind": [f"127.0.0.1:{new_port}"]}))
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{new_port}")
        srv.port = new_port
        wait_until(lambda: get(srv)[0] == 200, 10)
        # The old socket lives on only in the retiring workers; once they are gone nothing
        # holds it. (Connecting to the old port proves nothing: a parallel test may reuse it.)
        wait_until(lambda: not before & set(srv.worker_pids()), 10, message="old workers gone")
        assert _socket_count(srv.pid) == 1
    finally:
        srv.stop()


def test_quit_during_a_graceful_stop_escalates(tmp_path):
    srv = arb_server(["worker_class=arb_workers.SlowStopWorker", "graceful_timeout=60"],
                     tmp_path).start()
    try:
        worker = serving_pid(srv)
        srv.send_signal(signal.SIGTERM)
        srv.wait_for_log("Handling signal: term")
        assert pid_alive(worker)
        srv.send_signal(signal.SIGQUIT)
        assert srv.wait_exit(5) == 0
        assert not pid_alive(worker)
    finally:
        srv.stop()
