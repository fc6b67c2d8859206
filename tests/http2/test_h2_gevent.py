"""HTTP/2 on the gevent worker: the plugin's threaded driver with greenlets for threads (the
worker is its ThreadedHost). Real servers, real clients (h2, httpx, curl, h2load)."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import threading
from pathlib import Path

import h2.events
import httpx
import pytest
from harness import GunicornServer
from test_h2_server import RawClient, alpn_of, cert, curl  # noqa: F401 - cert is a fixture

pytest.importorskip("gevent")

HERE = Path(__file__).parent
H2C = ["-k", "gevent", "--http-protocols", "h2,h1", "--http2-cleartext", "both", "h2_apps:app"]


@pytest.fixture(scope="module")
def srv():
    with GunicornServer(H2C, cwd=HERE) as server:
        yield server


def test_prior_knowledge_upgrade_and_h1_on_one_port(srv):
    assert curl("--http2-prior-knowledge", srv.url + "/") == "hello HTTP/2.0"
    assert curl("--http2", srv.url + "/") == "hello HTTP/2.0"  # Upgrade: h2c
    assert curl("--http1.1", srv.url + "/") == "hello HTTP/1.1"


def test_streams_of_one_connection_run_concurrently():
    # 20 streams that each wait until all 20 are inside the application (tests/apps).
    with GunicornServer(["-k", "gevent", "--http-protocols", "h2,h1", "--http2-cleartext",
                         "prior-knowledge", "gevent_apps:app"], cwd=HERE) as server:
        client = RawClient(server.port)
        try:
            sids = list(range(1, 41, 2))
            for sid in sids:
                client.request(sid, "/together?20")
            assert client.read_until(lambda evs: all(client.ended(s)(evs) for s in sids), 30)
            assert [client.body(s) for s in sids] == [b"together"] * len(sids)
        finally:
            client.close()


def test_flow_controlled_bodies_both_ways(srv):
    body = os.urandom(300_000)  # beyond the default 64 KiB windows, in both directions
    client = RawClient(srv.port)
    try:
        client.request(1, "/echo", end=False, method="POST")
        rest = body
        while rest:
            n = min(client.conn.local_flow_control_window(1), client.conn.max_outbound_frame_size,
                    len(rest))
            if n <= 0:
                assert client.read_until(lambda evs: client.conn.local_flow_control_window(1) > 0)
                continue
            client.conn.send_data(1, rest[:n])
            client.flush()
            rest = rest[n:]
        client.conn.end_stream(1)
        client.flush()
        acked = 0

        def credit_and_check(evs: list) -> bool:
            nonlocal acked
            for ev in client.of(h2.events.DataReceived, 1)[acked:]:
                client.conn.acknowledge_received_data(ev.flow_controlled_length, 1)
                acked += 1
            return client.ended(1)(evs)

        assert client.read_until(credit_and_check, 15)
        assert client.body(1) == body
    finally:
        client.close()


def test_h2load_smoke(srv):
    if shutil.which("h2load") is None:
        pytest.skip("h2load (nghttp2-client) missing")
    out = subprocess.run(["h2load", "-n", "1000", "-c", "20", "-m", "10", srv.url + "/"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "1000 succeeded, 0 failed, 0 errored" in out, out


def test_many_short_connections_release_their_greenlets(srv):
    for _ in range(30):
        assert curl("--http2-prior-knowledge", srv.url + "/") == "hello HTTP/2.0"
    assert curl("--http1.1", srv.url + "/") == "hello HTTP/1.1"
    assert "Unexpected error" not in srv.log()


def test_graceful_stop_lets_an_inflight_stream_finish():
    server = GunicornServer([*H2C, "--graceful-timeout", "10"], cwd=HERE).start()
    try:
        proc = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge",
                                 server.url + "/sleep?1"], stdout=subprocess.PIPE)
        server.wait_for_log("H2-SLEEP-STARTED 1")
        server.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert out == b"slept"
        assert server.wait_exit(15) == 0
    finally:
        server.stop()


def test_graceful_stop_sends_goaway_to_an_idle_connection():
    server = GunicornServer([*H2C, "--graceful-timeout", "10"], cwd=HERE).start()
    client = RawClient(server.port)
    try:
        client.request(1, "/")
        assert client.read_until(client.ended(1))
        server.send_signal(signal.SIGTERM)
        assert client.read_until(lambda evs: client.of(h2.events.ConnectionTerminated), 10)
        assert client.of(h2.events.ConnectionTerminated)[0].error_code == 0
        assert server.wait_exit(15) == 0
    finally:
        client.close()
        server.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl needed for a test cert")
def test_tls_alpn_h2_with_httpx(cert):  # noqa: F811
    certfile, keyfile = cert
    with GunicornServer(["-k", "gevent", "--http-protocols", "h2,h1", "--certfile", certfile,
                         "--keyfile", keyfile, "h2_apps:app"], cwd=HERE) as server:
        assert alpn_of(server.port, certfile) == "h2"
        url = f"https://127.0.0.1:{server.port}"
        with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=certfile), timeout=10) as client:
            resp = client.get(url + "/env")
            assert resp.http_version == "HTTP/2"
            assert resp.json()["wsgi.url_scheme"] == "https"
            assert len(client.get(url + "/big?200000").content) == 200000
            results: list[bytes] = []

            def one() -> None:
                results.append(client.get(url + "/sleep?1").content)

            threads = [threading.Thread(target=one) for _ in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert results == [b"slept"] * 10
        with httpx.Client(http2=False, verify=ssl.create_default_context(cafile=certfile), timeout=10) as client:
            assert client.get(url + "/").text == "hello HTTP/1.1"
