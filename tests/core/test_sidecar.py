"""Sidecars from a plugin: spawned, respawned, sent HUP/USR1, stopped with the master."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
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


def _record_files(tmpdir: Path) -> list[Path]:
    return sorted((tmpdir / f"gunicorn-{os.geteuid()}").glob("sidecar-*-ticker.pid"))


def _crash_master(srv, keep: int) -> None:
    """SIGKILL the master and its HTTP workers, leaving the sidecar ``keep`` behind."""
    workers = [p for p in children_of(srv.pid) if p != keep]
    os.kill(srv.pid, signal.SIGKILL)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    srv.wait_exit(10)
    wait_until(lambda: not any(pid_alive(p) for p in workers), 10, message="workers gone")


def _same_server(first, tmp_path, shared_tmp):
    """A second master of the same server (same bind, cwd and TMPDIR) as ``first``."""
    again = arb_server(PLUGIN, tmp_path, env={"TMPDIR": str(shared_tmp)})
    again.port, again.bind = first.port, first.bind
    return again


@pytest.fixture
def shared_tmp(tmp_path):
    path = tmp_path / "tmp"
    path.mkdir(mode=0o700)
    return path


def test_a_stopped_orphan_of_a_crashed_master_is_killed_at_the_next_start(tmp_path, shared_tmp):
    first = arb_server(PLUGIN, tmp_path, env={"TMPDIR": str(shared_tmp)}).start()
    try:
        orphan = _sidecar_pid(tmp_path)
        wait_until(lambda: _record_files(shared_tmp), 10, message="sidecar record")
        os.kill(orphan, signal.SIGSTOP)  # a hung sidecar: it will not notice the master's death
        _crash_master(first, keep=orphan)
        assert pid_alive(orphan)
        second = _same_server(first, tmp_path, shared_tmp).start()
        try:
            second.wait_for_log(f"Killing orphaned sidecar ticker \\(pid:{orphan}\\)")
            wait_until(lambda: not pid_alive(orphan), 10, message="orphan gone")
            wait_until(lambda: _sidecar_pid(tmp_path) != orphan, 10, message="new sidecar")
        finally:
            second.stop()
    finally:
        first.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def test_a_record_naming_a_reused_pid_is_not_signalled(tmp_path, shared_tmp):
    # Started first: a start time (10 ms ticks) can never equal the sidecar's.
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    first = arb_server(PLUGIN, tmp_path, env={"TMPDIR": str(shared_tmp)}).start()
    try:
        sidecar = _sidecar_pid(tmp_path)
        [record] = wait_until(lambda: _record_files(shared_tmp), 10, message="sidecar record")
        _crash_master(first, keep=sidecar)
        wait_until(lambda: not pid_alive(sidecar), 10, message="sidecar exits on its own")
        # The recorded pid now names another process: keep the stamp, swap in the victim's pid.
        _, start_time, boot_id = record.read_text().split()
        record.write_text(f"{victim.pid} {start_time} {boot_id}\n")
        second = _same_server(first, tmp_path, shared_tmp).start()
        try:
            second.wait_for_log("Started sidecar ticker")
            assert f"Not signalling pid {victim.pid} from the sidecar record" in second.log()
            assert f"pid {victim.pid} is another process now" in second.log()
            assert "Killing orphaned" not in second.log()
            assert victim.poll() is None
        finally:
            second.stop()
    finally:
        first.stop()
        victim.kill()
        victim.wait()


def test_a_symlinked_record_is_not_followed(tmp_path, shared_tmp):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = arb_server(PLUGIN, tmp_path, env={"TMPDIR": str(shared_tmp)}).start()
        try:
            [record] = wait_until(lambda: _record_files(shared_tmp), 10, message="record")
            stamp = (tmp_path / "stamp")
            stamp.write_text(f"{victim.pid} 1 x\n")
            first.stop()
            record.unlink(missing_ok=True)
            record.symlink_to(stamp)
            second = _same_server(first, tmp_path, shared_tmp).start()
            try:
                second.wait_for_log("Started sidecar ticker")
                assert f"the record {record} is not trusted" in second.log()
                assert "is a symbolic link" in second.log()
                assert victim.poll() is None
                assert record.is_file() and not record.is_symlink()  # replaced, not followed
            finally:
                second.stop()
        finally:
            first.stop()
    finally:
        victim.kill()
        victim.wait()


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


def test_a_hung_sidecar_is_aborted_killed_and_replaced(tmp_path):
    srv = arb_server(["--plugin", "arb_plugins:HeartbeatSidecarPlugin"], tmp_path).start()
    try:
        hung = _sidecar_pid(tmp_path)
        wait_marks(tmp_path, "sidecar.log")
        os.kill(hung, signal.SIGSTOP)  # its loop is frozen: alive, but no heartbeat
        srv.wait_for_log(rf"SIDECAR TIMEOUT: ticker \(pid:{hung}\) silent for")
        srv.wait_for_log(rf"Sidecar ticker \(pid:{hung}\) did not exit after SIGABRT, killing "
                         "it")
        srv.wait_for_log(rf"Sidecar ticker \(pid:{hung}\) was killed by SIGKILL; restarting in")
        wait_until(lambda: len(_started(tmp_path)) == 2, 10, message="replacement")
        assert not pid_alive(hung)
        assert get(srv)[0] == 200
    finally:
        srv.stop()

