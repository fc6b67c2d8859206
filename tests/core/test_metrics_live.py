"""The metrics the drivers move while they serve, through real servers and real clients:
requests in flight, idle keep-alive connections, WebSocket sessions, chunked request bodies;
and the request id echoed in responses and written in websocket access lines."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading

import pytest
from harness import GunicornServer, wait_until
from metrics_scrape import metrics_server, wait_booted, wait_metric
from websockets.sync.client import connect

WORKERS = {
    "sync": ["-k", "sync", "obs_apps:app"],
    "gthread": ["-k", "gthread", "--threads", "4", "obs_apps:app"],
    "asgi": ["-k", "asgi", "obs_apps:asgi_app"],
}
CONCURRENT = ["gthread", "asgi"]  # a sync worker holds one request at a time


def get(srv, path, headers=None, timeout=30.0):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("worker", CONCURRENT, ids=CONCURRENT)
def test_requests_in_flight_while_the_app_holds_them(worker, tmp_path):
    hold = tmp_path / "release"
    with metrics_server(["-w", "1", *WORKERS[worker]], env={"OBS_HOLD": str(hold)}) as srv, \
            contextlib.ExitStack() as release:
        release.callback(hold.touch)  # a failing test must not leave requests held
        wait_booted(srv, 1)
        answers = []
        clients = [threading.Thread(target=lambda: answers.append(get(srv, "/hold")[0]))
                   for _ in range(3)]
        for client in clients:
            client.start()
        wait_metric(srv, "gunicorn_requests_in_flight", 3, worker_class=worker)
        hold.touch()
        for client in clients:
            client.join(30)
        wait_metric(srv, "gunicorn_requests_in_flight", 0, worker_class=worker)
    assert answers == [200, 200, 200]


@pytest.mark.parametrize("worker", CONCURRENT, ids=CONCURRENT)
def test_idle_keepalive_connections_are_counted(worker):
    with metrics_server(["-w", "1", "--keep-alive", "60", *WORKERS[worker]]) as srv:
        wait_booted(srv, 1)
        conns = [http.client.HTTPConnection(srv.host, srv.port, timeout=10) for _ in range(3)]
        for _ in range(2):  # a second request on each: woken and parked again
            for conn in conns:
                conn.request("GET", "/")
                assert conn.getresponse().read()
        wait_metric(srv, "gunicorn_keepalive_connections", 3, worker_class=worker)
        for conn in conns:
            conn.close()
        wait_metric(srv, "gunicorn_keepalive_connections", 0, worker_class=worker)


def test_websocket_sessions_open_and_ended_by_close_code():
    with metrics_server(["-w", "1", *WORKERS["asgi"]]) as srv:
        wait_booted(srv, 1)
        url = f"ws://{srv.host}:{srv.port}/ws"
        with connect(url, open_timeout=10) as first, connect(url, open_timeout=10) as second:
            first.send("hello")
            assert first.recv(timeout=10) == "hello"
            wait_metric(srv, "gunicorn_websocket_sessions", 2, worker_class="asgi")
            second.send("close 4003")  # the application closes it with its own code
            with contextlib.suppress(Exception):
                second.recv(timeout=10)
            wait_metric(srv, "gunicorn_websocket_sessions", 1, worker_class="asgi")
        wait_metric(srv, "gunicorn_websocket_sessions", 0, worker_class="asgi")
        families = wait_metric(srv, "gunicorn_websocket_sessions_closed", 2,
                               "gunicorn_websocket_sessions_closed_total", worker_class="asgi")
    ended = {s.labels["close_code"]: s.value
             for s in families["gunicorn_websocket_sessions_closed"].samples
             if s.name == "gunicorn_websocket_sessions_closed_total"}
    assert ended == {"1000": 1.0, "4xxx": 1.0}


@pytest.mark.parametrize("worker", ["sync", "asgi"], ids=["sync", "asgi"])
def test_chunked_request_bodies_are_counted(worker):
    body = b"x" * 3000
    with metrics_server(["-w", "1", *WORKERS[worker]]) as srv:
        wait_booted(srv, 1)
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        conn.request("POST", "/body", body=iter([body[:1000], body[1000:]]),
                     encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        assert json.loads(conn.getresponse().read()) == {"read": 3000}
        conn.request("POST", "/body", body=b"y" * 500)  # Content-Length: as before
        assert json.loads(conn.getresponse().read()) == {"read": 500}
        conn.close()
        wait_metric(srv, "gunicorn_request_body_bytes", 3500,
                    "gunicorn_request_body_bytes_total", worker_class=worker)


@pytest.mark.parametrize("worker", ["sync", "gthread", "asgi"], ids=["sync", "gthread", "asgi"])
def test_request_id_is_echoed_when_asked(worker):
    args = ["-w", "1", "--request-id-response-header", "X-Request-ID", *WORKERS[worker]]
    with GunicornServer(args) as srv:
        srv.wait_workers(1)
        status, headers, body = get(srv, "/")
        echoed = [v for k, v in headers if k.lower() == "x-request-id"]
        assert status == 200 and echoed == [json.loads(body)["request_id"]]
        # From a trusted peer (loopback is in forwarded_allow_ips) the inbound id is kept.
        _, headers, _ = get(srv, "/", {"X-Request-ID": "abc-123"})
        assert [v for k, v in headers if k.lower() == "x-request-id"] == ["abc-123"]
        # The application's own header wins, and is not doubled.
        _, headers, _ = get(srv, "/own-id")
        assert [v for k, v in headers if k.lower() == "x-request-id"] == ["from-the-app"]


def test_request_id_is_not_echoed_by_default():
    with GunicornServer(["-w", "1", *WORKERS["sync"]]) as srv:
        srv.wait_workers(1)
        _, headers, _ = get(srv, "/")
    assert not [k for k, _ in headers if k.lower() == "x-request-id"]


def test_websocket_access_line_carries_the_request_id(tmp_path):
    access = tmp_path / "access.log"
    args = ["-w", "1", "--access-logfile", str(access),
            "--access-logformat", "%(r)s %(s)s id=%(request_id)s", *WORKERS["asgi"]]
    with GunicornServer(args) as srv:
        srv.wait_workers(1)
        with connect(f"ws://{srv.host}:{srv.port}/ws", open_timeout=10,
                     additional_headers={"X-Request-ID": "ws-id-42"}) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "hi"
        line = wait_until(lambda: [ln for ln in access.read_text().splitlines()
                                   if ln.startswith("GET /ws ")] if access.exists() else None,
                          timeout=10, message="the websocket's access line")[0]
    assert line == "GET /ws HTTP/1.1 101 id=ws-id-42"
