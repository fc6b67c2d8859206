"""Every Unix socket path the server would create is checked before anything forks: too long
for AF_UNIX is exit 2 with one line naming the setting, the path, its length and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.sockets import UNIX_PATH_MAX
from harness import run_gunicorn


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
