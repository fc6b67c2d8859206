"""HTTP/2 on the asgi worker: real servers, real clients (h2 raw, curl, httpx, h2load)."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import h2.events
import h2.settings
import httpx
import pytest
from gunicorn.http2.plugin import PREFACE
from h2.errors import ErrorCodes
from harness import GunicornServer
from hyperframe.frame import DataFrame, Frame, GoAwayFrame
from test_h2_server import RawClient, cert, curl  # noqa: F401 - cert is a fixture

HERE = Path(__file__).parent
ASGI = ["-k", "asgi", "--http-protocols", "h2,h1"]


def asgi_server(*extra, mode="both", app="test_h2_asgi_apps:app"):
    return GunicornServer([*ASGI, "--http2-cleartext", mode, *extra, app], cwd=HERE)


@pytest.fixture(scope="module")
def srv():
    with asgi_server() as server:
        yield server


def both_ended(client, *sids):
    return lambda evs: all(client.ended(s)(evs) for s in sids)


def test_prior_knowledge_upgrade_and_h1_on_one_port(srv):
    assert curl("--http2-prior-knowledge", srv.url + "/") == "hello 2"
    assert curl("--http2", srv.url + "/") == "hello 2"  # Upgrade: h2c, stream 1
    assert curl("--http1.1", srv.url + "/") == "hello 1.1"


def test_scope_over_h2(srv):
    import json

    scope = json.loads(curl("--http2-prior-knowledge", srv.url + "/scope?q=1"))
    assert scope["http_version"] == "2" and scope["scheme"] == "http"
    assert scope["path"] == "/scope" and scope["query"] == "q=1"
    assert scope["host"] == f"127.0.0.1:{srv.port}"
    ext = scope["extensions"]
    assert {"http.response.trailers", "http.response.informational",
            "http.response.priority"} <= set(ext)
    assert ext["http.response.priority"] == {"weight": 16, "depends_on": 0}


def test_streams_run_concurrently(srv):
    # Each /barrier request waits for the other one of its group: both answer "met" only if
    # the application runs both streams at the same time.
    client = RawClient(srv.port)
    client.request(1, "/barrier?g=concurrent")
    client.request(3, "/barrier?g=concurrent")
    assert client.read_until(both_ended(client, 1, 3))
    assert client.body(1) == b"met" and client.body(3) == b"met"
    client.close()


def test_upload_credit_follows_the_application():
    with asgi_server("--http2-initial-window-size", "4096") as server:
        client = RawClient(server.port)
        client.read_until(lambda evs: client.of(h2.events.RemoteSettingsChanged))
        client.request(1, "/gated?g=up", end=False, method="POST")
        client.conn.send_data(1, b"a" * 4096)  # the whole stream window
        client.flush()
        # The application has not read: no credit for the stream may come back.
        with pytest.raises(TimeoutError):
            client.read_until(lambda evs: any(isinstance(e, h2.events.WindowUpdated)
                                              and e.stream_id == 1 for e in evs), timeout=0.5)
        client.sock.settimeout(5)
        client.request(3, "/release?g=up")
        assert client.read_until(lambda evs: any(isinstance(e, h2.events.WindowUpdated)
                                                 and e.stream_id == 1 for e in evs))
        sent = 4096
        def push(evs):
            nonlocal sent
            while sent < 40000 and client.conn.local_flow_control_window(1) > 0:
                n = min(client.conn.local_flow_control_window(1), 40000 - sent)
                client.conn.send_data(1, b"b" * n, end_stream=sent + n == 40000)
                sent += n
            return client.ended(1)(evs)
        assert client.read_until(push)
        chunks, total = client.body(1).decode().split()
        assert total == "total=40000" and int(chunks.split("=")[1]) > 1
        client.close()


def test_response_waits_for_the_client_window(srv):
    client = RawClient(srv.port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.request(1, "/big?n=100000")
    def credit(evs):
        for e in evs:
            if isinstance(e, h2.events.DataReceived) and not getattr(e, "_acked", False):
                e._acked = True
                if e.flow_controlled_length:
                    client.conn.acknowledge_received_data(e.flow_controlled_length, 1)
        return client.ended(1)(evs)
    assert client.read_until(credit)
    assert len(client.body(1)) == 100000
    assert all(len(e.data) <= 1000 for e in client.of(h2.events.DataReceived, 1))
    client.close()


def test_trailers_end_the_stream(srv):
    client = RawClient(srv.port)
    client.request(1, "/trailers")
    assert client.read_until(client.ended(1))
    (trailers,) = client.of(h2.events.TrailersReceived, 1)
    assert trailers.headers == [(b"x-checksum", b"abc")]
    assert trailers.stream_ended is not None  # END_STREAM is on the trailers HEADERS frame
    assert client.body(1) == b"body"
    client.close()


def test_early_hints_103(srv):
    client = RawClient(srv.port)
    client.request(1, "/hints")
    assert client.read_until(client.ended(1))
    (hint,) = client.of(h2.events.InformationalResponseReceived, 1)
    assert (b":status", b"103") in hint.headers and (b"link", b"</s.css>; rel=preload") in \
        hint.headers
    (resp,) = client.of(h2.events.ResponseReceived, 1)
    assert dict(resp.headers)[b":status"] == b"200" and client.body(1) == b"hinted"
    client.close()


def test_refused_stream_above_the_limit():
    with asgi_server("--http2-max-concurrent-streams", "1") as server:
        client = RawClient(server.port)
        client.request(1, "/barrier?g=refused")   # waits (alone) while stream 3 arrives
        client.request(3, "/")
        assert client.read_until(client.ended(3))
        (reset,) = client.of(h2.events.StreamReset, 3)
        assert reset.error_code == ErrorCodes.REFUSED_STREAM
        partner = RawClient(server.port)  # (this client now honours the limit of 1)
        partner.request(1, "/barrier?g=refused")
        assert client.read_until(client.ended(1)) and partner.read_until(partner.ended(1))
        assert client.body(1) == b"met" and partner.body(1) == b"met"
        client.close()
        partner.close()


def test_reset_mid_body_is_a_disconnect(srv):
    client = RawClient(srv.port)
    client.request(1, "/watch?g=rst", end=False, method="POST")
    client.conn.send_data(1, b"x" * 1000)
    client.flush()
    srv.wait_for_log("H12-WATCHING rst")
    client.conn.reset_stream(1, ErrorCodes.CANCEL)
    client.flush()
    srv.wait_for_log(r"H12-DISCONNECT rst after \d+", timeout=5)
    client.request(3, "/")  # the connection goes on
    assert client.read_until(client.ended(3)) and client.body(3) == b"hello 2"
    client.close()


def test_error_is_a_bare_500(srv):
    client = RawClient(srv.port)
    client.request(1, "/error")
    client.request(3, "/short")
    client.request(5, "/nocontent")
    assert client.read_until(both_ended(client, 1, 3, 5))
    (resp,) = client.of(h2.events.ResponseReceived, 1)
    headers = dict(resp.headers)
    assert headers[b":status"] == b"500" and b"server" in headers and b"date" in headers
    assert b"secret" not in client.body(1)
    # A body shorter than its Content-Length is reset, never ended as if complete.
    assert client.of(h2.events.StreamReset, 3)[0].error_code == ErrorCodes.INTERNAL_ERROR
    assert not client.of(h2.events.StreamEnded, 3)
    assert client.body(5) == b"" and client.of(h2.events.StreamEnded, 5)
    client.close()


def test_pathsend(srv, tmp_path):
    target = tmp_path / "blob.bin"
    target.write_bytes(bytes(range(256)) * 1000)
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "5",
                          f"{srv.url}/pathsend?file={target}"], capture_output=True,
                         timeout=10).stdout
    assert out == target.read_bytes()


def test_preface_trickled_byte_by_byte(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        for byte in PREFACE:
            sock.sendall(bytes([byte]))
        sock.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
        head = sock.recv(9)
        assert head[3] == 0x4  # the server's SETTINGS: it speaks HTTP/2


def read_frames(sock, until, timeout=8.0):
    """Raw frames (no client state machine, which stops at GOAWAY) until ``until(frames)``,
    the peer closes or resets, or ``timeout`` passes."""
    frames, buf = [], b""
    deadline = time.monotonic() + timeout
    while not until(frames):
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        buf += data
        while len(buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            frame.parse_body(memoryview(buf[9:9 + length]))
            frames.append(frame)
            buf = buf[9 + length:]
    return frames


def test_goaway_on_term_lets_the_stream_finish():
    server = asgi_server("--graceful-timeout", "5").start()
    try:
        client = RawClient(server.port)
        client.request(1, "/sleep?g=term&s=0.8")
        server.wait_for_log("H12-STARTED term")
        server.send_signal(signal.SIGTERM)
        def done(frames):
            return any(isinstance(f, DataFrame) and "END_STREAM" in f.flags
                       and f.stream_id == 1 for f in frames)
        frames = read_frames(client.sock, done)
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert goaways and goaways[0].error_code == 0 and goaways[0].last_stream_id == 1
        body = b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == 1)
        assert body == b"slept"
        assert frames.index(goaways[0]) < max(i for i, f in enumerate(frames)
                                              if isinstance(f, DataFrame))
        client.close()
        assert server.wait_exit(10) == 0
    finally:
        server.stop()


def test_untrusted_peer_gets_plain_http1():
    with asgi_server("--forwarded-allow-ips", "10.9.9.9") as server:
        assert curl("--http2-prior-knowledge", server.url + "/") == ""
        assert curl("--http2", server.url + "/") == "hello 1.1"  # the upgrade is ignored


def test_starlette_over_h2():
    with asgi_server(app="test_h2_asgi_apps:starlette_app") as server:
        with httpx.Client(http2=True, http1=False, base_url=server.url) as client:
            home = client.get("/")
            assert home.http_version == "HTTP/2"
            assert home.json() == {"http_version": "2", "host": f"127.0.0.1:{server.port}"}
            payload = bytes(range(256)) * 800
            assert client.post("/echo", content=payload).content == payload
            assert client.get("/stream").text == "".join(f"part{i};" for i in range(5))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl needed for a test cert")
def test_tls_alpn_h2_with_httpx(cert):  # noqa: F811 - the imported fixture
    certfile, keyfile = cert
    with GunicornServer([*ASGI, "--certfile", certfile, "--keyfile", keyfile,
                         "test_h2_asgi_apps:app"], cwd=HERE) as server:
        url = f"https://127.0.0.1:{server.port}"
        with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=certfile)) as client:
            resp = client.get(url + "/scope")
            assert resp.http_version == "HTTP/2" and resp.json()["scheme"] == "https"
            assert len(client.get(url + "/big?n=100000").content) == 100000
        with httpx.Client(http2=False, verify=ssl.create_default_context(cafile=certfile)) as client:
            assert client.get(url + "/").text == "hello 1.1"  # ALPN http/1.1


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
def test_h2load_no_failures(srv):
    out = subprocess.run(["h2load", "-n", "1000", "-c", "4", "-m", "10", srv.url + "/"],
                         capture_output=True, text=True, timeout=30).stdout
    assert "1000 succeeded, 0 failed, 0 errored" in out


def test_idle_connection_gets_goaway():
    with asgi_server("--keep-alive", "1") as server:
        client = RawClient(server.port)
        client.request(1, "/")
        assert client.read_until(client.ended(1))
        assert client.read_until(lambda evs: client.of(h2.events.ConnectionTerminated), 4)
        assert client.of(h2.events.ConnectionTerminated)[0].error_code == 0
        client.close()
