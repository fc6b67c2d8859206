"""Sidecars from a plugin: spawned, respawned, sent HUP/USR1, stopped with the master."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from apps.arb_support import arb_server, get, marks, wait_marks
from harness import children_of, pid_alive, wait_until

PLUGIN = ["--plugin", "arb_plugins:SidecarPlugin"]


def _sidecar_pid(tmp_path) -> int:
    text = wait_until(lambda: (tmp_path / "ticker.pid").exists()
                      and (tmp_path / "ticker.pid").read_text().strip(), 10,
                      message="ticker.pid")
    return int(text)


def _started(tmp_path) -> list[str]:
    return [line for line in marks(tmp_path, "sidecar.log") if " started " in line]


def test_sidecar_is_spawned_before_workers_with_its_env(tmp_path):
    srv = arb_server(PLUGIN + ["workers=2"], tmp_path).start()
    try:
        srv.wait_workers(3)  # two workers + the sidecar
        pid = _sidecar_pid(tmp_path)
        assert pid in children_of(srv.pid)
        line = wait_marks(tmp_path, "sidecar.log")[0]
        assert line == f"{pid} started env=yes master={srv.pid} name=ticker"
        log = srv.log()
        assert log.index("Started sidecar ticker") < log.index("Booting worker")
        assert get(srv)[1].endswith("plugin=1")  # worker_environ reached the workers
    finally:
        srv.stop()


def test_sidecar_is_respawned_after_sigkill(tmp_path):
    srv = arb_server(PLUGIN, tmp_path).start()
    try:
        first = _sidecar_pid(tmp_path)
        wait_marks(tmp_path, "sidecar.log")
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(_started(tmp_path)) == 2, 10, message="respawn")
        second = _sidecar_pid(tmp_path)
        assert second != first and pid_alive(second)
        assert f"Sidecar ticker (pid:{first}) was killed by SIGKILL; restarting in" in srv.log()
    finally:
        srv.stop()


def test_hup_and_usr1_are_forwarded_to_the_sidecar(tmp_path):
    srv = arb_server(PLUGIN, tmp_path).start()
    try:
        pid = _sidecar_pid(tmp_path)
        wait_marks(tmp_path, "sidecar.log")
        srv.send_signal(signal.SIGUSR1)
        wait_until(lambda: f"{pid} SIGUSR1" in marks(tmp_path, "sidecar.log"), 10)
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: f"{pid} SIGHUP" in marks(tmp_path, "sidecar.log"), 10)
        assert pid_alive(pid)
    finally:
        srv.stop()


def test_sidecar_gets_term_on_graceful_stop(tmp_path):
    srv = arb_server(PLUGIN, tmp_path).start()
    try:
        pid = _sidecar_pid(tmp_path)
        wait_marks(tmp_path, "sidecar.log")
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(10) == 0
        assert f"{pid} SIGTERM" in marks(tmp_path, "sidecar.log")
        assert not pid_alive(pid)
        assert not (tmp_path / "ticker.pid").exists()
    finally:
        srv.stop()


def test_sidecar_gets_quit_on_quick_stop(tmp_path):
    srv = arb_server(PLUGIN, tmp_path).start()
    try:
        pid = _sidecar_pid(tmp_path)
        wait_marks(tmp_path, "sidecar.log")
        srv.send_signal(signal.SIGQUIT)
        assert srv.wait_exit(10) == 0
        assert f"{pid} SIGQUIT" in marks(tmp_path, "sidecar.log")
        assert not pid_alive(pid)
    finally:
        srv.stop()


def test_orphan_named_in_the_pidfile_is_killed_at_start(tmp_path):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "ticker.pid").write_text(f"{orphan.pid}\n")
        srv = arb_server(PLUGIN, tmp_path).start()
        try:
            assert orphan.wait(10) == -signal.SIGTERM
            assert f"Killing orphaned sidecar ticker (pid:{orphan.pid})" in srv.log()
            wait_until(lambda: _sidecar_pid(tmp_path) != orphan.pid, 10, message="new pid")
        finally:
            srv.stop()
    finally:
        orphan.kill()
        orphan.wait()


def test_respawn_backs_off_exponentially_up_to_the_maximum(tmp_path):
    srv = arb_server(["--plugin", "arb_plugins:CrashingSidecarPlugin"], tmp_path).start()
    try:
        srv.wait_for_log("exited with code 7; restarting in", count=5)
        delays = re.findall(r"Sidecar crasher \(pid:\d+\) exited with code 7; restarting in "
                            r"([\d.]+)s", srv.log())
        assert delays[:5] == ["0.1", "0.2", "0.4", "0.4", "0.4"]
        assert get(srv)[0] == 200  # a crashing sidecar never takes the server down
    finally:
        srv.stop()
