"""The workers that keep connections (gthread, and gevent with a greenlet per connection):
keep-alive, pipelining, worker_connections, graceful and quick stops, max_requests."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time

import pytest
from apps.wsgi_client import GEVENT, closed_by_peer, connect, exchange, read_response, serve
from harness import wait_until


@pytest.fixture(params=["gthread", GEVENT])
def worker(request):
    return request.param


def test_keepalive_reuses_one_connection(worker):
    with serve(["wsgi_apps:app", "--threads", "2"], worker=worker) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        pids = set()
        for _ in range(5):
            conn.request("GET", "/pid")
            resp = conn.getresponse()
            assert resp.getheader("Connection") == "keep-alive"
            pids.add(resp.read())
            conn.request("POST", "/echo", body=b"x" * 100)
            assert conn.getresponse().read() == b"x" * 100
        local = conn.sock.getsockname()
        conn.request("GET", "/")
        conn.getresponse().read()
        assert conn.sock.getsockname() == local  # never reconnected
        conn.close()


def test_pipelined_requests_answered_in_order(worker):
    with serve(["wsgi_apps:app", "--threads", "4"], worker=worker) as srv:
        requests = (b"GET /slow?0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2\r\nde\r\n0\r\n\r\n"
                    b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /status?204 HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        responses = exchange(srv, requests, count=6,
                             methods=["GET", "POST", "POST", "HEAD", "GET", "GET"])
        assert [r.status for r in responses] == [200, 200, 200, 200, 204, 200]
        assert [r.body for r in responses] == [b"Hello, World!", b"abc", b"de", b"", b"",
                                               b"Hello, World!"]
        assert responses[-1].header("Connection") == "close"


def test_pipelined_bytes_in_random_pieces(worker):
    with serve(["wsgi_apps:app"], worker=worker) as srv, connect(srv) as sock:
        data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3
        for i in range(0, len(data), 7):
            sock.sendall(data[i:i + 7])
            time.sleep(0.005)  # pacing the writes, not synchronising: the reads below wait
        f = sock.makefile("rb")
        assert [read_response(f).body for _ in range(3)] == [b"Hello, World!"] * 3


def test_idle_keepalive_connection_expires(worker):
    with serve(["wsgi_apps:app", "--keep-alive", "1"], worker=worker) as srv, \
            connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock.makefile("rb"))
        start = time.monotonic()
        sock.settimeout(5)
        assert closed_by_peer(sock)
        assert 0.5 < time.monotonic() - start < 3.5


def test_keepalive_zero_closes_after_each_response(worker):
    with serve(["wsgi_apps:app", "--keep-alive", "0"], worker=worker) as srv:
        [resp] = exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.header("Connection") == "close"


def test_worker_connections_limit_queues_new_clients(worker):
    args = ["wsgi_apps:app", "--threads", "2", "--worker-connections", "2", "--keep-alive", "30"]
    with serve(args, worker=worker) as srv:
        held = [connect(srv), connect(srv)]
        for sock in held:  # two parked keep-alive connections fill the worker
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(sock.makefile("rb"))
        third = connect(srv, timeout=10)  # accepted by the kernel backlog, not by the worker
        third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        third.settimeout(0.5)
        with pytest.raises(socket.timeout):
            third.recv(1)
        held[0].close()  # a slot frees: the waiting client is served, never dropped
        third.settimeout(10)
        resp = read_response(third.makefile("rb"))
        assert resp.status == 200
        for sock in (held[1], third):
            sock.close()


def test_graceful_term_finishes_inflight_and_closes_idle(worker):
    with serve(["wsgi_apps:app", "--threads", "2", "--keep-alive", "30",
                "--graceful-timeout", "10"], worker=worker) as srv:
        idle = connect(srv)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(idle.makefile("rb"))
        result = {}

        def slow():
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            conn.request("GET", "/slow?1.5")
            resp = conn.getresponse()
            result["status"], result["body"] = resp.status, resp.read()

        thread = threading.Thread(target=slow)
        thread.start()
        srv.wait_for_log("slow request started")
        srv.send_signal(signal.SIGTERM)
        idle.settimeout(5)
        assert closed_by_peer(idle)  # idle keep-alive closed at once, not after 30 s
        thread.join(10)
        assert result == {"status": 200, "body": b"Hello, World!"}
        assert srv.wait_exit(15) == 0


def test_quit_stops_at_once(worker):
    with serve(["wsgi_apps:app", "--graceful-timeout", "30"], worker=worker) as srv:
        sock = connect(srv)
        sock.sendall(b"GET /slow?20 HTTP/1.1\r\nHost: x\r\n\r\n")
        srv.wait_for_log("slow request started")
        start = time.monotonic()
        srv.send_signal(signal.SIGQUIT)
        srv.wait_exit(10)
        assert time.monotonic() - start < 5
        sock.close()


def test_max_requests_recycles_worker(worker):
    with serve(["wsgi_apps:app", "--max-requests", "3"], worker=worker) as srv:
        first = {exchange(srv, b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0]
                 .body for _ in range(3)}
        assert len(first) == 1

        def new_pid():
            try:
                [resp] = exchange(srv, b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                return None
            return resp.body if resp.body not in first else None
        wait_until(new_pid, timeout=15, message="a recycled worker")
        srv.wait_for_log("Autorestarting worker")
