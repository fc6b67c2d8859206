"""Workers written for gunicorn run unchanged on our arbiter: the real uvicorn_worker package.

uvicorn's worker reads ``cfg.settings["backlog"].value``, ``cfg.is_ssl``/``ssl_options``,
``self.max_requests``, ``self.timeout``, ``self.sockets`` (handed to asyncio's create_server),
``self.log.error_log``, ``Worker.SIGNALS``, ``Arbiter.WORKER_BOOT_ERROR``, and calls
``self.notify()`` as its heartbeat. Real servers, real HTTP, real signals.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import ssl

import pytest
from apps.ctl_support import data
from apps.tls_support import make_cert
from harness import GunicornServer, wait_until

pytest.importorskip("uvicorn_worker")


def _get(srv: GunicornServer, path: str = "/") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    conn.close()
    return resp


def _server(tmp_path, worker: str, *args: str) -> GunicornServer:
    return GunicornServer(["-k", worker, "--control-socket", str(tmp_path / "ctl" / "g.ctl"),
                           *args, "asgi_apps:app"])


@pytest.mark.parametrize("worker", ["uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornWorker",
                                    "uvicorn_worker.UvicornH11Worker"])
def test_uvicorn_worker_serves_reloads_on_hup_and_stops_on_term(tmp_path, worker):
    with _server(tmp_path, worker, "-w", "2") as srv:
        first = sorted(srv.wait_workers(2))
        resp = _get(srv, "/")
        assert (resp.status, resp.body) == (200, b"Hello, World!")
        assert resp.getheader("server") == "uvicorn"  # uvicorn itself answered
        assert "Traceback" not in srv.log()

        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len(srv.worker_pids()) == 2
                   and not set(first) & set(srv.worker_pids()), 20, message="new workers")
        assert int(_get(srv, "/pid").body) in srv.worker_pids()

        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(20) == 0
    log = srv.log()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log


def test_subclass_with_config_kwargs_serves_with_its_settings(tmp_path):
    with _server(tmp_path, "uvicorn_workers.TunedUvicornWorker", "-w", "1") as srv:
        resp = _get(srv, "/")
        assert (resp.status, resp.body) == (200, b"Hello, World!")
        assert resp.getheader("server") is None  # CONFIG_KWARGS reached uvicorn


def test_uvicorn_worker_heartbeats_keep_it_alive_past_the_timeout(tmp_path):
    # timeout=2: the arbiter kills a worker silent for 2 s; uvicorn notifies every 1 s.
    with _server(tmp_path, "uvicorn_worker.UvicornWorker", "-w", "1", "--timeout", "2") as srv:
        [pid] = srv.wait_workers(1)
        path = str(tmp_path / "ctl" / "g.ctl")

        def outlived_timeout() -> dict | None:
            [row] = data(path, "show workers")["workers"]
            return row if row["uptime"] > 5 else None

        row = wait_until(outlived_timeout, 20, interval=0.2, message="5 s of uptime")
        assert row["pid"] == pid and row["last_heartbeat"] < 2
        assert srv.worker_pids() == [pid]
        assert "WORKER TIMEOUT" not in srv.log()
        assert _get(srv, "/").status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_uvicorn_worker_serves_tls_from_our_ssl_settings(tmp_path):
    certfile, keyfile = make_cert(tmp_path)
    with _server(tmp_path, "uvicorn_worker.UvicornWorker", "--certfile", str(certfile),
                 "--keyfile", str(keyfile)) as srv:
        context = ssl.create_default_context(cafile=str(certfile))
        conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=10, context=context)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"Hello, World!")
        conn.close()
