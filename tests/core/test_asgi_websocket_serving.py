"""WebSockets served by a real ``gunicorn -k asgi`` process, driven by the ``websockets`` client
library and by raw sockets for the protocol errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import urllib.request
import zlib

import pytest
from harness import GunicornServer, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

HEAD = ("GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n")
KEY = base64.b64encode(b"0123456789abcdef").decode()


@pytest.fixture(scope="module")
def srv():
    with GunicornServer(["-k", "asgi", "-w", "1", "--graceful-timeout", "5",
                         "asgi_ws_apps:app"]) as server:
        yield server


@pytest.fixture(scope="module")
def starlette_srv():
    with GunicornServer(["-k", "asgi", "-w", "1", "asgi_ws_starlette:app"]) as server:
        yield server


def ws_url(server: GunicornServer, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def disconnects(server: GunicornServer) -> list[dict]:
    with urllib.request.urlopen(f"{server.url}/disconnects", timeout=5) as resp:
        return json.loads(resp.read())


def raw_handshake(server: GunicornServer, head: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(head.encode("latin-1"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return sock, data


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def masked(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload)]) + mask + body


def test_echo_text_binary_subprotocol_and_headers(srv):
    with connect(ws_url(srv, "/echo"), subprotocols=["chat", "other"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers["x-app"] == "echo"
        ws.send("scheme")
        assert ws.recv(timeout=5) == "ws"
        ws.send("héllo ☃")
        assert ws.recv(timeout=5) == "héllo ☃"
        ws.send(b"\x00\xff" * 40000)
        assert ws.recv(timeout=5) == b"\x00\xff" * 40000


def test_fragmented_message_is_reassembled(srv):
    with connect(ws_url(srv, "/echo")) as ws:
        ws.send(["frag", "men", "ted"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.send([b"a" * 70000, b"b"])
        assert ws.recv(timeout=5) == b"a" * 70000 + b"b"


def test_ping_is_answered(srv):
    with connect(ws_url(srv, "/echo")) as ws:
        assert ws.ping(b"are you there").wait(5)


def test_client_close_code_reaches_the_app(srv):
    with connect(ws_url(srv, "/echo")) as ws:
        ws.close(code=4001, reason="client bye")
        assert ws.protocol.close_rcvd.code == 4001
    wait_until(lambda: {"type": "websocket.disconnect", "code": 4001, "reason": "client bye"}
               in disconnects(srv), 5, message="disconnect 4001")


def test_server_close_code_reaches_the_client(srv):
    with connect(ws_url(srv, "/echo")) as ws:
        ws.send("close 4002 app done")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "app done")


def test_denial_response_status_headers_and_body(srv):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv, "/deny"), open_timeout=5)
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-why"] == "token"
    assert response.body == b"no entry"


def test_close_before_accept_is_403(srv):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv, "/reject"), open_timeout=5)
    assert info.value.response.status_code == 403


def test_app_error_before_accept_is_500_without_detail(srv):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv, "/boom-before"), open_timeout=5)
    assert info.value.response.status_code == 500
    assert b"secret" not in (info.value.response.body or b"")
    srv.wait_for_log("RuntimeError: secret detail")


def test_app_error_after_accept_is_1011(srv):
    with connect(ws_url(srv, "/boom-after")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 1011


def test_oversized_message_is_closed_with_1009(srv):
    with connect(ws_url(srv, "/echo"), max_size=None) as ws:
        ws.send(b"x" * (16 * 1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd.code == 1009
    # A message at the limit still goes through.
    with connect(ws_url(srv, "/echo"), max_size=None) as ws:
        ws.send(b"y" * (16 * 1024 * 1024))
        assert len(ws.recv(timeout=10)) == 16 * 1024 * 1024


@pytest.mark.parametrize("head,status,extra", [
    (HEAD.replace("Sec-WebSocket-Key: {key}\r\n", ""), b"400", None),
    (HEAD.replace("{key}", "c2hvcnQ="), b"400", None),
    (HEAD.replace("Sec-WebSocket-Version: {version}\r\n", ""), b"400", None),
    (HEAD.replace("{version}", "8"), b"426", b"Sec-WebSocket-Version: 13\r\n"),
], ids=["missing-key", "short-key", "missing-version", "version-8"])
def test_malformed_handshakes(srv, head, status, extra):
    sock, data = raw_handshake(srv, head.format(key=KEY, version="13"))
    with sock:
        assert data.startswith(b"HTTP/1.1 " + status + b" ")
        if extra:
            assert extra in data
        read_to_eof(sock)  # the connection is closed after the refusal


def test_unmasked_client_frame_is_closed_with_1002(srv):
    sock, data = raw_handshake(srv, HEAD.format(key=KEY, version="13"))
    with sock:
        assert data.startswith(b"HTTP/1.1 101 ")
        sock.sendall(b"\x81\x05hello")  # text frame without the MASK bit
        frames = data.split(b"\r\n\r\n", 1)[1] + read_to_eof(sock)
    assert frames[0] == 0x88  # FIN + Close
    assert struct.unpack("!H", frames[2:4])[0] == 1002


def test_raw_frames_echo_and_peer_close(srv):
    sock, data = raw_handshake(srv, HEAD.format(key=KEY, version="13"))
    with sock:
        sock.sendall(masked(0x1, b"raw"))
        frames = data.split(b"\r\n\r\n", 1)[1]
        while len(frames) < 5:
            frames += sock.recv(4096)
        assert frames == b"\x81\x03raw"  # unmasked server frame
        sock.sendall(masked(0x8, struct.pack("!H", 1000) + b"ok"))
        # The Close echo (code and reason), then the server closes TCP first.
        assert read_to_eof(sock) == b"\x88\x04\x03\xe8ok"


def test_abrupt_client_close_gives_1006(srv):
    before = sum(d["code"] == 1006 for d in disconnects(srv))
    sock, data = raw_handshake(srv, HEAD.format(key=KEY, version="13"))
    assert data.startswith(b"HTTP/1.1 101 ")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no Close frame
    wait_until(lambda: sum(d["code"] == 1006 for d in disconnects(srv)) == before + 1, 5,
               message="a 1006 disconnect")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_term_closes_websockets_with_1001(loop):
    with GunicornServer(["-k", "asgi", "-w", "1", "--asgi-loop", loop, "--graceful-timeout", "5",
                         "asgi_ws_apps:app"]) as server:
        server.wait_workers(1)
        with connect(ws_url(server, "/echo")) as ws:
            ws.send("ready")
            assert ws.recv(timeout=5) == "ready"
            server.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd.code == 1001
        assert server.wait_exit(10) == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_wss_over_tls(tmp_path):
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(keyfile), "-out", str(certfile)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(cafile=str(certfile))
    with GunicornServer(["-k", "asgi", "-w", "1", "--certfile", str(certfile),
                         "--keyfile", str(keyfile), "asgi_ws_apps:app"]) as server:
        url = f"wss://{server.host}:{server.port}/echo"
        with connect(url, ssl=context) as ws:
            ws.send("scheme")
            assert ws.recv(timeout=5) == "wss"
            ws.send(b"\x01" * 100000)
            assert ws.recv(timeout=5) == b"\x01" * 100000
            ws.close(code=4003, reason="tls bye")
            assert ws.protocol.close_rcvd.code == 4003
        with connect(url, ssl=context) as ws:
            ws.send("close 4004 server tls bye")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd.code == 4004


def test_starlette_endpoint(starlette_srv):
    with connect(ws_url(starlette_srv, "/echo")) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "echo: hi"
    with connect(ws_url(starlette_srv, "/sum"), subprotocols=["sum.v1"]) as ws:
        assert ws.subprotocol == "sum.v1"
        ws.send(json.dumps([1, 2, 3]))
        assert json.loads(ws.recv(timeout=5)) == {"sum": 6}


def test_starlette_close_before_accept_and_after(starlette_srv):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(starlette_srv, "/guarded"), open_timeout=5)
    assert info.value.response.status_code == 403
    with connect(ws_url(starlette_srv, "/guarded?token=ok")) as ws:
        assert ws.recv(timeout=5) == "welcome"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1000


# -- permessage-deflate (RFC 7692) ------------------------------------------------------------

def test_compressed_echo_text_binary_and_fragmented(srv):
    # The websockets client offers "permessage-deflate; client_max_window_bits" by default.
    with connect(ws_url(srv, "/echo"), max_size=None) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
        assert len(ws.protocol.extensions) == 1
        for message in ("héllo ☃ " * 50, b"\x00\xff" * 40000, "x" * 200000, b""):
            ws.send(message)
            assert ws.recv(timeout=5) == message
        ws.send(["frag", "men", "ted"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.send([b"a" * 70000, b"b"])
        assert ws.recv(timeout=5) == b"a" * 70000 + b"b"


@pytest.mark.parametrize("params,expected", [
    ({"server_no_context_takeover": True},
     {"remote_no_context_takeover": True, "local_no_context_takeover": False,
      "remote_max_window_bits": 15}),
    ({"client_no_context_takeover": True},
     {"remote_no_context_takeover": False, "local_no_context_takeover": True}),
    ({"server_max_window_bits": 10}, {"remote_max_window_bits": 10}),
    ({"client_max_window_bits": 10}, {"local_max_window_bits": 10}),
    ({"server_no_context_takeover": True, "client_no_context_takeover": True,
      "server_max_window_bits": 9, "client_max_window_bits": 9},
     {"remote_no_context_takeover": True, "local_no_context_takeover": True,
      "remote_max_window_bits": 9, "local_max_window_bits": 9}),
], ids=["server-nct", "client-nct", "server-bits", "client-bits", "all"])
def test_negotiated_deflate_parameters(srv, params, expected):
    factory = ClientPerMessageDeflateFactory(**params)
    with connect(ws_url(srv, "/echo"), extensions=[factory]) as ws:
        (extension,) = ws.protocol.extensions
        for name, value in expected.items():
            assert getattr(extension, name) == value, name
        text = "the same words again and again, " * 40
        for _ in range(3):  # context takeover (or not) across messages
            ws.send(text)
            assert ws.recv(timeout=5) == text


def test_declined_offer_falls_back_to_the_next_one(srv):
    declined = ClientPerMessageDeflateFactory(server_max_window_bits=8)
    with connect(ws_url(srv, "/echo"), extensions=[declined]) as ws:
        assert ws.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("uncompressed")
        assert ws.recv(timeout=5) == "uncompressed"
    second = ClientPerMessageDeflateFactory(client_no_context_takeover=True)
    with connect(ws_url(srv, "/echo"), extensions=[declined, second]) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == \
            "permessage-deflate; client_no_context_takeover"
        ws.send("compressed")
        assert ws.recv(timeout=5) == "compressed"


def test_compressed_frames_on_the_wire(srv):
    head = HEAD.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    sock, data = raw_handshake(srv, head.format(key=KEY, version="13"))
    with sock:
        assert b"\r\nsec-websocket-extensions: permessage-deflate\r\n" in data.lower()
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (comp.compress(b"wire " * 30) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        sock.sendall(masked(0x1, payload, rsv1=True))
        frames = data.split(b"\r\n\r\n", 1)[1]
        while len(frames) < 2 or len(frames) < 2 + frames[1]:
            frames += sock.recv(4096)
        assert frames[0] == 0xC1  # FIN + RSV1 + text: the echo is compressed
        inflated = zlib.decompressobj(-15).decompress(frames[2:2 + frames[1]] + b"\0\0\xff\xff")
        assert inflated == b"wire " * 30
        sock.sendall(masked(0x9, b"p", rsv1=True))  # a compressed ping: protocol error
        rest = frames[2 + frames[1]:] + read_to_eof(sock)
    assert rest[0] == 0x88 and struct.unpack("!H", rest[2:4])[0] == 1002


def test_deflate_setting_off():
    with GunicornServer(["-k", "asgi", "-w", "1", "--websocket-per-message-deflate", "off",
                         "asgi_ws_apps:app"]) as server:
        with connect(ws_url(server, "/echo")) as ws:
            assert ws.protocol.extensions == []
            ws.send("plain")
            assert ws.recv(timeout=5) == "plain"
