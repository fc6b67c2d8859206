"""Helpers for the request-serving tests: start a server, talk raw HTTP/1.1 over a socket."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from harness import APPS, GunicornServer

# Until the arbiter exists, tests run the single-worker launcher; afterwards the real command.
HAVE_ARBITER = importlib.util.find_spec("gunicorn.arbiter.arbiter") is not None
LAUNCHER = None if HAVE_ARBITER else [sys.executable, str(APPS / "wsgi_run.py")]

# The gevent worker needs gunicorn-core's gevent extra: its cases skip where it is missing.
needs_gevent = pytest.mark.skipif(importlib.util.find_spec("gevent") is None,
                                  reason="the gevent extra of gunicorn-core is not installed")
GEVENT = pytest.param("gevent", marks=needs_gevent, id="gevent")


@contextlib.contextmanager
def serve(args: Sequence[str], worker: str = "sync", **kwargs: object) -> Iterator[GunicornServer]:
    argv = ["-k", worker, *args]
    with GunicornServer(argv, command=LAUNCHER, **kwargs) as srv:  # type: ignore[arg-type]
        yield srv


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def connect(srv: GunicornServer, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((srv.host, srv.port), timeout=timeout)


def read_response(f, method: str = "GET") -> RawResponse:
    """Read one response from a buffered socket file (1xx responses are returned too)."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed before a response")
    version, code, *reason = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    resp = RawResponse(int(code), reason[0] if reason else "")
    while True:
        line = f.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        name, _, value = line.partition(":")
        resp.headers.append((name, value.strip()))
    if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
        return resp
    length = resp.header("Content-Length")
    if length is not None:
        resp.body = f.read(int(length))
    elif (resp.header("Transfer-Encoding") or "").lower() == "chunked":
        parts = []
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            parts.append(f.read(size))
            f.readline()
        resp.body = b"".join(parts)
    else:
        resp.body = f.read()
    return resp


def exchange(srv: GunicornServer, data: bytes, count: int = 1,
             methods: Sequence[str] = ()) -> list[RawResponse]:
    """Send raw ``data`` and read ``count`` final responses (1xx are included in the list)."""
    with connect(srv) as sock:
        sock.sendall(data)
        f = sock.makefile("rb")
        out: list[RawResponse] = []
        finals = 0
        while finals < count:
            method = methods[finals] if finals < len(methods) else "GET"
            resp = read_response(f, method)
            out.append(resp)
            if resp.status >= 200:
                finals += 1
        return out


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
