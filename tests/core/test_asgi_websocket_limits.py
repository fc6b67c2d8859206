"""What bounds a WebSocket on a real ``gunicorn -k asgi`` worker: the message size of a
compressed message (decompression bomb), the write timeout, keepalive pings, and the share of
``worker_connections`` WebSockets may hold. Raw sockets play the misbehaving clients."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import struct
import urllib.request
import zlib
from pathlib import Path

import pytest
from harness import GunicornServer, wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

MiB = 1024 * 1024
KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(server: GunicornServer, path: str, extensions: str | None = None,
              rcvbuf: int | None = None) -> tuple[socket.socket, bytes]:
    """A raw client past its 101; returns the socket and the bytes after the head."""
    sock = socket.socket()
    if rcvbuf is not None:  # before connecting, so that the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    head = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n")
    if extensions:
        head += f"Sec-WebSocket-Extensions: {extensions}\r\n"
    sock.sendall((head + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, rest


def frame_header(opcode: int, length: int, rsv1: bool = False) -> bytes:
    first = bytes([0x80 | (0x40 if rsv1 else 0) | opcode])
    if length < 126:
        return first + bytes([0x80 | length])
    if length < 65536:
        return first + bytes([0x80 | 126]) + struct.pack("!H", length)
    return first + bytes([0x80 | 127]) + struct.pack("!Q", length)


def masked(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    # An all-zero mask: the payload goes out as it is (the server still unmasks it).
    return frame_header(opcode, len(payload), rsv1) + b"\0\0\0\0" + payload


def read_frames(sock: socket.socket, data: bytes = b"") -> list[tuple[int, bytes]]:
    """Every (first byte, payload) the server sends until it closes the connection."""
    while chunk := sock.recv(65536):
        data += chunk
    frames = []
    while data:
        size, pos = data[1] & 0x7F, 2
        if size == 126:
            size, pos = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            size, pos = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((data[0], data[pos:pos + size]))
        data = data[pos + size:]
    return frames


def close_code(frames: list[tuple[int, bytes]]) -> int:
    first, payload = frames[-1]
    assert first == 0x88, frames[-1]
    return struct.unpack("!H", payload[:2])[0]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def disconnects(server: GunicornServer) -> list[dict]:
    with urllib.request.urlopen(f"{server.url}/disconnects", timeout=5) as resp:
        return json.loads(resp.read())


def gigabyte_of_zeros() -> bytes:
    """1 GiB of zeros as a permessage-deflate payload (about 1 MiB). After the first MiB every
    sync-flushed MiB compresses to the same bytes, so the stream is built, not computed."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_SYNC_FLUSH)
    again = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_SYNC_FLUSH)
    return (first + again * 1023)[:-4]


def test_decompression_bomb_closes_1009_without_growing_the_worker():
    with GunicornServer(["-k", "asgi", "-w", "1", "--websocket-max-message-size", str(MiB),
                         "asgi_ws_apps:app"]) as server:
        (pid,) = server.wait_workers(1)
        bomb = gigabyte_of_zeros()
        assert len(bomb) < 1.1 * MiB
        # Warm up (imports, zlib objects), then measure the peak RSS from here on.
        sock, rest = handshake(server, "/echo", "permessage-deflate")
        with sock:
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            sock.sendall(masked(0x1, (comp.compress(b"warm") + comp.flush(zlib.Z_SYNC_FLUSH))[:-4],
                                rsv1=True))
            sock.sendall(masked(0x8, struct.pack("!H", 1000)))
            read_frames(sock, rest)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = status_kib(pid, "VmHWM")
        sock, rest = handshake(server, "/echo", "permessage-deflate")
        with sock:
            # One frame of 1 GiB inflated; its first 256 KiB alone inflate to 256 MiB.
            sock.sendall(frame_header(0x2, len(bomb), rsv1=True) + b"\0\0\0\0")
            try:
                sock.sendall(bomb[:256 * 1024])
            except OSError:  # the server may have failed the connection already
                pass
            frames = read_frames(sock, rest)
        assert close_code(frames) == 1009
        grown = status_kib(pid, "VmHWM") - before
        assert grown < 8 * 1024, f"the worker's peak RSS grew by {grown} KiB"
        wait_until(lambda: {"type": "websocket.disconnect", "code": 1009,
                            "reason": "message too big"} in disconnects(server), 5,
                   message="the app sees 1009")


@pytest.fixture(scope="module")
def srv_default():
    with GunicornServer(["-k", "asgi", "-w", "1", "asgi_ws_apps:app"]) as server:
        yield server


def test_failing_close_reaches_a_client_that_is_still_sending(srv_default):
    # The server fails the connection (an unmasked frame: 1002) while more bytes are in
    # flight: it must not reset the connection (which would destroy its Close frame).
    sock, rest = handshake(srv_default, "/echo")
    with sock:
        try:
            sock.sendall(b"\x82\x7f" + struct.pack("!Q", MiB) + b"x" * MiB)
        except OSError:
            pass
        assert close_code(read_frames(sock, rest)) == 1002


def test_a_client_that_stops_reading_is_dropped_after_write_timeout():
    with GunicornServer(["-k", "asgi", "-w", "1", "--write-timeout", "1",
                         "--websocket-ping-interval", "0", "asgi_ws_apps:app"]) as server:
        sock, _ = handshake(server, "/flood", rcvbuf=4096)
        with sock:
            port = sock.getsockname()[1]
            # Never read: the app's send() blocks, then the server gives up on us.
            wait_until(lambda: any(d.get("code") == 1008 for d in disconnects(server)), 10,
                       message="a 1008 disconnect")
            (record,) = [d for d in disconnects(server) if d.get("code") == 1008]
            assert record["reason"] == "write timeout" and record["sent"] > 0
            lines = server.wait_for_log(rf".*127\.0\.0\.1:{port}: the client read nothing.*")
            assert len(lines) == 1
            assert "WARNING" in lines[0] and "(write_timeout)" in lines[0]
            # The connection is gone: what was buffered, then EOF (or a reset).
            try:
                while sock.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
        # The worker still serves.
        with connect(f"ws://{server.host}:{server.port}/echo") as ws:
            ws.send("alive")
            assert ws.recv(timeout=5) == "alive"


def test_a_peer_that_never_pongs_is_closed_and_one_that_does_stays():
    with GunicornServer(["-k", "asgi", "-w", "1", "--websocket-ping-interval", "1",
                         "--websocket-ping-timeout", "1", "asgi_ws_apps:app"]) as server:
        # The websockets client answers pings by itself (its own pings are off).
        with connect(f"ws://{server.host}:{server.port}/echo", ping_interval=None) as good:
            sock, rest = handshake(server, "/echo")
            with sock:
                frames = read_frames(sock, rest)  # returns once the server closed
            assert frames[0][0] == 0x89 and len(frames[0][1]) == 4  # the ping
            assert close_code(frames) == 1011
            assert frames[-1][1][2:] == b"keepalive ping timeout"
            server.wait_for_log("no answer to a ping within 1s")
            good.send("still here")  # pinged too, answered, so still open
            assert good.recv(timeout=5) == "still here"
        wait_until(lambda: any(d["code"] == 1011 for d in disconnects(server)), 5,
                   message="the app sees 1011")


def test_idle_websockets_leave_slots_for_plain_http():
    # worker_connections 10: WebSockets may hold 9, one slot stays for HTTP.
    with GunicornServer(["-k", "asgi", "-w", "1", "--worker-connections", "10",
                         "asgi_ws_apps:app"]) as server, contextlib.ExitStack() as stack:
        url = f"ws://{server.host}:{server.port}/echo"
        idle = [stack.enter_context(connect(url)) for _ in range(9)]
        with pytest.raises(InvalidStatus) as info:
            connect(url, open_timeout=5)
        assert info.value.response.status_code == 503
        server.wait_for_log(r"websocket_max_connections \(9\) reached")
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("GET", "/hello")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
        conn.close()
        idle[0].close()
        # A slot freed: the next upgrade gets it.
        stack.enter_context(wait_until(lambda: _try_connect(url), 5, message="a slot"))


def _try_connect(url: str):
    try:
        return connect(url, open_timeout=5)
    except InvalidStatus:
        return None
