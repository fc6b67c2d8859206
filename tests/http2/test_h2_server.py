"""HTTP/2 on the gthread worker: real servers, real clients (h2, httpx, curl, h2load)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
from h2.errors import ErrorCodes
from harness import GunicornServer, run_gunicorn
from hyperframe.frame import GoAwayFrame, SettingsFrame
from test_h2_session import frames

HERE = Path(__file__).parent
H2C = ["-k", "gthread", "--threads", "4", "--http-protocols", "h2,h1", "h2_apps:app"]


def h2c_server(*extra, mode="both"):
    return GunicornServer([*H2C, "--http2-cleartext", mode, *extra], cwd=HERE)


@pytest.fixture(scope="module")
def srv():
    with h2c_server() as server:
        yield server


class RawClient:
    """An h2 client over a real socket, for protocol-level cases."""

    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def request(self, sid, path, end=True, method="GET"):
        self.conn.send_headers(sid, [(":method", method), (":scheme", "http"),
                                     (":path", path), (":authority", "t")], end_stream=end)
        self.flush()

    def read_until(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            done = pred(self.events)
            self.flush()  # whatever pred queued (credit, body) and the acks of receive_data
            if done:
                return True
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
            if not data:
                return False
            self.events += self.conn.receive_data(data)

    def of(self, kind, sid=None):
        return [e for e in self.events if isinstance(e, kind)
                and (sid is None or getattr(e, "stream_id", None) == sid)]

    def body(self, sid):
        return b"".join(e.data for e in self.of(h2.events.DataReceived, sid))

    def ended(self, sid):
        return lambda evs: any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                               and e.stream_id == sid for e in evs)

    def close(self):
        self.sock.close()


def curl(*args):
    out = subprocess.run(["curl", "-s", "--max-time", "5", *args], capture_output=True,
                         text=True, timeout=10)
    return out.stdout


def test_prior_knowledge_upgrade_and_h1_on_one_port(srv):
    assert curl("--http2-prior-knowledge", srv.url + "/") == "hello HTTP/2.0"
    assert curl("--http2", srv.url + "/") == "hello HTTP/2.0"  # Upgrade: h2c
    assert curl("--http1.1", srv.url + "/") == "hello HTTP/1.1"


def test_environ_and_header_policy(srv):
    out = curl("--http2-prior-knowledge", "-H", "Cookie: a=1", "-H", "Cookie: b=2",
               srv.url + "/env?q=1")
    env = json.loads(out)
    assert env["SERVER_PROTOCOL"] == "HTTP/2.0" and env["HTTP_VERSION"] == "2"
    assert env["HTTP_HOST"] == f"127.0.0.1:{srv.port}"
    assert env["QUERY_STRING"] == "q=1" and env["wsgi.multithread"] is True


def test_date_server_and_no_exception_text(srv):
    client = RawClient(srv.port)
    client.request(1, "/error")
    assert client.read_until(client.ended(1))
    (resp,) = client.of(h2.events.ResponseReceived, 1)
    headers = dict(resp.headers)
    assert headers[b":status"] == b"500" and b"server" in headers and b"date" in headers
    assert b"secret" not in client.body(1)
    client.close()


def h2_status(srv, path):
    client = RawClient(srv.port)
    try:
        client.request(1, path)
        assert client.read_until(client.ended(1))
        responses = client.of(h2.events.ResponseReceived, 1)
        return dict(responses[0].headers)[b":status"].decode() if responses else None
    finally:
        client.close()


def h1_status(srv, path):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", path)
        return str(conn.getresponse().status)
    finally:
        conn.close()


@pytest.mark.parametrize("status_of", [h1_status, h2_status], ids=["http1", "http2"])
def test_one_wsgi_exchange_for_both_protocols(srv, status_of):
    # The same PEP 3333 rules and error mapping whatever carries the request.
    before = len(re.findall("ResponseNotStarted", srv.log()))
    assert status_of(srv, "/no-start") == "500"
    srv.wait_for_log("ResponseNotStarted", count=before + 1)
    assert status_of(srv, "/oserror") == "500"  # the app's OSError is no client that left
    shorts = len(re.findall("body shorter than its Content-Length", srv.log()))
    with contextlib.suppress(http.client.IncompleteRead):
        status_of(srv, "/short")
    srv.wait_for_log("GET /short: body shorter than its Content-Length", count=shorts + 1)


def test_short_body_is_reset_not_ended(srv):
    client = RawClient(srv.port)
    client.request(1, "/short")
    assert client.read_until(client.ended(1))
    assert client.of(h2.events.StreamReset, 1) and not client.of(h2.events.StreamEnded, 1)
    client.close()


def test_streams_are_served_concurrently(srv):
    client = RawClient(srv.port)
    start = time.monotonic()
    for sid in (1, 3, 5):
        client.request(sid, "/sleep?0.6")
    assert client.read_until(lambda evs: all(client.ended(s)(evs) for s in (1, 3, 5)))
    assert time.monotonic() - start < 1.5
    client.close()


def test_flow_control_small_client_window(srv):
    client = RawClient(srv.port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.request(1, "/big?200000")
    # The client grants credit only as it reads; the server waits for it instead of failing.
    def take(evs):
        for e in evs:
            if isinstance(e, h2.events.DataReceived) and not getattr(e, "_acked", False):
                e._acked = True
                if not e.flow_controlled_length:
                    continue
                # Explicit credit, the way a slow reader would grant it.
                client.conn.increment_flow_control_window(e.flow_controlled_length)
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    client.conn.increment_flow_control_window(e.flow_controlled_length, 1)
        return client.ended(1)(evs)
    assert client.read_until(take)
    assert len(client.body(1)) == 200000
    assert all(len(e.data) <= 16384 for e in client.of(h2.events.DataReceived, 1))
    client.close()


def test_request_body_streams_and_echoes(srv):
    client = RawClient(srv.port)
    client.request(1, "/echo", end=False, method="POST")
    payload = b"z" * 300000
    sent = 0
    def pushed(evs):
        nonlocal sent
        for e in evs:  # grant credit for the echoed response as it arrives
            if isinstance(e, h2.events.DataReceived) and not getattr(e, "_acked", False):
                e._acked = True
                client.conn.acknowledge_received_data(e.flow_controlled_length, 1)
        while sent < len(payload) and client.conn.local_flow_control_window(1):
            window = client.conn.local_flow_control_window(1)
            n = min(window, 16384, len(payload) - sent)
            client.conn.send_data(1, payload[sent:sent + n], end_stream=sent + n == len(payload))
            sent += n
        client.flush()
        return client.ended(1)(evs)
    pushed([])
    assert client.read_until(pushed, timeout=10)
    assert client.body(1) == payload
    client.close()


def test_too_many_streams_refused_connection_survives():
    with h2c_server("--http2-max-concurrent-streams", "1") as server:
        client = RawClient(server.port)
        client.request(1, "/sleep?0.5")
        client.request(3, "/")  # beyond the limit (sent before we honour the SETTINGS)
        assert client.read_until(lambda evs: client.ended(1)(evs) and client.ended(3)(evs))
        (reset,) = client.of(h2.events.StreamReset, 3)
        assert reset.error_code == ErrorCodes.REFUSED_STREAM
        assert client.body(1) == b"slept"
        client.request(5, "/")
        assert client.read_until(client.ended(5))
        assert client.body(5) == b"hello HTTP/2.0"
        client.close()


def test_invalid_pseudo_header_resets_stream_only(srv):
    client = RawClient(srv.port)
    client.conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":bogus", "x"),
                                 (":scheme", "http")], end_stream=True)
    client.flush()
    assert client.read_until(client.ended(1))
    assert client.of(h2.events.StreamReset, 1)[0].error_code == ErrorCodes.PROTOCOL_ERROR
    client.request(3, "/")
    assert client.read_until(client.ended(3))
    client.close()


def test_oversized_frame_is_a_connection_error(srv):
    client = RawClient(srv.port)
    client.read_until(lambda evs: client.of(h2.events.RemoteSettingsChanged))
    client.conn.max_outbound_frame_size = 20000  # lie: the server allows 16384
    client.request(1, "/echo", end=False, method="POST")
    client.conn.outbound_flow_control_window = 10**6
    client.conn.streams[1].outbound_flow_control_window = 10**6
    client.conn.send_data(1, b"x" * 20000)
    client.flush()
    assert client.read_until(lambda evs: client.of(h2.events.ConnectionTerminated))
    assert client.of(h2.events.ConnectionTerminated)[0].error_code == \
        ErrorCodes.FRAME_SIZE_ERROR
    client.close()


def test_trailers_and_early_hints(srv):
    client = RawClient(srv.port)
    client.request(1, "/trailers")
    client.request(3, "/hints")
    assert client.read_until(lambda evs: client.ended(1)(evs) and client.ended(3)(evs))
    (trailers,) = client.of(h2.events.TrailersReceived, 1)
    assert trailers.headers == [(b"x-checksum", b"abc")]
    (hint,) = client.of(h2.events.InformationalResponseReceived, 3)
    assert (b":status", b"103") in hint.headers
    assert client.body(3) == b"hinted"
    client.close()


def test_no_body_for_204_and_head(srv):
    client = RawClient(srv.port)
    client.request(1, "/nocontent")
    client.request(3, "/", method="HEAD")
    assert client.read_until(lambda evs: client.ended(1)(evs) and client.ended(3)(evs))
    assert client.body(1) == b"" and client.body(3) == b""
    client.close()


def test_untrusted_peer_gets_plain_http1():
    with h2c_server("--forwarded-allow-ips", "10.9.9.9") as server:
        assert curl("--http2-prior-knowledge", server.url + "/") == ""
        assert curl("--http2", server.url + "/") == "hello HTTP/1.1"  # upgrade ignored


def test_graceful_stop_sends_goaway_and_finishes_in_flight():
    server = h2c_server("--graceful-timeout", "5").start()
    try:
        client = RawClient(server.port)
        client.request(1, "/sleep?1")
        server.wait_for_log("H2-SLEEP-STARTED 1")  # the stream reached the app
        server.send_signal(signal.SIGTERM)
        # h2's own client stops reading at GOAWAY, so this only checks the GOAWAY; the curl
        # test below checks that the in-flight response still arrives.
        assert client.read_until(lambda evs: client.of(h2.events.ConnectionTerminated), 8)
        assert client.of(h2.events.ConnectionTerminated)[0].error_code == 0
        assert server.wait_exit(10) == 0
    finally:
        server.stop()


def test_graceful_stop_curl_completes():
    server = h2c_server("--graceful-timeout", "5").start()
    try:
        proc = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge",
                                 server.url + "/sleep?1"], stdout=subprocess.PIPE)
        server.wait_for_log("H2-SLEEP-STARTED 1")  # in flight when the signal arrives
        server.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert out == b"slept"
    finally:
        server.stop()


@pytest.mark.parametrize(("worker", "app"), [("gthread", "h2_apps:app"),
                                             ("asgi", "test_h2_asgi_apps:app")])
@pytest.mark.parametrize("first", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/1.1\r\n"],
                         ids=["http1", "bad-preface"])
def test_h2_only_answers_an_invalid_preface_with_goaway(worker, app, first):
    # RFC 9113 §3.4: a connection error PROTOCOL_ERROR (never an HTTP/1.1 400), then the close.
    with GunicornServer(["-k", worker, "--http-protocols", "h2", "--http2-cleartext",
                         "prior-knowledge", app], cwd=HERE) as server:
        assert curl("--http2-prior-knowledge", server.url + "/").startswith("hello")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(first)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert not data.startswith(b"HTTP/")
        got = frames(data)
        assert [type(f) for f in got] == [SettingsFrame, GoAwayFrame]
        assert got[1].error_code == ErrorCodes.PROTOCOL_ERROR


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
def test_h2load_smoke(srv):
    out = subprocess.run(["h2load", "-n", "500", "-c", "4", "-m", "10", srv.url + "/"],
                         capture_output=True, text=True, timeout=30).stdout
    assert "500 succeeded, 0 failed, 0 errored" in out


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(keyfile), "-out", str(certfile)],
                   check=True, capture_output=True)
    return str(certfile), str(keyfile)


def alpn_of(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.selected_alpn_protocol()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl needed for a test cert")
def test_tls_alpn_h2_with_httpx_and_curl(cert):
    certfile, keyfile = cert
    with GunicornServer(["-k", "gthread", "--http-protocols", "h2,h1", "--certfile", certfile,
                         "--keyfile", keyfile, "h2_apps:app"], cwd=HERE) as server:
        assert alpn_of(server.port, certfile) == "h2"
        url = f"https://127.0.0.1:{server.port}"
        with httpx.Client(http2=True, verify=certfile) as client:
            resp = client.get(url + "/env")
            assert resp.http_version == "HTTP/2"
            assert resp.json()["wsgi.url_scheme"] == "https"
            big = client.get(url + "/big?100000")
            assert len(big.content) == 100000
        assert curl("--http2", "--cacert", certfile, url + "/") == "hello HTTP/2.0"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl needed for a test cert")
def test_sync_worker_never_advertises_h2(cert):
    certfile, keyfile = cert
    with GunicornServer(["-k", "sync", "--http-protocols", "h2,h1", "--certfile", certfile,
                         "--keyfile", keyfile, "h2_apps:app"], cwd=HERE) as server:
        assert alpn_of(server.port, certfile) == "http/1.1"
        server.wait_for_log("not supported by the sync worker")


def test_unknown_protocol_token_exits_2():
    result = run_gunicorn(["--http-protocols", "h9", "h2_apps:app"], cwd=HERE)
    assert result.returncode == 2 and "http_protocols" in result.stderr


def test_h2_without_the_plugin_exits_2():
    import gunicorn.cli as cli
    if "gunicorn.protocols" not in Path(cli.__file__).read_text():
        pytest.skip("needs gunicorn.cli to call gunicorn.protocols.check_config (lead)")
    result = run_gunicorn(["--disable-plugin", "http2", "--http-protocols", "h2,h1",
                           "h2_apps:app"], cwd=HERE)
    assert result.returncode == 2
    assert "http_protocols" in result.stderr and "pip install gunicorn-http2" in result.stderr
