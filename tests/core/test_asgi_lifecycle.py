"""Life of the asgi worker: lifespan modes, signals, graceful stop, heartbeat, max_requests,
event loops and TLS."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import threading
import time

import httpx
import pytest
from apps.asgi_client import connect, read_response, read_until_closed, serve
from harness import GunicornServer, wait_until


def lifecycle_log(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_lifespan_state_reaches_every_scope_and_shutdown_runs(tmp_path):
    log = tmp_path / "life.log"
    with serve("asgi_apps:app", env={"ASGI_TEST_LOG": str(log)}) as srv:
        scope = httpx.get(f"{srv.url}/scope", timeout=5).json()
        assert scope["state"] == {"greeting": "hello from lifespan"}
        assert lifecycle_log(log) == ["startup"]
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(10) == 0
    assert lifecycle_log(log) == ["startup", "shutdown"]


def test_lifespan_off_never_calls_the_app_with_lifespan(tmp_path):
    log = tmp_path / "life.log"
    with serve("asgi_apps:app", "--asgi-lifespan", "off",
               env={"ASGI_TEST_LOG": str(log)}) as srv:
        scope = httpx.get(f"{srv.url}/scope", timeout=5).json()
    assert scope["state"] is None and lifecycle_log(log) == []


def test_lifespan_auto_tolerates_an_app_without_lifespan():
    with serve("asgi_apps:no_lifespan") as srv:
        assert httpx.get(f"{srv.url}/", timeout=5).json() == {"state": None}
        assert "Exception in ASGI lifespan" not in srv.log()


@pytest.mark.parametrize("app, mode, message", [
    ("asgi_apps:no_lifespan", "on", "unsupported scope lifespan"),
    ("asgi_apps:startup_fails", "auto", "database unreachable"),
    ("asgi_apps:startup_fails", "on", "database unreachable"),
], ids=["on-unsupported", "auto-failed", "on-failed"])
def test_lifespan_startup_failure_halts_the_arbiter(app, mode, message):
    srv = GunicornServer(["-k", "asgi", "-w", "1", "--asgi-lifespan", mode, app])
    try:
        srv.start(wait=False)
        assert srv.wait_exit(20) == 4
        log = srv.log()
        assert "Application startup failed" in log and message in log
    finally:
        srv.stop()
        srv.tmp.cleanup()


def test_term_lets_the_in_flight_request_finish_and_closes_idle_ones(tmp_path):
    log = tmp_path / "life.log"
    with serve("asgi_apps:app", "--keep-alive", "30", env={"ASGI_TEST_LOG": str(log)}) as srv:
        idle = connect(srv)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle)[0] == 200
        busy = connect(srv)
        busy.sendall(b"GET /slow?t=1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "slow started" in httpx.get(f"{srv.url}/events", timeout=5).text)
        srv.send_signal(signal.SIGTERM)
        assert read_until_closed(idle, deadline=1.0) == b""  # closed at once
        status, headers, body, _ = read_response(busy)
        assert (status, body) == (200, b"slow done")
        assert headers["connection"] == "close"
        assert srv.wait_exit(10) == 0
        idle.close()
        busy.close()
    assert lifecycle_log(log) == ["startup", "shutdown"]


def test_graceful_timeout_drops_what_is_still_running():
    with serve("asgi_apps:app", "--graceful-timeout", "1") as srv, connect(srv) as sock:
        sock.sendall(b"GET /slow?t=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "slow started" in httpx.get(f"{srv.url}/events", timeout=5).text)
        start = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        assert read_until_closed(sock, deadline=10) == b""
        assert srv.wait_exit(10) == 0
        assert time.monotonic() - start < 5
        srv.wait_for_log("graceful timeout")


def test_quit_stops_at_once_without_lifespan_shutdown(tmp_path):
    log = tmp_path / "life.log"
    with serve("asgi_apps:app", env={"ASGI_TEST_LOG": str(log)}) as srv:
        assert httpx.get(f"{srv.url}/", timeout=5).status_code == 200
        srv.send_signal(signal.SIGQUIT)
        srv.wait_exit(10)
    assert lifecycle_log(log) == ["startup"]


def test_heartbeat_survives_an_app_awaiting_longer_than_timeout():
    with serve("asgi_apps:app", "--timeout", "1") as srv:
        pid = httpx.get(f"{srv.url}/pid", timeout=5).text
        assert httpx.get(f"{srv.url}/slow?t=3", timeout=10).text == "slow done"
        assert httpx.get(f"{srv.url}/pid", timeout=5).text == pid
        assert "WORKER TIMEOUT" not in srv.log().upper()


def test_max_requests_restarts_the_worker():
    with serve("asgi_apps:app", "--max-requests", "3") as srv, connect(srv) as sock:
        pids = set()
        for _ in range(3):
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body, _ = read_response(sock)
            pids.add(body)
        assert len(pids) == 1 and headers["connection"] == "close"
        srv.wait_for_log("Autorestarting worker")
        new = wait_until(lambda: _other_pid(srv, pids), timeout=15, message="new worker")
        assert new not in pids


def _other_pid(srv, old):
    try:
        pid = httpx.get(f"{srv.url}/pid", timeout=2).content
    except httpx.HTTPError:
        return None
    return pid if pid not in old else None


@pytest.mark.parametrize("loop, module", [("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_asgi_loop_setting(loop, module):
    pytest.importorskip(module)
    with serve("asgi_apps:app", "--asgi-loop", loop) as srv:
        assert httpx.get(f"{srv.url}/loop", timeout=5).text.startswith(module)
        assert httpx.get(f"{srv.url}/", timeout=5).text == "Hello, World!"


def test_pipelined_request_after_a_keep_alive_promise_is_served_during_stop():
    with serve("asgi_apps:app", "--keep-alive", "30") as srv, connect(srv) as sock:
        sock.sendall(b"GET /slow-stream?t=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "slow started" in httpx.get(f"{srv.url}/events", timeout=5).text)
        srv.send_signal(signal.SIGTERM)
        first = read_response(sock)
        second = read_response(sock)
        assert read_until_closed(sock) == b""
    assert first[1]["connection"] == "keep-alive" and first[2] == b"first;last"
    assert second[1]["connection"] == "close" and second[2] == b"Hello, World!"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls(tmp_path):
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(keyfile), "-out", str(certfile)],
                   check=True, capture_output=True)
    with serve("asgi_apps:app", "--certfile", str(certfile), "--keyfile", str(keyfile)) as srv:
        url = f"https://{srv.host}:{srv.port}"
        context = ssl.create_default_context(cafile=str(certfile))
        with httpx.Client(verify=context, timeout=5) as client:
            assert client.get(f"{url}/scope").json()["scheme"] == "https"
            payload = b"t" * 300_000
            assert client.post(f"{url}/echo", content=payload).content == payload
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            httpx.get(f"{url}/", verify=context, timeout=5).status_code)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200, 200, 200]
