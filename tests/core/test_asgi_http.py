"""The asgi worker over HTTP/1.1: framing, keep-alive, pipelining, errors, scope, extensions."""

from __future__ import annotations

import json

import httpx
import pytest
from apps.asgi_client import connect, read_response, read_until_closed, request, serve


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def srv(request):
    pytest.importorskip(request.param)
    with serve("asgi_apps:app", "--keep-alive", "5", "--asgi-loop", request.param) as server:
        yield server


def test_hello_and_default_headers(srv):
    resp = httpx.get(f"{srv.url}/", timeout=5)
    assert resp.status_code == 200 and resp.text == "Hello, World!"
    assert resp.headers["server"].startswith("gunicorn/")
    assert "date" in resp.headers and resp.headers["connection"] == "keep-alive"
    assert resp.http_version == "HTTP/1.1"


def test_keep_alive_reuses_one_connection(srv):
    with connect(srv) as sock:
        for _ in range(5):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body, rest = read_response(sock)
            assert (status, body, rest) == (200, b"Hello, World!", b"")


def test_pipelined_requests_answered_in_order(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                     b"GET /chunks?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Connection: close\r\n\r\nthree")
        data = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"\r\n\r\none") < data.index(b"chunk0;") < data.index(b"\r\n\r\nthree")
    assert data.rstrip().endswith(b"three")


def test_app_asking_connection_close_gets_it(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /close-me HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, _ = read_response(sock)
        assert (status, headers["connection"], body) == (200, "close", b"bye")
        assert read_until_closed(sock) == b""


def test_http10_request_closes(srv):
    data = request(srv, b"GET / HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


def test_chunked_request_and_response_bodies(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /stream-echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == b"hello world"


def test_streaming_request_body_arrives_in_pieces(srv):
    def gen():
        for i in range(20):
            yield b"%03d," % i

    resp = httpx.post(f"{srv.url}/stream-echo", content=gen(), timeout=5)
    assert resp.text == "".join(f"{i:03d}," for i in range(20))


def test_large_body_echo(srv):
    payload = bytes(range(256)) * 8192  # 2 MiB
    resp = httpx.post(f"{srv.url}/echo", content=payload, timeout=10)
    assert resp.content == payload


def test_expect_100_continue(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        status, _, _, rest = read_response(sock)
        assert status == 100 and rest == b""
        sock.sendall(b"ping")
        status, _, body, _ = read_response(sock)
    assert (status, body) == (200, b"ping")


def test_unread_body_is_drained_and_connection_kept(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST /pid HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(sock)
        second = read_response(sock)
    assert first[0] == 200 and second[2] == b"Hello, World!"


@pytest.mark.parametrize("raw, status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
    (b"get / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n", 400),
], ids=["dup-cl", "te-smuggle", "te-unknown", "expect", "long-line", "many-headers",
        "lower-method", "space-in-name", "proxy-off"])
def test_parser_errors_get_the_wsgi_statuses(srv, raw, status):
    data = request(srv, raw)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"Connection: close" in data


def test_bad_chunk_while_app_reads_gives_400(srv):
    data = request(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"zz\r\nhello\r\n0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("path", ["/raise", "/bad-header", "/no-response", "/bad-hints"])
def test_app_failure_before_start_is_a_bare_500(srv, path):
    resp = httpx.get(f"{srv.url}{path}", timeout=5)
    assert resp.status_code == 500
    assert "secret" not in resp.text and "Injected" not in str(resp.headers)


def test_app_failure_after_start_closes_the_connection(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /raise-after HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"partial")


def test_server_log_has_the_traceback_not_the_client(srv):
    httpx.get(f"{srv.url}/raise", timeout=5)
    srv.wait_for_log("secret-internal-detail")


def test_early_hints_then_final_response(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _, _ = read_response(sock)
        assert status == 103 and headers["link"] == "</style.css>; rel=preload; as=style"
        status, _, body, _ = read_response(sock)
    assert (status, body) == (200, b"after hints")


def test_early_hints_not_sent_to_http10(srv):
    data = request(srv, b"GET /early-hints HTTP/1.0\r\n\r\n")
    assert b"103" not in data.split(b"\r\n")[0] and data.startswith(b"HTTP/1.1 200")


def test_informational_other_than_103_is_refused(srv):
    data = request(srv, b"GET /bad-hints?status=102 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 500")
    data = request(srv, b"GET /bad-hints?status=103&inject=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 500") and b"X-Injected" not in data


def test_trailers_sent_when_client_accepts_them(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert body == b"part1,part2" and headers["_trailers"] == "x-checksum: abc123"


def test_trailers_dropped_without_te(srv):
    with connect(srv) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert body == b"part1,part2" and headers["_trailers"] == ""


def test_scope_fields(srv):
    resp = httpx.get(f"{srv.url}/scope?a=1&b=%20", headers={"X-Thing": "v"}, timeout=5)
    scope = resp.json()
    assert scope["type"] == "http" and scope["http_version"] == "1.1"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["path"] == "/scope" and scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20" and scope["root_path"] == ""
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", srv.port]
    assert ["x-thing", "v"] in scope["headers"]
    assert "http.response.trailers" in scope["extensions"]


def test_percent_encoded_path_is_decoded_raw_path_is_not(srv):
    data = request(srv, b"GET /sc%6fpe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    scope = json.loads(data.partition(b"\r\n\r\n")[2])
    assert scope["path"] == "/scope" and scope["raw_path"] == "/sc%6fpe"


def test_head_request_has_no_body(srv):
    resp = httpx.head(f"{srv.url}/", timeout=5)
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["content-length"] == "13"


def test_pathsend(srv, tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"0123456789" * 20000)
    resp = httpx.get(f"{srv.url}/pathsend", params={"file": str(target)}, timeout=5)
    assert resp.content == target.read_bytes()


def test_root_path_and_scheme_from_trusted_proxy():
    with serve("asgi_apps:app", "--root-path", "/mounted", "--forwarded-allow-ips",
               "127.0.0.1") as srv:
        scope = httpx.get(f"{srv.url}/scope", headers={"X-Forwarded-Proto": "https"},
                          timeout=5).json()
    assert scope["root_path"] == "/mounted" and scope["path"] == "/mounted/scope"
    assert scope["raw_path"] == "/mounted/scope" and scope["scheme"] == "https"


def test_scheme_header_ignored_from_untrusted_peer():
    with serve("asgi_apps:app", "--forwarded-allow-ips", "10.0.0.1") as srv:
        scope = httpx.get(f"{srv.url}/scope", headers={"X-Forwarded-Proto": "https"},
                          timeout=5).json()
    assert scope["scheme"] == "http"


def test_access_log_and_request_hooks(tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text(
        "def pre_request(worker, req):\n"
        "    worker.log.info('PRE %s %s', req.method, req.path)\n"
        "def post_request(worker, req, environ, resp):\n"
        "    worker.log.info('POST %s %s', req.path, resp.status_code)\n")
    with serve("asgi_apps:app", "-c", str(conf), "--access-logfile", "-") as srv:
        httpx.get(f"{srv.url}/scope?q=1", headers={"User-Agent": "tester/1"}, timeout=5)
        srv.wait_for_log(r"PRE GET /scope")
        srv.wait_for_log(r"POST /scope 200")
        lines = srv.wait_for_log(r'127\.0\.0\.1 .*"GET /scope\?q=1 HTTP/1\.1" 200 \d+ "-" "tester/1"')
    assert lines


def test_proxy_protocol_trusted_and_untrusted():
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"
    req = b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with serve("asgi_apps:app", "--proxy-protocol", "v1", "--proxy-allow-from", "127.0.0.1") as srv:
        scope = json.loads(request(srv, line + req).partition(b"\r\n\r\n")[2])
    assert scope["client"] == ["1.2.3.4", 1111] and scope["server"] == ["5.6.7.8", 2222]
    with serve("asgi_apps:app", "--proxy-protocol", "v1", "--proxy-allow-from", "10.9.9.9") as srv:
        # Same answer as WSGI (403), not gunicorn's ASGI 400.
        assert request(srv, line + req).startswith(b"HTTP/1.1 403 ")
