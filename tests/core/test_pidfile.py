"""The pidfile: atomic write, refusal while the named pid lives, removal only when ours."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest
from apps.arb_support import arb_server
from gunicorn.errors import HaltServer
from gunicorn.pidfile import Pidfile, pid_is_alive, read_pid


def test_create_writes_our_pid_with_mode_0644(tmp_path):
    path = tmp_path / "app.pid"
    pidfile = Pidfile(str(path))
    pidfile.create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["app.pid"]  # no temp file left behind
    pidfile.unlink()
    assert not path.exists()


def test_refuses_when_the_named_pid_is_alive(tmp_path):
    path = tmp_path / "app.pid"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(f"{other.pid}\n")
        with pytest.raises(HaltServer, match=f"Already running on PID {other.pid}"):
            Pidfile(str(path)).create(os.getpid())
        assert read_pid(str(path)) == other.pid
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("content", ["999999999\n", "garbage", ""], ids=["dead", "junk", "empty"])
def test_a_stale_file_is_replaced(tmp_path, content):
    path = tmp_path / "app.pid"
    path.write_text(content)
    Pidfile(str(path)).create(os.getpid())
    assert read_pid(str(path)) == os.getpid()


def test_unlink_leaves_a_file_holding_another_pid(tmp_path):
    path = tmp_path / "app.pid"
    pidfile = Pidfile(str(path))
    pidfile.create(os.getpid())
    path.write_text("1\n")
    pidfile.unlink()
    assert path.exists()


def test_rename_moves_the_file(tmp_path):
    pidfile = Pidfile(str(tmp_path / "app.pid.2"))
    pidfile.create(os.getpid())
    pidfile.rename(str(tmp_path / "app.pid"))
    assert read_pid(str(tmp_path / "app.pid")) == os.getpid()
    assert not (tmp_path / "app.pid.2").exists()


def test_pid_is_alive():
    assert pid_is_alive(os.getpid())
    assert pid_is_alive(1)  # EPERM or ours: alive either way
    assert not pid_is_alive(0)


def test_server_writes_and_removes_its_pidfile(tmp_path):
    path = tmp_path / "master.pid"
    srv = arb_server([f"pidfile={path}"], tmp_path).start()
    try:
        assert read_pid(str(path)) == srv.pid
        srv.send_signal(signal.SIGHUP)  # recreated on reload
        srv.wait_for_log("Hang up: Master")
        assert read_pid(str(path)) == srv.pid
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(10) == 0
        assert not path.exists()
    finally:
        srv.stop()


def test_server_refuses_to_start_when_the_pidfile_names_a_live_process(tmp_path):
    path = tmp_path / "master.pid"
    first = arb_server([f"pidfile={path}"], tmp_path).start()
    try:
        second = arb_server([f"pidfile={path}"], tmp_path).start(wait=False)
        try:
            assert second.wait_exit(10) == 1
            assert f"Already running on PID {first.pid}" in second.log()
            assert read_pid(str(path)) == first.pid
        finally:
            second.stop()
    finally:
        first.stop()
