"""Slow clients (slowloris heads, readers that never read) against sync, gthread, gevent and asgi:
header_timeout, write_timeout, and a saturated gthread worker leaving new clients to others."""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import ssl
import threading
import time

import pytest
from apps.wsgi_client import GEVENT, closed_by_peer, connect, read_response, serve
from harness import GunicornServer
from test_tls import cert  # noqa: F401 - a fixture

# Generous bound for a normal client's response (the servers' io timeout is 30 s): a liveness
# bound, not a speed measurement.
SERVED_WITHIN = 10.0
LARGE = 8 << 20  # more than a non-reading client's socket buffers take (about 3-4 MiB)


def get(srv: GunicornServer, path: str, timeout: float = SERVED_WITHIN) -> tuple[int, bytes]:
    """A normal client: fresh connection, one request, the whole response."""
    with connect(srv, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        resp = read_response(sock.makefile("rb"))
        return resp.status, resp.body


class Loris:
    """``count`` connections that send a request line, then one more header byte per ``drip``
    seconds, forever (until the context ends)."""

    def __init__(self, srv: GunicornServer, count: int, drip: float = 0.5) -> None:
        self.socks = [connect(srv) for _ in range(count)]
        self.drip = drip
        self.stop = threading.Event()
        self.rounds = 0
        self.dripped = threading.Event()  # set after the first byte went out on every socket
        for sock in self.socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for sock in self.socks:
                with contextlib.suppress(OSError):  # closed by the server: fine
                    sock.send(b"X")
            self.rounds += 1
            self.dripped.set()
            self.stop.wait(self.drip)  # the pace of the attack, not a synchronisation

    def __enter__(self) -> Loris:
        self.thread.start()
        assert self.dripped.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.socks:
            sock.close()


def slow_reader(srv: GunicornServer, path: str, connection: str = "keep-alive",
                count: int = 1) -> socket.socket:
    """A client that asks for ``path`` (``count`` times, pipelined) and does not read yet."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((srv.host, srv.port))
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n"
    sock.sendall(request.encode() * count)
    return sock


def read_all(sock: socket.socket) -> int:
    """Read until the server closes; the number of bytes received."""
    total = 0
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    return total


def closes_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """Poll (sending ``trickle`` between looks) until the server closes ``sock``."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        if trickle:
            try:
                sock.send(trickle)
            except OSError:
                return True
        if closed_by_peer(sock):
            return True
    return False


PATTERN = bytes(range(256)) * (LARGE // 256)


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("slow") / "large.bin"
    path.write_bytes(PATTERN)
    return str(path)


# -- gthread: no slow client holds the pool --------------------------------------------------

def test_slowloris_and_slow_readers_leave_a_normal_client_served(large_file):
    # Twice as many slowloris heads as threads, and slow readers of bytes and of a file.
    with serve(["wsgi_apps:app", "--threads", "2"], worker="gthread") as srv, Loris(srv, 4):
        readers = [slow_reader(srv, f"/bytes?{LARGE}") for _ in range(2)]
        readers += [slow_reader(srv, f"/file?{large_file}") for _ in range(2)]
        try:
            for _ in range(3):
                assert get(srv, "/") == (200, b"Hello, World!")
        finally:
            for sock in readers:
                sock.close()


@pytest.mark.parametrize("worker", ["sync", "gthread", GEVENT])
def test_head_trickled_past_header_timeout_is_closed(worker):
    with serve(["wsgi_apps:app", "--header-timeout", "1"], worker=worker) as srv, \
            connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        # A byte every 0.2 s: a per-read timeout would never fire.
        assert closes_within(sock, 6, trickle=b"X")
        assert get(srv, "/") == (200, b"Hello, World!")


@pytest.mark.parametrize("worker", ["sync", "gthread", GEVENT])
def test_head_trickled_within_header_timeout_is_served(worker):
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n"
    with serve(["wsgi_apps:app", "--header-timeout", "10"], worker=worker) as srv, \
            connect(srv) as sock:
        for i in range(0, len(head), 8):
            sock.sendall(head[i:i + 8])
            time.sleep(0.05)  # pacing the writes, not synchronising: the read below waits
        assert read_response(sock.makefile("rb")).body == b"Hello, World!"


@pytest.mark.parametrize("worker", ["sync", "gthread", GEVENT])
def test_tls_handshake_that_stalls_is_closed_after_header_timeout(worker, cert):  # noqa: F811
    certfile, keyfile = cert
    args = ["wsgi_apps:app", "--header-timeout", "1", "--certfile", str(certfile),
            "--keyfile", str(keyfile)]
    with serve(args, worker=worker) as srv, connect(srv) as sock:
        # The start of a TLS record (handshake, TLS 1.0) whose ClientHello never comes.
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")
        assert closes_within(sock, 6)


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_client_that_stops_reading_holds_no_thread_and_is_dropped_after_write_timeout(
        connection):
    args = ["wsgi_apps:app", "--threads", "1", "--write-timeout", "1", "--log-level", "debug",
            "--access-logfile", "-"]
    with serve(args, worker="gthread") as srv:
        with slow_reader(srv, f"/bytes?{LARGE}", connection) as reader:
            # The response is logged (its thread has moved on) while its client reads nothing,
            # and the only thread serves someone else.
            srv.wait_for_log(r"GET /bytes", timeout=SERVED_WITHIN)
            assert get(srv, "/") == (200, b"Hello, World!")
            srv.wait_for_log(r"dropping .* took no response byte", timeout=SERVED_WITHIN)
            assert read_all(reader) < LARGE


@pytest.mark.parametrize("kind", ["bytes", "file", "tls"])
def test_client_reading_late_gets_the_whole_response_and_keeps_its_connection(
        kind, large_file, cert):  # noqa: F811
    args = ["wsgi_apps:app", "--threads", "1", "--access-logfile", "-"]
    ctx = None
    if kind == "tls":
        args += ["--certfile", str(cert[0]), "--keyfile", str(cert[1])]
        ctx = ssl.create_default_context(cafile=str(cert[0]))
    path, body = (f"/file?{large_file}", PATTERN) if kind == "file" else \
        (f"/bytes?{LARGE}", b"x" * LARGE)

    def client() -> socket.socket:
        sock = connect(srv, timeout=SERVED_WITHIN)
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1") if ctx else sock

    with serve(args, worker="gthread") as srv, client() as late, client() as other:
        f = late.makefile("rb")
        late.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # Read only once the thread is done with it: what is left was kept for us.
        srv.wait_for_log(r"GET /(bytes|file)", timeout=SERVED_WITHIN)
        other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the only thread is free
        assert read_response(other.makefile("rb")).body == b"Hello, World!"
        assert read_response(f).body == body
        late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"Hello, World!"


def test_pipelined_responses_to_a_late_reader_arrive_whole_and_in_order():
    with serve(["wsgi_apps:app", "--threads", "2"], worker="gthread") as srv, \
            slow_reader(srv, f"/bytes?{LARGE}", count=2) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(SERVED_WITHIN)
        f = sock.makefile("rb")
        assert [len(read_response(f).body) for _ in range(2)] == [LARGE, LARGE]
        assert read_response(f).body == b"Hello, World!"


def test_graceful_stop_lets_output_kept_for_a_late_reader_finish():
    args = ["wsgi_apps:app", "--threads", "1", "--access-logfile", "-", "--graceful-timeout", "20"]
    with serve(args, worker="gthread") as srv, slow_reader(srv, f"/bytes?{LARGE}") as sock:
        srv.wait_for_log(r"GET /bytes", timeout=SERVED_WITHIN)
        srv.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # a slow client: longer than an idle connection's grace at a stop
        sock.settimeout(SERVED_WITHIN)
        assert len(read_response(sock.makefile("rb")).body) == LARGE
        assert srv.wait_exit(SERVED_WITHIN) == 0


def test_write_waiting_on_its_thread_ends_at_write_timeout():
    # A worker that keeps no output for slow readers: the thread waits, for write_timeout.
    args = ["wsgi_apps:app", "--threads", "1", "--write-timeout", "1", "--log-level", "debug"]
    with serve(args, worker="slow_client_workers.NoDeferWorker") as srv:
        with slow_reader(srv, f"/bytes?{LARGE}") as reader:
            srv.wait_for_log(r"stopped reading the response", timeout=SERVED_WITHIN)
            assert get(srv, "/") == (200, b"Hello, World!")
            assert read_all(reader) < LARGE


def test_sync_worker_drops_a_client_that_stops_reading():
    args = ["wsgi_apps:app", "--write-timeout", "1", "--log-level", "debug"]
    with serve(args, worker="sync") as srv, slow_reader(srv, f"/bytes?{LARGE}") as reader:
        srv.wait_for_log(r"stopped reading the response", timeout=SERVED_WITHIN)
        assert get(srv, "/") == (200, b"Hello, World!")
        assert read_all(reader) < LARGE


def test_saturated_worker_leaves_new_connections_to_the_other_worker():
    with serve(["wsgi_apps:app", "-w", "2", "--threads", "1"], worker="gthread") as srv:
        srv.wait_workers(2)
        busy = http.client.HTTPConnection(srv.host, srv.port, timeout=SERVED_WITHIN)
        busy.request("GET", "/pid")
        blocked_pid = busy.getresponse().read()
        busy.request("GET", "/slow?8")  # the same connection, so the same worker
        srv.wait_for_log("slow request started")
        pids = {get(srv, "/pid", timeout=3)[1] for _ in range(10)}
        assert blocked_pid not in pids and len(pids) == 1
        assert busy.getresponse().read() == b"Hello, World!"
        busy.close()


def test_keepalive_connections_of_a_saturated_worker_are_still_served():
    with serve(["wsgi_apps:app", "--threads", "1", "--keep-alive", "30"], worker="gthread") as srv:
        kept = http.client.HTTPConnection(srv.host, srv.port, timeout=SERVED_WITHIN)
        kept.request("GET", "/")
        assert kept.getresponse().read() == b"Hello, World!"
        busy = http.client.HTTPConnection(srv.host, srv.port, timeout=SERVED_WITHIN)
        busy.request("GET", "/slow?1")
        srv.wait_for_log("slow request started")
        kept.request("GET", "/")  # waits for the thread, then is served on the same connection
        assert kept.getresponse().read() == b"Hello, World!"
        assert busy.getresponse().read() == b"Hello, World!"
        status, _ = get(srv, "/")  # and the worker accepts again once a thread is free
        assert status == 200
        kept.close()
        busy.close()


# -- asgi ---------------------------------------------------------------------------------------

def test_asgi_head_trickled_past_header_timeout_is_closed():
    with serve(["asgi_apps:app", "--header-timeout", "1"], worker="asgi") as srv, \
            connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert closes_within(sock, 6, trickle=b"X")


def test_asgi_client_that_stops_reading_is_dropped_after_write_timeout():
    args = ["asgi_apps:app", "--write-timeout", "1", "--log-level", "debug"]
    with serve(args, worker="asgi") as srv, slow_reader(srv, "/flood?n=1000") as reader:
        srv.wait_for_log(r"dropping .* took no response byte", timeout=SERVED_WITHIN)
        assert read_all(reader) < 1000 * 65536
        assert get(srv, "/")[0] == 200
