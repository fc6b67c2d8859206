"""The sync worker: one request per connection, max_requests, graceful stop."""

from __future__ import annotations

import http.client
import signal
import threading

from apps.wsgi_client import closed_by_peer, connect, exchange, read_response, serve
from harness import wait_until


def test_every_response_closes_the_connection():
    with serve(["wsgi_apps:app"]) as srv, connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = read_response(sock.makefile("rb"))
        assert resp.status == 200 and resp.header("Connection") == "close"
        assert closed_by_peer(sock)  # the pipelined second request is not served


def test_http10_and_unread_body_still_answered():
    with serve(["wsgi_apps:app"]) as srv:
        [resp] = exchange(srv, b"GET / HTTP/1.0\r\n\r\n")
        assert resp.status == 200
        # The app does not read this body; the close must not reset the response away.
        body = b"x" * 300_000
        [resp] = exchange(srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
        assert resp.body == b"Hello, World!"


def test_serves_many_clients_in_sequence():
    with serve(["wsgi_apps:app", "-w", "2"]) as srv:
        for _ in range(20):
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"Hello, World!"
            conn.close()


def test_max_requests_recycles_worker():
    with serve(["wsgi_apps:app", "--max-requests", "2"]) as srv:
        pids = [exchange(srv, b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")[0].body for _ in range(2)]
        assert pids[0] == pids[1]

        def new_pid():
            try:
                [resp] = exchange(srv, b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                return None
            return resp.body if resp.body != pids[0] else None
        wait_until(new_pid, timeout=15, message="a recycled worker")


def test_graceful_term_finishes_inflight_request():
    with serve(["wsgi_apps:app", "--graceful-timeout", "10"]) as srv:
        result = {}

        def slow():
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            conn.request("GET", "/slow?1")
            resp = conn.getresponse()
            result["status"], result["body"] = resp.status, resp.read()

        thread = threading.Thread(target=slow)
        thread.start()
        srv.wait_for_log("slow request started")
        srv.send_signal(signal.SIGTERM)
        thread.join(10)
        assert result == {"status": 200, "body": b"Hello, World!"}
        assert srv.wait_exit(15) == 0
