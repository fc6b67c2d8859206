"""HTTP/1.1 limits and targets as gunicorn enforces them, against real servers on raw sockets.

Each error gets its status and the worker keeps serving (the next connection gets a 200).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from harness import GunicornServer

FIELD_SIZE = 100
LINE = 60
WORKERS = [
    pytest.param(["-k", "sync", "hello:app"], id="sync"),
    pytest.param(["-k", "gthread", "--threads", "2", "hello:app"], id="gthread"),
    pytest.param(["-k", "asgi", "asgi_apps:app"], id="asgi"),
]


@pytest.fixture(scope="module", params=WORKERS)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    args = ["-w", "1", "--no-control-socket", "--limit-request-field-size", str(FIELD_SIZE),
            "--limit-request-line", str(LINE), *request.param]
    with GunicornServer(args) as srv:
        yield srv


@pytest.fixture(scope="module", params=WORKERS)
def default_server(request: pytest.FixtureRequest) -> Iterator[GunicornServer]:
    args = ["-w", "1", "--no-control-socket", "--limit-request-field-size", "0", *request.param]
    with GunicornServer(args) as srv:
        yield srv


def exchange(srv: GunicornServer, data: bytes, close: bool = True) -> int:
    """Send ``data`` (half-closing after it when ``close``); the response's status code.

    Without ``close`` the server must answer on its own: the peer is still there."""
    with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1."), received
    return int(received.split(b" ", 2)[1])


def request_with(field: bytes = b"X-Pad: v", target: bytes = b"/") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + field + b"\r\nConnection: close\r\n\r\n"


def padded_field(length: int) -> bytes:
    """A field line of ``length`` characters (its CRLF not counted)."""
    return b"X-Pad: " + b"v" * (length - len(b"X-Pad: "))


def padded_target(line_length: int) -> bytes:
    """A target making the request line ``GET <target> HTTP/1.1`` exactly that long."""
    room = line_length - len(b"GET  HTTP/1.1") - len(b"/?p=")
    return b"/?p=" + b"a" * room


def test_a_field_line_of_n_minus_2_plus_crlf_is_accepted_and_n_minus_1_is_431(server):
    assert exchange(server, request_with(padded_field(FIELD_SIZE - 2))) == 200
    assert exchange(server, request_with(padded_field(FIELD_SIZE - 1))) == 431
    assert exchange(server, request_with()) == 200


def test_a_request_line_of_the_limit_is_accepted_and_one_more_is_414(server):
    assert exchange(server, request_with(target=padded_target(LINE))) == 200
    assert exchange(server, request_with(target=padded_target(LINE + 1))) == 414
    assert exchange(server, request_with()) == 200


def test_limit_request_field_size_0_means_8190(default_server):
    assert exchange(default_server, request_with(padded_field(8188))) == 200
    assert exchange(default_server, request_with(padded_field(8189))) == 431


@pytest.mark.parametrize("target", [b"s://]ufd/:", b"http://a^b/", b"http://[::g]/",
                                    b"http://user@example.com/", b"http://:80/"],
                         ids=["bracket", "caret", "bad-ipv6", "userinfo", "empty-host"])
def test_an_absolute_form_target_with_a_bad_authority_is_400(server, target):
    data = b"PUT " + target + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    assert exchange(server, data) == 400
    assert exchange(server, request_with(target=b"http://example.com/")) == 200


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\nHost: a\n\n",
                                  b"GET / HTTP/1.1\r\nHost: a\n\n"], ids=["line", "field"])
def test_a_bare_lf_head_is_400_while_the_client_still_waits(server, data):
    assert exchange(server, data, close=False) == 400
    assert exchange(server, request_with()) == 200


def test_a_request_without_host_is_still_accepted(server):
    assert exchange(server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n") == 200
