"""Listeners: TCP v4/v6, unix (mode, unlink), fd://, inherited fds, address in use."""

from __future__ import annotations

import logging
import socket
import stat
import sys

import pytest
from apps.arb_support import arb_server
from gunicorn.config import Config
from gunicorn.errors import HaltServer
from gunicorn.sockets import adopt_fds, close_listeners, create_listeners
from harness import APPS, GunicornServer, free_port, wait_until

log = logging.getLogger("test_sockets")


def make_cfg(*binds: str, **settings: object) -> Config:
    cfg = Config(env={})
    if binds:
        cfg.set("bind", list(binds))
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def test_tcp_ipv4_listener_accepts_connections():
    port = free_port()
    [listener] = create_listeners(make_cfg(f"127.0.0.1:{port}"), log)
    try:
        assert str(listener) == f"http://127.0.0.1:{port}"
        assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not listener.sock.getblocking()
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        close_listeners([listener])


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_tcp_ipv6_listener():
    try:
        [listener] = create_listeners(make_cfg("[::1]:0"), log, retries=1)
    except HaltServer:
        pytest.skip("::1 is not configured here")
    try:
        assert listener.sock.family == socket.AF_INET6
        assert str(listener).startswith("http://[::1]:")
    finally:
        close_listeners([listener])


def test_reuse_port_sets_so_reuseport():
    [listener] = create_listeners(make_cfg("127.0.0.1:0", reuse_port=True), log)
    try:
        assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        close_listeners([listener])


def test_address_in_use_retries_then_halts(caplog):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(HaltServer, match=f"Could not bind 127.0.0.1:{port}: address in use"):
            create_listeners(make_cfg(f"127.0.0.1:{port}"), log, retries=2)
    assert caplog.text.count(f"Connection in use: 127.0.0.1:{port}") == 2


def test_a_failed_bind_closes_the_listeners_already_made(tmp_path):
    path = tmp_path / "ok.sock"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(HaltServer):
            create_listeners(make_cfg(f"unix:{path}", f"127.0.0.1:{port}"), log, retries=1)
    assert not path.exists()


def test_unix_socket_mode_follows_umask_and_is_unlinked_on_close(tmp_path):
    path = tmp_path / "srv.sock"
    [listener] = create_listeners(make_cfg(f"unix:{path}", umask="0o007"), log)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o770
    assert str(listener) == f"unix:{path}"
    listener.close(unlink=True)
    assert not path.exists()


def test_stale_unix_socket_is_replaced_but_a_live_one_is_not(tmp_path):
    path = tmp_path / "srv.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    [listener] = create_listeners(make_cfg(f"unix:{path}"), log)
    try:
        with pytest.raises(HaltServer):
            create_listeners(make_cfg(f"unix:{path}"), log, retries=1)
        assert path.exists()
    finally:
        listener.close()


def test_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("data")
    with pytest.raises(HaltServer, match="not a socket"):
        create_listeners(make_cfg(f"unix:{path}"), log)
    assert path.read_text() == "data"


def test_fd_bind_adopts_an_open_socket_and_never_unlinks(tmp_path):
    path = tmp_path / "fd.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    fd = sock.detach()
    [listener] = create_listeners(make_cfg(f"fd://{fd}"), log)
    assert listener.inherited
    assert listener.fileno() == fd
    listener.close(unlink=True)
    assert path.exists()


def test_adopt_fds_wraps_inherited_listeners():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    [listener] = adopt_fds([sock.detach()], make_cfg())
    try:
        assert listener.inherited
        assert str(listener) == f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def test_server_on_unix_socket_unlinks_it_on_stop(tmp_path):
    path = tmp_path / "srv.sock"
    srv = arb_server(["umask=0o077"], tmp_path, bind=f"unix:{path}").start(wait=False)
    try:
        wait_until(path.exists, 10, message="unix socket")
        srv.wait_workers(1)
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200 OK")
        assert srv.stop() == 0
        assert not path.exists()
    finally:
        srv.stop()


def test_server_on_fd_bind(tmp_path):
    srv = GunicornServer([], command=[sys.executable, str(APPS / "arb_fd_launch.py")],
                         env={"ARB_MARK_DIR": str(tmp_path)}).start()
    try:
        srv.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{srv.port}")
        with socket.create_connection((srv.host, srv.port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200 OK")
    finally:
        srv.stop()
