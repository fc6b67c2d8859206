"""``--protocol uwsgi`` behind a real nginx (``uwsgi_pass``), on the sync, gthread, gevent and asgi
workers.

nginx comes from tests/tools/ensure-tool.sh (Debian package); without it these tests skip and
say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apps.wsgi_client import needs_gevent
from harness import GunicornServer
from nginx import Nginx, require_nginx

WORKERS = [
    pytest.param(["-k", "sync"], id="sync"),
    pytest.param(["-k", "gthread", "--threads", "2"], id="gthread"),
    pytest.param(["-k", "gevent"], id="gevent", marks=needs_gevent),
    pytest.param(["-k", "asgi"], id="asgi"),
]

# One app module for both interfaces, written under tmp_path: every request answers a JSON
# summary of what the application saw, normalised so that WSGI and ASGI compare equal.
APP_SOURCE = textwrap.dedent('''
    import hashlib
    import json


    def _summary(method, path, query, client, scheme, headers, body, script_name=""):
        return json.dumps({
            "method": method, "path": path, "query": query, "remote": list(client),
            "script_name": script_name,
            "scheme": scheme, "x_foo": headers.get("x-foo"),
            "transfer_encoding": headers.get("transfer-encoding"),
            "body_len": len(body), "body_sha": hashlib.sha256(body).hexdigest(),
        }).encode()


    def app(environ, start_response):
        if environ["PATH_INFO"] == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (b"part%d\\n" % i for i in range(50))
        body = environ["wsgi.input"].read()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        out = _summary(environ["REQUEST_METHOD"], path, environ["QUERY_STRING"],
                       (environ["REMOTE_ADDR"], int(environ["REMOTE_PORT"])),
                       environ["wsgi.url_scheme"], headers, body, environ["SCRIPT_NAME"])
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]


    async def asgi_app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            for i in range(50):
                await send({"type": "http.response.body", "body": b"part%d\\n" % i,
                            "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        out = _summary(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                       scope["client"], scope["scheme"], headers, body)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})
''')


def write_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "uwsgi_app.py").write_text(APP_SOURCE)
    return directory


def app_spec(worker_args: list[str]) -> str:
    return "uwsgi_app:asgi_app" if "asgi" in worker_args else "uwsgi_app:app"


@pytest.fixture(scope="module", params=WORKERS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GunicornServer, Nginx, GunicornServer]]:
    """One gunicorn (1 worker, uwsgi) behind one nginx, shared by the tests of a worker class,
    and the same application served over plain HTTP to compare with."""
    require_nginx()
    tmp = tmp_path_factory.mktemp("uwsgi")
    app_dir = write_app(tmp / "app")
    args = ["-w", "1", "--log-level", "debug", *request.param, app_spec(request.param)]
    with GunicornServer(["--protocol", "uwsgi", *args], cwd=app_dir) as srv, \
            Nginx(tmp, f"{srv.host}:{srv.port}") as ng, \
            GunicornServer(args, cwd=app_dir) as direct:
        yield srv, ng, direct


def raw_get(host: str, port: int, target: bytes) -> dict[str, object]:
    """GET ``target`` sent byte for byte (httpx would percent-encode it); the JSON answer."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    seen = json.loads(body)
    del seen["remote"]
    return seen


def test_get_with_query_and_headers(stack):
    _, ng, _ = stack
    r = httpx.get(ng.url("/search?q=a%20b&x=1"), headers={"X-Foo": "bar"}, timeout=10)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("GET", "/search", "q=a%20b&x=1")
    assert seen["x_foo"] == "bar" and seen["scheme"] == "http"
    # REMOTE_ADDR is the client nginx served, not nginx's own connection to us.
    assert seen["remote"][0] == "127.0.0.1"


@pytest.mark.parametrize("target", [b"/caf%C3%A9/%C3%BC?%C3%A9=1",
                                    "/café/ü?é=1".encode(), b"/a%2Fb/%25/%7E"],
                         ids=["percent-encoded", "raw-utf8", "reserved"])
def test_non_ascii_path_arrives_as_over_http(stack, target):
    _, ng, direct = stack
    via_nginx = raw_get(ng.host, ng.port, target)
    assert via_nginx == raw_get(direct.host, direct.port, target)
    if target.startswith(b"/caf%"):
        assert (via_nginx["path"], via_nginx["query"]) == ("/café/ü", "%C3%A9=1")


def test_post_one_mebibyte(stack):
    _, ng, _ = stack
    body = os.urandom(1 << 20)
    r = httpx.post(ng.url("/upload"), content=body, timeout=20)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["body_len"] == len(body)
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()


def test_chunked_request_body_from_the_client(stack):
    _, ng, _ = stack
    parts = [os.urandom(n) for n in (1, 4000, 70000, 3)]

    def gen() -> Iterator[bytes]:
        yield from parts

    r = httpx.post(ng.url("/chunked"), content=gen(), timeout=20)
    assert r.status_code == 200, r.text
    seen = r.json()
    body = b"".join(parts)
    assert seen["body_len"] == len(body)
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()
    # nginx removed the coding: the application must not be told the body is chunked.
    assert seen["transfer_encoding"] is None


def test_streamed_response_without_length(stack):
    _, ng, _ = stack
    r = httpx.get(ng.url("/stream"), timeout=10)
    assert r.status_code == 200
    assert r.text == "".join(f"part{i}\n" for i in range(50))


def test_client_keep_alive_through_nginx(stack):
    _, ng, _ = stack
    with httpx.Client(timeout=10) as client:
        ports = set()
        for i in range(5):
            r = client.post(ng.url(f"/ka/{i}"), content=b"x" * i)
            assert r.status_code == 200
            seen = r.json()
            assert seen["path"] == f"/ka/{i}" and seen["body_len"] == i
            ports.add(seen["remote"][1])
    # One client connection to nginx carried every request.
    assert len(ports) == 1


@pytest.mark.parametrize("name, value", [("X-Forwarded-Proto", "https"),
                                         ("X-Forwarded-Ssl", "on"),
                                         ("X-Forwarded-Protocol", "ssl")],
                         ids=["proto", "ssl", "protocol"])
def test_a_client_cannot_claim_https_through_a_forwarded_header(stack, name, value):
    # nginx (127.0.0.1, a trusted forwarder by default) passes the client's header on as
    # HTTP_X_FORWARDED_*; it must not become the scheme.
    _, ng, _ = stack
    r = httpx.get(ng.url("/"), headers={name: value}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["scheme"] == "http"


@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize("param", ["UWSGI_SCHEME https", "HTTPS on"], ids=["uwsgi-scheme", "https"])
def test_the_scheme_comes_from_what_nginx_itself_sets(tmp_path, worker, param):
    require_nginx()
    args = ["--protocol", "uwsgi", "-w", "1", *worker, app_spec(worker)]
    with GunicornServer(args, cwd=write_app(tmp_path / "app")) as srv, \
            Nginx(tmp_path, f"{srv.host}:{srv.port}", extra=f"uwsgi_param {param};") as ng:
        r = httpx.get(ng.url("/"), headers={"X-Forwarded-Proto": "http"}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["scheme"] == "https"


def test_request_line_limit_answers_414(tmp_path):
    require_nginx()
    args = ["--protocol", "uwsgi", "-w", "1", "--limit-request-line", "100", "uwsgi_app:app"]
    with GunicornServer(args, cwd=write_app(tmp_path / "app")) as srv, \
            Nginx(tmp_path, f"{srv.host}:{srv.port}") as ng:
        assert httpx.get(ng.url("/short"), timeout=10).status_code == 200
        assert httpx.get(ng.url("/" + "a" * 200), timeout=10).status_code == 414


def test_unix_socket_peer_is_always_allowed(tmp_path):
    require_nginx()
    sock_path = tmp_path / "gunicorn.sock"
    srv = GunicornServer(["--protocol", "uwsgi", "-w", "1", "--uwsgi-allow-from", "10.0.0.1",
                          "uwsgi_app:app"], cwd=write_app(tmp_path / "app"))
    srv.args += ["-b", f"unix:{sock_path}"]
    with srv, Nginx(tmp_path, f"unix:{sock_path}") as ng:
        r = httpx.get(ng.url("/via-unix"), timeout=10)
        assert r.status_code == 200 and r.json()["path"] == "/via-unix"


def test_nginx_refused_by_the_allow_list_shows_403(tmp_path):
    require_nginx()
    args = ["--protocol", "uwsgi", "-w", "1", "--uwsgi-allow-from", "10.0.0.0/8",
            "uwsgi_app:app"]
    with GunicornServer(args, cwd=write_app(tmp_path / "app")) as srv, \
            Nginx(tmp_path, f"{srv.host}:{srv.port}") as ng:
        assert httpx.get(ng.url("/"), timeout=10).status_code == 403
        srv.wait_for_log(r"uwsgi: refused connection from \('127\.0\.0\.1'")


def test_script_name_parameter_mounts_a_wsgi_app(tmp_path):
    require_nginx()
    args = ["--protocol", "uwsgi", "-w", "1", "uwsgi_app:app"]
    with GunicornServer(args, cwd=write_app(tmp_path / "app")) as srv, \
            Nginx(tmp_path, f"{srv.host}:{srv.port}", extra="uwsgi_param SCRIPT_NAME /app;") as ng:
        seen = httpx.get(ng.url("/app/page?x=1"), timeout=10).json()
        assert (seen["script_name"], seen["path"], seen["query"]) == ("/app", "/page", "x=1")
