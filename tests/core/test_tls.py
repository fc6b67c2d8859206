"""TLS on the sync, gthread and gevent workers: a self-signed certificate made for the test."""

from __future__ import annotations

import json
import shutil
import socket
import ssl

import httpx
import pytest
from apps.tls_support import make_cert
from apps.wsgi_client import GEVENT, read_response, serve

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command is needed to make a test certificate")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", params=["sync", "gthread", GEVENT])
def tls_srv(request, cert):
    certfile, keyfile = cert
    with serve(["wsgi_apps:app", "--certfile", str(certfile), "--keyfile", str(keyfile)],
               worker=request.param) as srv:
        srv.cafile = str(certfile)
        yield srv


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def test_https_get_and_post(tls_srv):
    url = f"https://{tls_srv.host}:{tls_srv.port}"
    with httpx.Client(verify=client_context(tls_srv.cafile), timeout=5) as client:
        assert client.get(f"{url}/").text == "Hello, World!"
        assert client.post(f"{url}/echo", content=b"x" * 100_000).content == b"x" * 100_000
        env = client.get(f"{url}/environ").json()
    assert env["wsgi.url_scheme"] == "https"


def test_file_wrapper_over_tls_is_not_sendfile(tls_srv, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 50_000)
    with httpx.Client(verify=client_context(tls_srv.cafile), timeout=5) as client:
        resp = client.get(f"https://{tls_srv.host}:{tls_srv.port}/file?{path}")
    assert resp.content == path.read_bytes()


def test_plain_http_on_tls_port_is_closed_and_server_survives(tls_srv):
    with socket.create_connection((tls_srv.host, tls_srv.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")
    ctx = client_context(tls_srv.cafile)
    with socket.create_connection((tls_srv.host, tls_srv.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        assert sock.selected_alpn_protocol() in (None, "http/1.1")
        sock.sendall(b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = read_response(sock.makefile("rb"))
    assert resp.status == 200 and json.loads(resp.body)["wsgi.url_scheme"] == "https"


def test_ssl_context_hook_is_used(cert, tmp_path):
    certfile, keyfile = cert
    conf = tmp_path / "tls_conf.py"
    conf.write_text(
        "def ssl_context(config, default_ssl_context_factory):\n"
        "    ctx = default_ssl_context_factory()\n"
        "    import ssl\n"
        "    ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    print('custom ssl context hook ran', flush=True)\n"
        "    return ctx\n")
    with serve(["-c", str(conf), "--certfile", str(certfile), "--keyfile", str(keyfile),
                "wsgi_apps:app"]) as srv:
        with httpx.Client(verify=client_context(str(certfile)), timeout=5) as client:
            assert client.get(f"https://{srv.host}:{srv.port}/").status_code == 200
        srv.wait_for_log("custom ssl context hook ran")
        old = client_context(str(certfile))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((srv.host, srv.port), timeout=5) as raw, \
                pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="127.0.0.1")
