"""Flow control, disconnects and connection limits of the asgi worker, with real sockets."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from apps.asgi_client import connect, read_response, serve
from harness import wait_until


def events(srv) -> dict:
    return httpx.get(f"{srv.url}/events", timeout=5).json()


def stable_counter(srv) -> int:
    """Wait until the app's send counter stops moving (sends are paused), return it."""
    last = [-1]

    def settled():
        now = events(srv)["sends"]
        same = now == last[0]
        last[0] = now
        return same

    wait_until(settled, timeout=10, interval=0.3, message="send counter to settle")
    return last[0]


@pytest.fixture(params=["uvloop", "asyncio"])
def srv(request):
    pytest.importorskip(request.param)
    with serve("asgi_apps:app", "--keep-alive", "10", "--asgi-loop", request.param) as server:
        yield server


def test_slow_reader_pauses_the_apps_send(srv):
    blocks = 400  # 25 MiB: far more than the socket buffers hold
    with connect(srv) as sock:
        sock.sendall(f"GET /flood?n={blocks} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        paused_at = stable_counter(srv)
        assert 0 < paused_at < blocks
        received = 0
        deadline = time.monotonic() + 20
        while received < blocks * 65536 and time.monotonic() < deadline:
            received += len(sock.recv(1 << 20))
    assert events(srv)["sends"] == blocks


def test_app_not_reading_pauses_the_upload(srv):
    total = 32 << 20
    block = b"u" * (1 << 20)
    with connect(srv) as sock:
        sock.sendall(f"POST /gated-echo HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n"
                     .encode())
        wait_until(lambda: "gated" in events(srv)["events"], message="app waiting at the gate")
        sock.settimeout(0.5)
        sent = 0
        try:
            while sent < total:
                sent += sock.send(block)
        except TimeoutError:
            pass  # the server stopped reading: the kernel buffers are full
        assert sent < total
        httpx.get(f"{srv.url}/open", timeout=5)
        sock.settimeout(10)
        view = memoryview(block)
        while sent < total:
            sent += sock.send(view[: min(len(block), total - sent)])
        status, _, body, _ = read_response(sock, deadline=20)
    assert (status, body) == (200, str(total).encode())


def test_disconnect_mid_body_reaches_the_app(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /wait-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                     b"0123456789")
        wait_until(lambda: "body:10" in events(srv)["events"], message="first body piece")
    wait_until(lambda: "disconnect" in events(srv)["events"], message="http.disconnect")


@pytest.mark.parametrize("grace, low, high", [("1", 0.8, 2.5), ("0", -0.05, 0.8)],
                         ids=["grace-1s", "grace-0"])
def test_app_ignoring_disconnect_is_cancelled_after_grace(grace, low, high):
    with serve("asgi_apps:app", "--asgi-disconnect-grace-period", grace) as srv:
        with connect(srv) as sock:
            sock.sendall(b"GET /ignore-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: "started" in events(srv)["events"], message="app started")
        closed_at = time.time()
        found = wait_until(lambda: [e for e in events(srv)["events"] if e.startswith("cancel")],
                           timeout=10, message="app task cancelled")
    waited = float(found[0].split()[-1]) - closed_at
    assert low <= waited <= high


def test_worker_connections_makes_new_clients_wait_not_drop():
    with serve("asgi_apps:app", "--worker-connections", "1", "--keep-alive", "30") as srv:
        first = connect(srv)
        first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(first)[0] == 200
        with connect(srv) as second:  # the kernel completes the handshake (backlog)
            second.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            second.settimeout(0.5)
            with pytest.raises(TimeoutError):
                second.recv(1)  # not served while the first connection holds the only slot
            first.close()
            status, _, body, _ = read_response(second)
    assert (status, body) == (200, b"Hello, World!")


def test_requests_are_served_concurrently(srv):
    results = []

    def fetch():
        results.append(httpx.get(f"{srv.url}/slow?t=1", timeout=10).text)

    threads = [threading.Thread(target=fetch) for _ in range(5)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["slow done"] * 5
    assert time.monotonic() - start < 3


def test_idle_keep_alive_connection_is_closed_after_keepalive():
    with serve("asgi_apps:app", "--keep-alive", "1") as srv, connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        sock.settimeout(5)
        start = time.monotonic()
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
        assert 0.5 < time.monotonic() - start < 3


def test_client_that_never_sends_a_request_is_dropped():
    with serve("asgi_apps:app", "--keep-alive", "1") as srv:
        sock = socket.create_connection((srv.host, srv.port), timeout=15)
        sock.sendall(b"GET / HT")  # a head that never completes
        start = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - start < 14
        sock.close()


def test_large_pipelined_bodies(srv):
    bodies = [bytes([65 + i]) * (1 << 20) for i in range(3)]
    wire = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
                    % (len(body), body) for body in bodies)
    with connect(srv) as sock:
        sender = threading.Thread(target=sock.sendall, args=(wire,))
        sender.start()
        answers = [read_response(sock, deadline=20)[2] for _ in bodies]
        sender.join()
    assert answers == bodies
