"""Request serving behaviour shared by the sync and gthread workers, on a real server."""

from __future__ import annotations

import http.client
import json

import httpx
import pytest
from apps.wsgi_client import connect, exchange, read_response, serve

WORKERS = ["sync", "gthread"]


@pytest.fixture(scope="module", params=WORKERS)
def srv(request):
    extra = ["--threads", "4"] if request.param == "gthread" else []
    with serve(["wsgi_apps:app", *extra], worker=request.param) as server:
        server.worker = request.param
        yield server


def get(srv, path, method="GET", body=None, headers=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_get_hello(srv):
    status, headers, body = get(srv, "/")
    assert (status, body) == (200, b"Hello, World!")
    assert headers["Server"].startswith("gunicorn/")
    assert "Date" in headers


def test_post_with_content_length(srv):
    payload = bytes(range(256)) * 1000
    status, _, body = get(srv, "/echo", "POST", payload)
    assert status == 200 and body == payload


def test_post_chunked_with_httpx(srv):
    def parts():
        yield b"first,"
        yield b"second,"
        yield b"third"
    with httpx.Client(timeout=5) as client:
        resp = client.post(f"{srv.url}/echo", content=parts())
    assert resp.status_code == 200 and resp.content == b"first,second,third"


def test_readline_iteration_over_body(srv):
    status, _, body = get(srv, "/lines", "POST", b"a\nbb\n\nccc")
    assert json.loads(body)["lines"] == ["a\n", "bb\n", "\n", "ccc"]


def test_streamed_response_is_chunked(srv):
    [resp] = exchange(srv, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.body == b"".join(b"chunk%d\n" % i for i in range(5))


def test_write_callable_then_iterable(srv):
    assert get(srv, "/write")[2] == b"written returned"


def test_head_has_no_body(srv):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "13"
    conn.close()
    with connect(srv) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.endswith(b"\r\n\r\n") and data.count(b"\r\n\r\n") == 1  # nothing after


@pytest.mark.parametrize("code", ["204", "304"])
def test_no_body_statuses(srv, code):
    with connect(srv) as sock:
        sock.sendall(f"GET /status?{code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {code}".encode()) and rest == b""
    if code == "204":
        assert b"content-length" not in head.lower()


def test_expect_100_continue(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        f = sock.makefile("rb")
        interim = read_response(f)
        assert interim.status == 100
        sock.sendall(b"hello")
        final = read_response(f)
    assert (final.status, final.body) == (200, b"hello")


def test_early_hints(srv):
    hint, final = exchange(srv, b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
    assert hint.status == 103 and "preload" in hint.header("Link")
    assert final.status == 200 and final.body == b"Hello, World!"


def test_no_early_hints_for_http10(srv):
    [final] = exchange(srv, b"GET /hints HTTP/1.0\r\n\r\n")
    assert final.status == 200


def test_file_wrapper(srv, tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 4096 + b"tail"
    path.write_bytes(data)
    status, headers, body = get(srv, f"/file?{path}")
    assert status == 200 and body == data and headers["Content-Length"] == str(len(data))


def test_app_exception_gives_500_without_traceback(srv):
    status, _, body = get(srv, "/boom")
    assert status == 500
    assert b"secret-internal-detail" not in body and b"Traceback" not in body
    assert get(srv, "/")[0] == 200
    srv.wait_for_log("secret-internal-detail")  # the traceback went to the error log


def test_exception_after_headers_closes_connection(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /boom_late HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # the message was never completed
    assert get(srv, "/")[0] == 200


def test_invalid_response_header_gives_500(srv):
    status, headers, _ = get(srv, "/bad_header")
    assert status == 500 and "Injected" not in headers


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 9000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: brotli\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n", 417),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     400),
], ids=["garbage", "header-space", "long-line", "long-header", "te-501", "expect-417", "cl-te"])
def test_malformed_request_gets_4xx_and_worker_keeps_serving(srv, request_bytes, status):
    [resp] = exchange(srv, request_bytes)
    assert resp.status == status
    assert resp.header("Connection") == "close"
    assert get(srv, "/")[0] == 200


def test_environ(srv):
    _, _, body = get(srv, "/environ?x=1&y=%20", headers={"X-Multi": "a"})
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "GET" and env["QUERY_STRING"] == "x=1&y=%20"
    assert env["RAW_URI"] == "/environ?x=1&y=%20" and env["PATH_INFO"] == "/environ"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["SERVER_PORT"] == str(srv.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1" and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is (srv.worker == "gthread")
    assert env["wsgi.input_terminated"] is True and env["HTTP_X_MULTI"] == "a"


def test_environ_joins_repeated_headers_and_decodes_path(srv):
    [resp] = exchange(srv, b"GET /env%69ron HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n"
                           b"X-Forwarded-For: 10.9.9.9\r\n\r\n")
    env = json.loads(resp.body)
    assert env["PATH_INFO"] == "/environ" and env["RAW_URI"] == "/env%69ron"
    assert env["HTTP_X_A"] == "1,2"
    assert env["REMOTE_ADDR"] == "127.0.0.1"  # never rewritten from X-Forwarded-For
