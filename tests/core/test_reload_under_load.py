"""Two HUP reloads while clients hammer the server: no request may be lost."""

import http.client
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
from harness import GunicornServer, wait_until

WORKER_ARGS = {
    "sync": ["-w", "2"],
    "gthread": ["-w", "2", "-k", "gthread", "--threads", "4"],
}


def hup_and_wait_replaced(srv: GunicornServer, count: int = 2) -> set[int]:
    """HUP the master; return once ``count`` workers run and none of the old ones is left."""
    before = set(srv.worker_pids())
    srv.send_signal(signal.SIGHUP)

    def replaced() -> set[int]:
        now = set(srv.worker_pids())
        return now if len(now) == count and not (now & before) else set()

    return wait_until(replaced, 30, message="workers replaced")  # type: ignore[return-value]


class LoadGenerator:
    """``clients`` threads sending GET / over keep-alive connections until stopped."""

    def __init__(self, host: str, port: int, clients: int = 8) -> None:
        self.host, self.port = host, port
        self.stop_event = threading.Event()
        self.ok = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        while not self.stop_event.is_set():
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or body != b"Hello, World!":
                    raise AssertionError(f"bad response {resp.status} {body!r}")
                if resp.will_close:
                    conn.close()
                with self.lock:
                    self.ok += 1
            except (OSError, http.client.HTTPException, AssertionError) as exc:
                with self.lock:
                    self.errors.append(repr(exc))
                conn.close()

    def __enter__(self) -> "LoadGenerator":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("worker", sorted(WORKER_ARGS))
def test_two_hups_under_load_drop_no_request(worker):
    with GunicornServer(WORKER_ARGS[worker] + ["hello:app"]) as srv:
        first = set(srv.wait_workers(2))
        with LoadGenerator(srv.host, srv.port) as load:
            wait_until(lambda: load.ok > 200, 20, message="load to start")
            seen = set(first)
            for _ in range(2):
                seen |= hup_and_wait_replaced(srv)
                served = load.ok
                wait_until(lambda served=served: load.ok > served + 200, 20,
                           message="serving after reload")
        assert load.errors == []
        assert len(seen) == 6  # two generations replaced both workers
        assert load.ok > 600


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_sees_no_error_across_two_hups():
    with GunicornServer(WORKER_ARGS["gthread"] + ["hello:app"]) as srv:
        srv.wait_workers(2)
        wrk = subprocess.Popen(["wrk", "-t1", "-c20", "-d6s", srv.url + "/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(2):
                time.sleep(1.5)  # let wrk run at full load between reloads (load shape, not sync)
                hup_and_wait_replaced(srv)
            out, _ = wrk.communicate(timeout=30)
        finally:
            if wrk.poll() is None:
                wrk.kill()
        assert "Socket errors" not in out, out
        assert "Non-2xx" not in out, out
        assert int(re.search(r"(\d+) requests in", out).group(1)) > 1000
