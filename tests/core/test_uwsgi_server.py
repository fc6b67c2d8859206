"""``--protocol uwsgi`` spoken directly over loopback: allow-list, bad packets, keep-alive.

No nginx here: a raw socket sends uwsgi packets, so that malformed ones can be sent too.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import BinaryIO

import pytest
from harness import GunicornServer, wait_until
from test_uwsgi_nginx import app_spec, write_app

WORKERS = [
    pytest.param(["-k", "sync"], id="sync"),
    pytest.param(["-k", "gthread", "--threads", "2"], id="gthread"),
    pytest.param(["-k", "asgi"], id="asgi"),
]


def packet(pairs: list[tuple[bytes, bytes]], body: bytes = b"", modifier1: int = 0) -> bytes:
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in pairs)
    return struct.pack("<BHB", modifier1, len(data), 0) + data + body


def request(path: bytes = b"/", body: bytes = b"") -> bytes:
    return packet([(b"REQUEST_METHOD", b"POST" if body else b"GET"), (b"REQUEST_URI", path),
                   (b"CONTENT_LENGTH", str(len(body)).encode()), (b"HTTP_HOST", b"x"),
                   (b"REMOTE_ADDR", b"192.0.2.9"), (b"REMOTE_PORT", b"4242")], body)


class Response:
    """One HTTP/1.x response read from a buffered socket file (several may share the file)."""

    def __init__(self, fp: BinaryIO) -> None:
        status_line = fp.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := fp.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        length = self.headers.get("content-length")
        self.body = fp.read(int(length)) if length is not None else fp.read()


def at_eof(sock: socket.socket) -> bool:
    """The server closed the connection (EOF or reset) within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def exchange(srv: GunicornServer, data: bytes, *, half_close: bool = False) -> Response:
    """Send ``data`` on a new connection and read one response."""
    with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as fp:
            return Response(fp)


def refused(srv: GunicornServer, data: bytes, *, half_close: bool = False) -> int:
    """Send ``data``; the status of the error answer, after checking the server closed."""
    with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as fp:
            response = Response(fp)
        assert response.headers["connection"] == "close"
        assert at_eof(sock)
        return response.status


@pytest.fixture(scope="module", params=WORKERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[GunicornServer]:
    app_dir = write_app(tmp_path_factory.mktemp("uwsgi-direct"))
    args = ["--protocol", "uwsgi", "-w", "1", "--log-level", "debug",
            "--limit-request-line", "200", *request.param, app_spec(request.param)]
    with GunicornServer(args, cwd=app_dir) as srv:
        srv.wait_workers(1)
        yield srv


def test_packet_answers_with_plain_http(server):
    response = exchange(server, request(b"/caf%C3%A9?x=1", b"body"))
    assert response.status == 200 and "content-length" in response.headers
    seen = json.loads(response.body)
    assert (seen["path"], seen["query"], seen["body_len"]) == ("/café", "x=1", 4)


def test_remote_addr_is_the_client_the_front_end_names(server):
    seen = json.loads(exchange(server, request(b"/who")).body)
    assert seen["remote"] == ["192.0.2.9", 4242]


def test_streamed_response_is_never_chunked(server):
    # nginx's uwsgi module does not undo a chunked coding: the body ends with the connection.
    response = exchange(server, request(b"/stream"))
    assert "transfer-encoding" not in response.headers
    assert response.headers["connection"] == "close"
    assert response.body == b"".join(b"part%d\n" % i for i in range(50))


def test_uwsgi_connection_keep_alive(server):
    worker_class = server.args[server.args.index("-k") + 1]
    with socket.create_connection((server.host, server.port), timeout=10) as sock, \
            sock.makefile("rb") as fp:
        # Two packets in one write (pipelined), then a third after the answers.
        sock.sendall(request(b"/one") + request(b"/two", b"2"))
        first = Response(fp)
        if worker_class == "sync":
            # The sync worker serves one request per connection, as over HTTP.
            assert first.status == 200 and first.headers["connection"] == "close"
            assert fp.read() == b""
            return
        second = Response(fp)
        sock.sendall(request(b"/three"))
        third = Response(fp)
    assert [r.status for r in (first, second, third)] == [200, 200, 200]
    assert [json.loads(r.body)["path"] for r in (first, second, third)] == [
        "/one", "/two", "/three"]
    assert first.headers["connection"] == "keep-alive"


BAD_PACKETS = {
    "modifier1": (packet([(b"REQUEST_URI", b"/")], modifier1=5), 400),
    "var-past-end": (struct.pack("<BHB", 0, 6, 0) + b"\x09\x00ABCD", 400),
    "header-ctl": (packet([(b"HTTP_X", b"a\x01b")]), 400),
    "bad-length": (packet([(b"CONTENT_LENGTH", b"12x")]), 400),
    "request-line": (packet([(b"REQUEST_URI", b"/" + b"a" * 300)]), 414),
}


@pytest.mark.parametrize("name", BAD_PACKETS)
def test_bad_packet_is_answered_closed_and_logged(server, name):
    data, status = BAD_PACKETS[name]
    pids = server.worker_pids()
    before = server.log().count("invalid request from")
    assert refused(server, data) == status
    wait_until(lambda: server.log().count("invalid request from") > before, 10,
               message="a log line for the bad packet")
    # The worker goes on serving.
    assert exchange(server, request(b"/after")).status == 200
    assert server.worker_pids() == pids


def test_truncated_packet_then_close(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request(b"/cut", b"0123456789")[:-4])
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    # sync/gthread answer 400; the asgi worker treats a half-close as the client leaving.
    assert data == b"" or data.startswith(b"HTTP/1.1 400 "), data
    assert exchange(server, request(b"/after")).status == 200
    assert exchange(server, request(b"/after")).status == 200


@pytest.mark.parametrize("worker", WORKERS)
def test_peer_not_allowed_is_refused_closed_and_logged(tmp_path, worker):
    args = ["--protocol", "uwsgi", "-w", "1", "--uwsgi-allow-from", "10.0.0.1", *worker,
            app_spec(worker)]
    with GunicornServer(args, cwd=write_app(tmp_path)) as srv:
        assert refused(srv, request(b"/")) == 403
        srv.wait_for_log(r"uwsgi: refused connection from \('127\.0\.0\.1', \d+\) "
                         r"\(not in uwsgi_allow_ips\)")


def test_cidr_and_star_allow(tmp_path):
    app_dir = write_app(tmp_path)
    for allow in ("10.0.0.0/8,127.0.0.0/8", "*"):
        with GunicornServer(["--protocol", "uwsgi", "-w", "1", "--uwsgi-allow-from", allow,
                             "uwsgi_app:app"], cwd=app_dir) as srv:
            assert exchange(srv, request(b"/")).status == 200, allow
