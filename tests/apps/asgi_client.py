"""Helpers shared by the asgi worker tests: start `gunicorn -k asgi`, talk raw HTTP/1.1."""

import contextlib
import socket
import time

from harness import GunicornServer


@contextlib.contextmanager
def serve(app="asgi_apps:app", *args, workers=1, env=None, cwd=None, **kwargs):
    """A `gunicorn -k asgi` server (1 worker by default) serving ``app``."""
    argv = ["-k", "asgi", "-w", str(workers), "--graceful-timeout", "5", *args, app]
    with GunicornServer(argv, env=env, cwd=cwd, **kwargs) as srv:
        srv.wait_workers(workers)
        yield srv


class BufferedSocket(socket.socket):
    """A client socket remembering bytes read past the end of the previous response."""

    pending = b""


def connect(srv, timeout=5.0):
    sock = BufferedSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((srv.host, srv.port))
    return sock


def read_response(sock, deadline=5.0):
    """Read one response (head + body framed by Content-Length or chunked, or until close).

    Returns (status, headers dict lower-case, body bytes, rest bytes); on a
    :class:`BufferedSocket` the rest is also kept for the next call.
    """
    status, headers, body, rest = _read_response(sock, deadline)
    if isinstance(sock, BufferedSocket):
        sock.pending = rest
    return status, headers, body, rest


def _read_response(sock, deadline):
    buf = getattr(sock, "pending", b"")
    end = time.monotonic() + deadline
    while b"\r\n\r\n" not in buf:
        buf += _recv(sock, end)
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if status < 200:
        return status, headers, b"", rest
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += _recv(sock, end)
        return status, headers, rest[:length], rest[length:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += _recv(sock, end)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n\r\n" not in b"\r\n" + rest:
                    rest += _recv(sock, end)
                trailer, _, rest = (b"\r\n" + rest).partition(b"\r\n\r\n")
                headers["_trailers"] = trailer.decode("latin-1").strip()
                return status, headers, body, rest
            while len(rest) < size + 2:
                rest += _recv(sock, end)
            body += rest[:size]
            rest = rest[size + 2:]
    while True:
        try:
            data = _recv(sock, end)
        except ConnectionError:
            return status, headers, rest, b""
        rest += data


def _recv(sock, end):
    sock.settimeout(max(end - time.monotonic(), 0.01))
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("connection closed by the server")
    return data


def read_until_closed(sock, deadline=5.0):
    """Everything the server sends until it closes the connection."""
    out = b""
    end = time.monotonic() + deadline
    while True:
        sock.settimeout(max(end - time.monotonic(), 0.01))
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def request(srv, data, deadline=5.0):
    """Send raw bytes on a new connection, return everything until the server closes it."""
    with connect(srv) as sock:
        sock.sendall(data)
        return read_until_closed(sock, deadline)
