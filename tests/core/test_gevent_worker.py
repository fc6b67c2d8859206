"""The gevent worker with real gevent: concurrency under load, the HTTP/1.1 engine it shares with
sync and gthread, monkey-patching, signals, heartbeats and max_requests.

Keep-alive, pipelining, worker_connections and the graceful stop of idle connections are in
test_gthread (run on gthread and gevent); TLS, uwsgi behind nginx, Flask/Django and slow clients
are run on gevent by the modules that test them on the other workers (test_tls,
test_uwsgi_nginx, test_frameworks, test_slow_clients); HTTP/2 on gevent is in
tests/http2/test_h2_gevent.py.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import threading
import time

import pytest
from apps.wsgi_client import connect, exchange, read_response, serve
from harness import APPS, GunicornServer, run_gunicorn, wait_until
from test_tls import cert  # noqa: F401 - a fixture

pytest.importorskip("gevent")

APP = "gevent_apps:app"
CONCURRENT = 500


def gevent_server(*args: str, **kwargs: object):
    return serve([APP, *args], worker="gevent", **kwargs)


def get(srv: GunicornServer, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def in_background(srv: GunicornServer, path: str) -> tuple[threading.Thread, dict]:
    """GET ``path`` on a thread; the dict gets the status and body (or the error)."""
    result: dict = {}

    def run() -> None:
        try:
            result["status"], result["body"] = get(srv, path, timeout=30)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def serving_pid(srv: GunicornServer) -> int:
    status, body = get(srv, "/pid")
    assert status == 200
    return int(body)


# -- concurrency --------------------------------------------------------------------------------

async def _one_request(host: str, port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()  # the whole response: the server closes after it
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _burst(host: str, port: int, path: str, count: int) -> list:
    # Every connection is opened at once: count sockets in flight together.
    return await asyncio.gather(*(_one_request(host, port, path) for _ in range(count)),
                                return_exceptions=True)


def _allow_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


def test_one_worker_serves_500_concurrent_sleeping_requests_at_once():
    _allow_descriptors(4 * CONCURRENT)
    with gevent_server("-w", "1", "--worker-connections", "1000", "--backlog", "2048") as srv:
        assert get(srv, "/") == (200, b"Hello, World!")  # booted
        start = time.monotonic()
        results = asyncio.run(_burst(srv.host, srv.port, "/sleep?1", CONCURRENT))
        elapsed = time.monotonic() - start
    print(f"{CONCURRENT} concurrent requests of 1 s: {elapsed:.2f}s")
    failed = [r for r in results if isinstance(r, BaseException) or r != (200, b"slept")]
    assert not failed, failed[:5]
    # Served one at a time this would take 500 s: a functional concurrency check, not a speed
    # measurement (the bound is generous for a loaded machine).
    assert elapsed < 3.0, f"{CONCURRENT} requests of 1 s took {elapsed:.2f}s"


def test_a_client_stalled_mid_body_does_not_hold_up_the_others():
    # The connection code waits with select.poll, which the patching makes cooperative.
    with gevent_server() as srv, connect(srv) as stalled:
        stalled.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        for _ in range(3):
            assert get(srv, "/") == (200, b"Hello, World!")
        stalled.sendall(b"defghij")
        assert read_response(stalled.makefile("rb")).body == b"abcdefghij"


def test_a_reader_that_stops_reading_is_dropped_after_write_timeout():
    large = 8 << 20
    with gevent_server("--write-timeout", "1", "--log-level", "debug") as srv:
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.settimeout(5)
        reader.connect((srv.host, srv.port))
        reader.sendall(f"GET /bytes?{large} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with reader:
            assert get(srv, "/") == (200, b"Hello, World!")  # served while it waits
            srv.wait_for_log(r"stopped reading the response", timeout=10)


# -- the HTTP/1.1 engine --------------------------------------------------------------------------

@pytest.mark.parametrize("piece", [1, 7, 1000], ids=["bytewise", "sevens", "whole"])
def test_chunked_request_body_in_pieces(piece):
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                    for part in (b"hello ", b"chunked ", b"world" * 50)) + b"0\r\n\r\n"
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with gevent_server() as srv, connect(srv) as sock:
        for i in range(0, len(data), piece):
            sock.sendall(data[i:i + piece])
        resp = read_response(sock.makefile("rb"))
    assert resp.status == 200 and resp.body == b"hello chunked " + b"world" * 50


def test_bad_request_gets_400_and_the_worker_goes_on():
    with gevent_server() as srv:
        [resp] = exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        assert resp.status == 400
        status, body = get(srv, "/boom")
        assert status == 500 and b"secret" not in body
        assert get(srv, "/") == (200, b"Hello, World!")


def test_streamed_response_and_sendfile(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 100_000)
    with gevent_server() as srv:
        assert get(srv, "/stream") == (200, b"".join(b"chunk%d\n" % i for i in range(5)))
        assert get(srv, f"/file?{path}") == (200, path.read_bytes())


# -- monkey-patching --------------------------------------------------------------------------------

def test_the_standard_library_is_patched_before_the_app_is_imported():
    with gevent_server() as srv:
        status, body = get(srv, "/patched")
    assert status == 200
    seen = json.loads(body)
    assert seen["at_import"] is True  # socket was already gevent's when the app module ran
    assert all(seen["patched"].values()), seen
    assert seen["multithread"] is True and seen["multiprocess"] is False


def test_with_preload_the_master_is_not_patched_and_the_worker_is():
    # As in gunicorn: the master stays unpatched (the app was imported there first); the worker
    # patches before serving, so calls made at request time are cooperative.
    with gevent_server("--preload") as srv:
        seen = json.loads(get(srv, "/patched")[1])
        assert seen["at_import"] is False and all(seen["patched"].values())
        # Ten requests inside the application at once (their wait is patched threading's).
        threads = [in_background(srv, "/together?10") for _ in range(10)]
        for thread, _ in threads:
            thread.join(30)
        assert [r for _, r in threads] == [{"status": 200, "body": b"together"}] * 10


def test_a_master_patched_by_the_config_file_still_supervises_its_workers(tmp_path):
    # The usual recipe for --preload on gevent: patch at the top of gunicorn.conf.py, so the
    # master runs patched too. Its signals, self-pipe, fork and reaping must still work.
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("from gevent import monkey\nmonkey.patch_all()\npreload_app = True\n")
    with gevent_server("-c", str(conf), "-w", "2") as srv:
        assert json.loads(get(srv, "/patched")[1])["at_import"] is True
        old = set(srv.wait_workers(2))
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len(srv.worker_pids()) == 2 and not old & set(srv.worker_pids()),
                   20, message="new workers after HUP")
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(3)
        srv.send_signal(signal.SIGTTOU)
        victim = srv.wait_workers(2)[0]
        os.kill(victim, signal.SIGKILL)  # reaped and replaced
        wait_until(lambda: len(srv.worker_pids()) == 2 and victim not in srv.worker_pids(), 20,
                   message="a replacement worker")
        assert get(srv, "/") == (200, b"Hello, World!")
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0


# -- signals and the arbiter ------------------------------------------------------------------------

def test_graceful_timeout_bounds_the_stop():
    with gevent_server("--graceful-timeout", "1") as srv:
        thread, result = in_background(srv, "/slow?60")
        srv.wait_for_log("slow request started")
        start = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0
        assert time.monotonic() - start < 10
        thread.join(10)
        assert "error" in result  # cut off, not answered
        assert "graceful timeout: 1 connection(s) still open" in srv.log()


def test_quit_to_an_idle_worker_runs_worker_int_and_it_is_replaced(tmp_path):
    # Idle, the worker sits in the hub when the signal arrives: the hook, which waits, runs in a
    # greenlet of its own (test_gthread's QUIT case covers a worker busy with a request).
    marker = tmp_path / "worker_int"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("import time\n\ndef worker_int(worker):\n"
                    "    time.sleep(0.05)  # waits: impossible in the hub itself\n"
                    f"    open({str(marker)!r}, 'w').write('int')\n")
    with gevent_server("-c", str(conf)) as srv:
        pid = serving_pid(srv)
        os.kill(pid, signal.SIGQUIT)
        wait_until(lambda: srv.worker_pids() and pid not in srv.worker_pids(), 10,
                   message="a replacement worker")
        assert marker.exists(), srv.log()
        assert marker.read_text() == "int"
        assert serving_pid(srv) != pid


def test_hup_replaces_the_workers_and_inflight_requests_finish():
    with gevent_server("-w", "2", "--graceful-timeout", "10") as srv:
        old = set(srv.wait_workers(2))
        thread, result = in_background(srv, "/slow?1.5")
        srv.wait_for_log("slow request started")
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len(srv.worker_pids()) == 2 and not old & set(srv.worker_pids()),
                   20, message="new workers after HUP")
        thread.join(10)
        assert result == {"status": 200, "body": b"Hello, World!"}
        assert serving_pid(srv) not in old


def test_ttin_and_ttou_change_the_worker_count():
    with gevent_server("-w", "1") as srv:
        srv.wait_workers(1)
        srv.send_signal(signal.SIGTTIN)
        srv.wait_workers(2)
        srv.send_signal(signal.SIGTTOU)
        srv.wait_workers(1)
        assert get(srv, "/") == (200, b"Hello, World!")


def test_max_requests_with_jitter_recycles_the_worker_without_failing_a_request():
    with gevent_server("--max-requests", "4", "--max-requests-jitter", "3") as srv:
        pids = []
        for _ in range(30):  # each on a new connection; every one must succeed
            [resp] = exchange(srv, b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert resp.status == 200
            pids.append(resp.body)
        runs = [len(list(group)) for group in _runs(pids)]
        assert len(runs) >= 4, pids  # recycled several times
        assert all(4 <= n <= 7 for n in runs[:-1]), runs  # max_requests + jitter in [0, 3]
        assert "Autorestarting worker after current request." in srv.log()


def _runs(items: list) -> list[list]:
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1].append(item)
        else:
            out.append([item])
    return out


# -- heartbeat --------------------------------------------------------------------------------------

def test_a_request_that_sleeps_cooperatively_keeps_the_worker_alive():
    with gevent_server("--timeout", "2") as srv:
        pid = serving_pid(srv)
        assert get(srv, "/sleep?5") == (200, b"slept")  # longer than the timeout
        assert serving_pid(srv) == pid
        assert "WORKER TIMEOUT" not in srv.log()


@pytest.mark.parametrize("path", ["/block?30", "/spin?30"], ids=["unpatched-sleep", "cpu-loop"])
def test_a_request_that_blocks_the_hub_gets_the_worker_killed(path):
    with gevent_server("--timeout", "2") as srv:
        pid = serving_pid(srv)
        start = time.monotonic()
        with pytest.raises((http.client.HTTPException, OSError)):
            get(srv, path, timeout=20)
        assert time.monotonic() - start < 15
        srv.wait_for_log(rf"WORKER TIMEOUT \(pid:{pid}\)")
        new = wait_until(lambda: [p for p in srv.worker_pids() if p != pid], 20)
        assert new and serving_pid(srv) != pid


# -- resolution -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gevent", "egg:gunicorn#gevent",
                                  "gunicorn.workers.ggevent.GeventWorker"])
def test_gunicorn_spellings_of_the_gevent_worker(name):
    assert run_gunicorn(["--check-config", "-k", name, "hello:app"]).returncode == 0


def test_gevent_pywsgi_is_served_by_our_gevent_worker_with_a_note():
    with GunicornServer(["-k", "gevent_pywsgi", APP]) as srv:
        assert get(srv, "/") == (200, b"Hello, World!")
        srv.wait_for_log("gevent_pywsgi is gunicorn's worker on gevent's pywsgi server; "
                         "gunicorn-core's gevent worker serves the application")


@pytest.mark.parametrize("name", ["gevent", "gunicorn.workers.ggevent.GeventWorker",
                                  "gevent_pywsgi"])
def test_without_gevent_the_worker_exits_2_naming_the_extra(name):
    env = {"HIDE_MODULES": "gevent",
           "PYTHONPATH": os.pathsep.join([str(APPS / "hidden"), str(APPS)])}
    done = run_gunicorn(["-k", name, "hello:app"], env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: worker_class: ")
    assert "pip install 'gunicorn-core[gevent]'" in lines[0]
    assert "no module 'gevent'" in lines[0]


def test_an_asgi_app_under_gevent_exits_4_naming_the_worker_to_use():
    done = run_gunicorn(["-k", "gevent", "asgi_apps:app"])
    assert done.returncode == 4, done.stderr
    assert "-k asgi" in done.stderr


# -- TLS ------------------------------------------------------------------------------------------
# (test_tls runs its HTTPS tests on gevent too; this is what only a greenlet per connection does)

@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_pipelined_requests_buffered_by_tls_are_all_served(cert):  # noqa: F811
    certfile, keyfile = cert
    ctx = ssl.create_default_context(cafile=str(certfile))
    with gevent_server("--certfile", str(certfile), "--keyfile", str(keyfile)) as srv, \
            socket.create_connection((srv.host, srv.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        # One TLS record carries three requests: after the first, the rest is already
        # decrypted inside the TLS object, where polling the socket would never see it.
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        f = sock.makefile("rb")
        bodies = [read_response(f).body for _ in range(3)]
        assert len(set(bodies)) == 1 and bodies[0].isdigit()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and the connection is kept
        assert read_response(f).body == b"Hello, World!"
