"""systemd: LISTEN_FDS socket activation and sd_notify readiness."""

from __future__ import annotations

import os
import socket
import sys

from apps.arb_support import arb_server
from gunicorn.systemd import listen_fds, sd_notify
from harness import APPS, GunicornServer, wait_until


def test_listen_fds_only_for_our_pid():
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert listen_fds(environ=env) == [3, 4]
    assert env == {}


def test_listen_fds_ignores_another_pid():
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2"}
    assert listen_fds(environ=env) == []
    assert env == {"LISTEN_PID": "1", "LISTEN_FDS": "2"}


def test_listen_fds_without_activation():
    assert listen_fds(environ={}) == []
    assert listen_fds(environ={"LISTEN_PID": "x", "LISTEN_FDS": "1"}) == []


def test_sd_notify_sends_a_datagram(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert sd_notify("READY=1", environ={"NOTIFY_SOCKET": path})
        assert server.recv(100) == b"READY=1"


def test_sd_notify_abstract_namespace():
    name = f"gunicorn-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(b"\0" + name.encode())
        assert sd_notify("READY=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert server.recv(100) == b"READY=1"


def test_sd_notify_without_socket_or_with_a_dead_one(tmp_path):
    assert not sd_notify("READY=1", environ={})
    assert not sd_notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "none")})


def test_master_notifies_ready(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(15)
        srv = arb_server([], tmp_path, env={"NOTIFY_SOCKET": path}).start()
        try:
            assert server.recv(200).startswith(b"READY=1\n")
        finally:
            srv.stop()


def test_socket_activation(tmp_path):
    # arb_systemd_launch.py plays systemd: it binds, puts the socket on fd 3 and sets LISTEN_*.
    srv = GunicornServer([], command=[sys.executable, str(APPS / "arb_systemd_launch.py")],
                         env={"ARB_MARK_DIR": str(tmp_path)}).start()
    try:
        with socket.create_connection((srv.host, srv.port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200 OK")
        wait_until(lambda: f"Listening at: http://127.0.0.1:{srv.port}" in srv.log(), 5)
        assert srv.log().count("Listening at:") == 1  # the default bind was not used
    finally:
        srv.stop()
