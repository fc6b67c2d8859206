"""A TMPDIR too long for the dirty arbiter's socket stops the server before anything forks."""

from __future__ import annotations

from gunicorn.sockets import UNIX_PATH_MAX
from harness import run_gunicorn


def test_a_tmpdir_too_long_for_the_dirty_socket_is_exit_2_not_a_crash_loop(tmp_path):
    tmpdir = tmp_path / ("t" * (120 - len(str(tmp_path))))
    tmpdir.mkdir()
    result = run_gunicorn(["-b", "127.0.0.1:0", "--no-control-socket", "--dirty-app",
                           "dirty_apps:EchoApp", "--dirty-workers", "1", "hello:app"],
                          env={"TMPDIR": str(tmpdir)}, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    planned = f"{tmpdir}/gunicorn-dirty-XXXXXXXX/arbiter.sock"
    assert lines[0] == (
        f"Error: TMPDIR: the Unix socket path {planned} is {len(planned)} bytes long; AF_UNIX "
        f"socket paths are limited to {UNIX_PATH_MAX} bytes (the dirty arbiter's socket goes "
        "in TMPDIR; point TMPDIR to a shorter directory)")
    assert not list(tmpdir.iterdir())  # nothing was created, nothing forked
