"""Every Unix socket path the server would create is checked before anything forks: too long
for AF_UNIX, or (the control socket) in a directory another user could write to, is exit 2
with one line naming the setting, the path and the reason."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from gunicorn.sockets import UNIX_PATH_MAX
from harness import GunicornServer, run_gunicorn


def long_dir(base: Path, total: int = 120) -> Path:
    """An existing directory whose path is about ``total`` bytes long."""
    path = base / ("d" * max(1, total - len(str(base)) - 1))
    path.mkdir(parents=True)
    return path


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_bind_path_too_long_is_exit_2_naming_bind(tmp_path):
    path = long_dir(tmp_path) / "app.sock"
    result = run_gunicorn(["-b", f"unix:{path}", "--no-control-socket", "hello:app"],
                          timeout=20)
    assert result.returncode == 2
    length = len(str(path))
    assert error_line(result) == (
        f"Error: bind: the Unix socket path {path} is {length} bytes long; AF_UNIX socket "
        f"paths are limited to {UNIX_PATH_MAX} bytes (bind a shorter path)")
    assert not path.exists()


@pytest.mark.parametrize("how", ["setting", "default"])
def test_a_control_socket_path_too_long_is_exit_2_naming_control_socket(tmp_path, how):
    directory = long_dir(tmp_path)
    directory.chmod(0o700)
    if how == "setting":
        args, env = ["--control-socket", str(directory / "gunicorn.ctl")], {}
    else:
        args, env = [], {"XDG_RUNTIME_DIR": str(directory)}
    result = run_gunicorn(["-b", "127.0.0.1:0", *args, "hello:app"], env=env, timeout=20)
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(f"Error: control_socket: the Unix socket path {directory}/gunicorn.ctl"
                           f" is {len(str(directory)) + 13} bytes long; AF_UNIX socket paths "
                           f"are limited to {UNIX_PATH_MAX} bytes")
    assert "--no-control-socket" in line


def test_a_path_at_the_limit_is_accepted(tmp_path):
    path = long_dir(tmp_path, UNIX_PATH_MAX - len("/a.sock")) / "a.sock"
    assert len(str(path)) == UNIX_PATH_MAX
    result = run_gunicorn(["-b", f"unix:{path}", "--no-control-socket", "--check-config",
                           "hello:app"], timeout=20)
    assert result.returncode == 0, result.stderr


# -- the control socket's directory must be trusted (another user could swap the socket) ------

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")


def start_refused(args, env=None) -> str:
    """Start a real server that must refuse to run: return its one-line error."""
    srv = GunicornServer(["--workers", "1", *args, "hello:app"], env=env)
    try:
        srv.start(wait=False)
        assert srv.wait_exit(20) == 2, srv.log()
        lines = srv.log().strip().splitlines()
        assert len(lines) == 1, srv.log()
        return lines[0]
    finally:
        srv.stop()
        srv.tmp.cleanup()


@needs_root
def test_an_xdg_runtime_dir_owned_by_another_user_is_refused(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, NOBODY, NOBODY)
    line = start_refused([], env={"XDG_RUNTIME_DIR": str(runtime)})
    assert line == (
        f"Error: control_socket: {runtime} is owned by uid 65534 (nobody), not by this server's "
        "user (root): another user could replace the socket (the default comes from "
        "$XDG_RUNTIME_DIR or $HOME; put control_socket in a private directory, or "
        "--no-control-socket)")
    assert list(runtime.iterdir()) == []


@pytest.mark.parametrize("mode", [0o1777, 0o775], ids=["sticky-world-writable", "group-writable"])
def test_a_control_socket_directory_writable_by_others_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    line = start_refused(["--control-socket", str(shared / "gunicorn.ctl")])
    assert line.startswith(f"Error: control_socket: {shared} is writable by ")
    assert f"(mode {mode:04o}): another user could replace the socket" in line
    assert not (shared / "gunicorn.ctl").exists()


def test_a_missing_control_socket_directory_is_created_private(tmp_path):
    path = tmp_path / "new" / "gunicorn.ctl"
    srv = GunicornServer(["--workers", "1", "--control-socket", str(path), "hello:app"])
    try:
        srv.start()
        srv.wait_for_log("Control socket listening at")
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        srv.stop()
        srv.tmp.cleanup()
