"""worker.nr (max_requests, the control socket's "requests") is exact under threads."""

from __future__ import annotations

import threading
import urllib.request

from apps.ctl_support import ctl_server, data, socket_of
from harness import wait_until

CLIENTS = 8
EACH = 25


def _hammer(url: str, failures: list[BaseException]) -> None:
    try:
        for _ in range(EACH):
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        failures.append(exc)


def test_gthread_counts_every_request_of_concurrent_clients(tmp_path):
    with ctl_server(tmp_path, "-k", "gthread", "--threads", "4").start() as srv:
        path = socket_of(srv)
        srv.wait_workers(1)
        failures: list[BaseException] = []
        clients = [threading.Thread(target=_hammer, args=(srv.url, failures))
                   for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=30)
        assert failures == []
        wait_until(lambda: data(path, "show workers")["workers"][0]["requests"]
                   == CLIENTS * EACH, 10, message=f"{CLIENTS * EACH} requests counted")


def test_gthread_max_requests_restarts_after_exactly_that_many(tmp_path):
    with ctl_server(tmp_path, "-k", "gthread", "--threads", "4",
                    "--max-requests", "40").start() as srv:
        first = srv.wait_workers(1)[0]
        failures: list[BaseException] = []
        clients = [threading.Thread(target=_hammer, args=(srv.url, failures)) for _ in range(2)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=30)
        assert failures == []
        wait_until(lambda: srv.worker_pids() and first not in srv.worker_pids(), 10,
                   message="worker replaced after max_requests")
        assert srv.log().count("Autorestarting worker after current request.") == 1
