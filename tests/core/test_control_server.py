"""The control socket of a real master: files and modes, true data, commands, bad peers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import struct
import tempfile
import urllib.request

import pytest
from apps.ctl_support import (
    ask,
    connect,
    ctl_server,
    data,
    open_fds,
    read_replies,
    socket_of,
)
from gunicorn.control.codec import encode
from harness import GunicornServer, children_of, pid_alive, wait_until


def get(srv: GunicornServer) -> bytes:
    with urllib.request.urlopen(srv.url, timeout=5) as resp:
        return resp.read()


def test_socket_is_0600_in_a_new_0700_dir_and_removed_on_stop(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700
        srv.wait_for_log(f"Control socket listening at: {path}")
        srv.stop()
        assert not os.path.exists(path)


def test_default_path_is_under_xdg_runtime_dir():
    with GunicornServer(["-w", "1", "hello:app"]) as srv:
        path = os.path.join(srv.tmp.name, "gunicorn.ctl")
        wait_until(lambda: os.path.exists(path), 10, message="default socket")
        assert data(path, "show stats")["pid"] == srv.pid


def test_no_control_socket_flag(tmp_path):
    with ctl_server(tmp_path, "--no-control-socket") as srv:
        srv.wait_workers(1)
        assert not (tmp_path / "run").exists()
        assert "Control socket" not in srv.log()


def test_workers_are_booted_and_count_their_requests(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        pid = srv.wait_workers(1)[0]
        rows = wait_until(lambda: [w for w in data(path, "show workers")["workers"]
                                   if w["booted"]], 10, message="booted worker")
        assert rows[0]["pid"] == pid and rows[0]["age"] == 1 and rows[0]["requests"] == 0
        assert 0 <= rows[0]["last_heartbeat"] < 5 and rows[0]["uptime"] >= 0
        for _ in range(3):
            assert get(srv) == b"Hello, World!"
        wait_until(lambda: data(path, "show workers")["workers"][0]["requests"] == 3, 10,
                   message="3 requests counted")
        everything = data(path, "show all")
        assert everything["arbiter"]["pid"] == srv.pid
        assert everything["workers"][0]["booted"] is True
        assert everything["dirty"] == {"enabled": False, "workers": []}


def test_show_stats_listeners_config(tmp_path):
    with ctl_server(tmp_path, "--timeout", "17") as srv:
        path = socket_of(srv)
        srv.wait_workers(1)
        stats = data(path, "show stats")
        assert stats["workers_spawned"] == 1 and stats["reloads"] == 0 and stats["uptime"] >= 0
        listeners = data(path, "show listeners")
        assert listeners["count"] == 1
        assert listeners["listeners"][0]["address"] == srv.url
        assert listeners["listeners"][0]["type"] == "tcp"
        config = data(path, "show config")
        assert config["timeout"] == 17 and config["control_socket"] == path
        assert "post_fork" not in config  # hooks are not settings values worth showing


def test_worker_add_remove_kill(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        first = srv.wait_workers(1)[0]
        assert data(path, "worker add", ["2"]) == {"added": 2, "previous": 1, "total": 3}
        pids = srv.wait_workers(3)
        assert data(path, "worker remove") == {"removed": 1, "previous": 3, "total": 2}
        srv.wait_workers(2)
        assert data(path, "worker remove 5") == {"removed": 1, "previous": 2, "total": 1}
        survivor = srv.wait_workers(1)[0]
        assert survivor in pids
        assert data(path, "worker kill", [str(survivor)]) == {"killed": survivor}
        wait_until(lambda: not pid_alive(survivor), 10, message="killed worker gone")
        replacement = srv.wait_workers(1)[0]
        assert replacement not in (survivor, first)
        stats = data(path, "show stats")
        assert stats["workers_spawned"] == 4 and stats["workers_killed"] >= 3
        reply = ask(path, "worker kill", [str(srv.pid)])
        assert reply == {"id": 1, "status": "error",
                         "error": f"no HTTP worker with pid {srv.pid}"}


def test_reload_and_reopen(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        old = srv.wait_workers(1)[0]
        assert data(path, "reload") == {"status": "reloading"}
        wait_until(lambda: srv.worker_pids() and old not in srv.worker_pids(), 10,
                   message="new worker")
        assert data(path, "show stats")["reloads"] == 1
        assert data(path, "reopen") == {"status": "reopening"}
        srv.wait_for_log("Handling signal: usr1")


@pytest.mark.parametrize("mode,signal_line", [("graceful", "term"), ("quick", "int"),
                                              (None, "term")])
def test_shutdown(tmp_path, mode, signal_line):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        srv.wait_workers(1)
        reply = data(path, "shutdown", [mode] if mode else [])
        assert reply == {"status": "shutting_down", "mode": mode or "graceful"}
        assert srv.wait_exit(15) == 0
        assert f"Handling signal: {signal_line}" in srv.log()
        assert not os.path.exists(path)


def test_unknown_and_bad_commands_get_error_replies(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        assert ask(path, "frobnicate")["error"] == "unknown command: frobnicate (try: help)"
        assert ask(path, "shutdown", ["later"])["status"] == "error"
        assert ask(path, "dirty add")["error"].startswith("dirty arbiters are not enabled")
        help_data = data(path, "help")["commands"]
        assert len(help_data) == 15 and "worker kill PID" in help_data


def test_many_requests_on_one_connection_are_answered_in_order(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        with connect(path) as sock:
            sock.sendall(b"".join(encode({"id": i, "command": "show stats"}) for i in range(20)))
            replies = read_replies(sock, 20)
        assert [r["id"] for r in replies] == list(range(20))


@pytest.mark.parametrize("frame,expect_error,closes", [
    (struct.pack(">I", 9) + b"not json!", "frame is not JSON", False),
    (struct.pack(">I", 3) + b"[1]", "must hold a JSON object", False),
    (struct.pack(">I", 2) + b"\xff\xfe", "not UTF-8", False),
    (encode({"id": 5, "args": []}), "request needs a string 'command'", False),
    (struct.pack(">I", 0xFFFFFFF0), "frame too large", True),
    (struct.pack(">I", 16 * 1024 * 1024 + 1) + b"x" * 1000, "frame too large", True),
], ids=["bad-json", "non-object", "bad-utf8", "no-command", "huge-length", "oversized"])
def test_malformed_frames(tmp_path, frame, expect_error, closes):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        with connect(path) as sock:
            sock.sendall(frame + encode({"id": 9, "command": "show stats"}))
            replies = read_replies(sock, 2)
        assert replies[0]["status"] == "error" and expect_error in replies[0]["error"]
        if closes:
            assert len(replies) == 1  # the stream cannot be resynchronised: closed
        else:
            assert replies[1]["id"] == 9 and replies[1]["status"] == "ok"
        # A half-sent frame, then a hang-up: nothing for the master to wait on.
        with connect(path) as sock:
            sock.sendall(struct.pack(">I", 100) + b"{")
        assert data(path, "show stats")["pid"] == srv.pid
        assert get(srv) == b"Hello, World!"


def test_another_uid_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another uid")
    # pytest's tmp_path sits under a 0700 directory: the other uid needs a traversable one.
    rundir = tempfile.mkdtemp(prefix="gctl-uid-")
    os.chmod(rundir, 0o711)
    sock_path = os.path.join(rundir, "gunicorn.ctl")
    try:
        with ctl_server(tmp_path, "--control-socket-mode", "0o666", path=sock_path) as srv:
            path = socket_of(srv)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
            answer, code = _ask_as_nobody(path)
            assert code == 0, answer
            assert "permission denied: uid 65534" in answer
            srv.wait_for_log("refusing commands from uid 65534")
            assert pid_alive(srv.pid) and data(path, "show stats")["pid"] == srv.pid
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def _ask_as_nobody(path: str) -> tuple[str, int]:
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover -- runs in the forked child
        status = 1
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            reply = ask(path, "shutdown", ["quick"])
            os.write(write_fd, repr(reply).encode())
            status = 0
        except BaseException as exc:  # report anything to the parent, never run its code
            os.write(write_fd, repr(exc).encode())
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        answer = fh.read().decode()
    _, status = os.waitpid(child, 0)
    return answer, os.waitstatus_to_exitcode(status)


def test_twenty_reloads_leave_the_master_fd_count_unchanged(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        pids = srv.wait_workers(1)
        baseline = open_fds(srv.pid)  # before any control connection exists
        for i in range(20):
            if i % 2:
                data(path, "reload")  # through the socket
            else:
                srv.send_signal(signal.SIGHUP)
            wait_until(lambda p=pids: srv.worker_pids() and not set(srv.worker_pids()) & set(p),
                       10, message=f"reload {i}")
            pids = srv.wait_workers(1)
        wait_until(lambda: open_fds(srv.pid) == baseline, 10,
                   message=f"fd count back to {baseline} (now {open_fds(srv.pid)})")
        assert data(path, "show stats")["reloads"] == 20


def _socket_inodes(path: str) -> set[str]:
    """Inodes of the listening socket and of every connection accepted on it (/proc/net/unix
    shows the listener's path on accepted sockets too)."""
    with open("/proc/net/unix") as fh:
        return {f"socket:[{line.split()[6]}]" for line in fh
                if line.split()[-1] == path}


def _fd_targets(pid: int) -> set[str]:
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return targets


def test_children_do_not_inherit_the_control_fds(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        first = srv.wait_workers(1)[0]
        with connect(path) as sock:
            # This connection is open while the master forks the new worker.
            sock.sendall(encode({"id": 1, "command": "worker add"}))
            assert read_replies(sock, 1)[0]["status"] == "ok"
            second = next(p for p in srv.wait_workers(2) if p != first)
            inodes = _socket_inodes(path)
            assert len(inodes) == 2  # the listener and our connection
            assert inodes <= _fd_targets(srv.pid)
            assert not inodes & _fd_targets(first)
            # A child just forked holds the fds until its first steps close them: poll (a leak
            # never clears, so this still fails on one).
            assert wait_until(lambda: not inodes & _fd_targets(second), 10)


def test_stale_socket_is_replaced(tmp_path):
    path = tmp_path / "run" / "gunicorn.ctl"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound, never listening: a dead server's file
    with ctl_server(tmp_path) as srv:
        socket_of(srv)
        assert data(str(path), "show stats")["pid"] == srv.pid


def test_a_live_socket_is_not_stolen(tmp_path):
    with ctl_server(tmp_path) as first:
        path = socket_of(first)
        first.wait_for_log("Control socket listening")
        with ctl_server(tmp_path) as second:
            second.wait_for_log("another server is listening on")
            assert data(path, "show stats")["pid"] == first.pid
            assert get(second) == b"Hello, World!"


def test_unusable_path_logs_one_warning_and_serves(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with ctl_server(tmp_path, path=blocker / "sub" / "gunicorn.ctl") as srv:
        srv.wait_for_log("Control socket disabled: cannot create")
        assert get(srv) == b"Hello, World!"
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_log("Booting worker", count=2)  # the reload has run
        # Not repeated for an unchanged setting.
        assert srv.log().count("Control socket disabled") == 1


def test_usr2_child_leaves_the_socket_to_its_parent_until_promoted(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        srv.wait_workers(1)
        srv.send_signal(signal.SIGUSR2)
        new_master = wait_until(lambda: [p for p in children_of(srv.pid)
                                         if "Master.2" in _cmdline_log(srv, p)], 15,
                                message="new master")[0]
        assert data(path, "show stats")["pid"] == srv.pid
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0
        try:
            wait_until(lambda: _answering_pid(path) == new_master, 15, message="promotion")
        finally:
            if pid_alive(new_master):
                os.kill(new_master, signal.SIGTERM)
                wait_until(lambda: not pid_alive(new_master), 15, message="new master exit")


def _cmdline_log(srv: GunicornServer, pid: int) -> str:
    # The re-executed master logs "Starting gunicorn" with its own pid; Master.2 is implied
    # by being a child of the master that is not a worker (it has children of its own).
    return "Master.2" if f"[{pid}] [INFO] Starting gunicorn" in srv.log() else ""


def _answering_pid(path: str) -> int | None:
    try:
        return data(path, "show stats")["pid"]
    except OSError:
        return None
