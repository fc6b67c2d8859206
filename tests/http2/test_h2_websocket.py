"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT) on the asgi worker.

Real servers, a real client: ``h2.connection.H2Connection`` in client mode over a socket
(h2c by prior knowledge from a trusted loopback peer, or TLS with ALPN h2), which waits for
SETTINGS_ENABLE_CONNECT_PROTOCOL before it sends an extended CONNECT; the WebSocket frames on
the stream go through wsproto's frame layer (client side: masked).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from gunicorn.http.options import ParserOptions
from gunicorn.http2.session import RequestReady, Session, SessionConfig
from h2.errors import ErrorCodes
from harness import APPS, GunicornServer, wait_until
from hyperframe.frame import DataFrame
from test_h2_server import cert  # noqa: F401 - a fixture
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

HERE = Path(__file__).parent
ASGI = ["-k", "asgi", "--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
ENABLE_CONNECT = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL


class H2Client:
    """One HTTP/2 connection, client side, that opens WebSockets with extended CONNECT.

    Received DATA is credited back at once (``credit=False`` stops that, for a client that
    does not read)."""

    def __init__(self, port: int, *, cafile: str | None = None,
                 settings: dict[int, int] | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if cafile is not None:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.port = port
        self.scheme = "http" if cafile is None else "https"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.credit = True
        self.events: list[object] = []
        self.data: dict[int, bytearray] = {}  # every DATA byte received, per stream
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, pred, timeout: float = 5.0) -> bool:
        """Read until ``pred()`` holds (True), the server closes (False) or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such event")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                return bool(pred())
            for event in self.conn.receive_data(data):
                self.events.append(event)
                sid = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.DataReceived):
                    if self.credit and event.flow_controlled_length:
                        self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    self.data.setdefault(sid, bytearray()).extend(event.data)
            self.flush()
        return True

    def send_data(self, sid: int, data: bytes, end: bool = False, wait: bool = True) -> int:
        """Send ``data`` in frames within the server's windows (waiting for its credit unless
        ``wait`` is false); return the number of bytes sent."""
        conn = self.conn
        sent = 0
        while sent < len(data) or (end and not sent and not data):
            window = conn.local_flow_control_window(sid)
            if window <= 0 and data:
                if not wait:
                    break
                self.flush()
                self.pump(lambda: conn.local_flow_control_window(sid) > 0)
                continue
            n = min(len(data) - sent, window, conn.max_outbound_frame_size)
            conn.send_data(sid, data[sent:sent + n], end_stream=end and sent + n == len(data))
            sent += n
            if not data:
                break
        self.flush()
        return sent

    def of(self, kind, sid=None):
        return [e for e in self.events if isinstance(e, kind)
                and (sid is None or getattr(e, "stream_id", None) == sid)]

    def ended(self, sid: int) -> bool:
        return bool(self.of(h2.events.StreamEnded, sid) or self.of(h2.events.StreamReset, sid))

    def remote_settings(self):
        self.pump(lambda: self.of(h2.events.RemoteSettingsChanged))
        return self.conn.remote_settings

    def connect(self, path: str, *, protocol: str = "websocket", version: str | None = "13",
                headers=(), end: bool = False) -> int:
        """Send an extended CONNECT for ``path``; return its stream id."""
        sid = self.conn.get_next_available_stream_id()
        block = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", self.scheme),
                 (":path", path), (":authority", f"127.0.0.1:{self.port}")]
        if version is not None:
            block.append(("sec-websocket-version", version))
        self.conn.send_headers(sid, block + list(headers), end_stream=end)
        self.flush()
        return sid

    def response(self, sid: int) -> tuple[int, dict[bytes, bytes]]:
        """The status and fields of the answer to stream ``sid`` (waits for it)."""
        self.pump(lambda: self.of(h2.events.ResponseReceived, sid) or self.ended(sid))
        (resp,) = self.of(h2.events.ResponseReceived, sid)
        fields = dict(resp.headers)
        return int(fields[b":status"]), fields

    def body(self, sid: int) -> bytes:
        self.pump(lambda: self.ended(sid))
        return b"".join(e.data for e in self.of(h2.events.DataReceived, sid))

    def websocket(self, path: str, *, subprotocols=(), deflate: bool = False) -> WS:
        """An accepted WebSocket on a new stream (asserts the 200)."""
        headers = []
        if subprotocols:
            headers.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        extension = PerMessageDeflate() if deflate else None
        if extension is not None:
            headers.append(("sec-websocket-extensions", f"{extension.name}; {extension.offer()}"))
        sid = self.connect(path, headers=headers)
        status, fields = self.response(sid)
        assert status == 200, (status, fields)
        extensions = []
        agreed = fields.get(b"sec-websocket-extensions")
        if extension is not None and agreed:
            extension.finalize(agreed.decode().split(";", 1)[1].strip()
                               if ";" in agreed.decode() else "")
            extensions.append(extension)
        return WS(self, sid, fields, extensions)

    def get(self, path: str) -> tuple[int, bytes]:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                     (":authority", "t")], end_stream=True)
        self.flush()
        status, _ = self.response(sid)
        return status, self.body(sid)

    def close(self) -> None:
        self.sock.close()


class WS:
    """One WebSocket on one stream; frames through wsproto's frame layer (client side)."""

    def __init__(self, client: H2Client, sid: int, fields, extensions) -> None:
        self.client = client
        self.sid = sid
        self.fields = fields
        self.frames = Connection(ConnectionType.CLIENT, extensions)
        self.fed = 0  # bytes of client.data[sid] given to the frame layer
        self.received: list[object] = []

    @property
    def raw(self) -> bytearray:
        """Every byte the server sent on the stream."""
        return self.client.data.setdefault(self.sid, bytearray())

    def feed(self) -> None:
        raw = self.raw
        if len(raw) > self.fed:
            self.frames.receive_data(bytes(raw[self.fed:]))
            self.fed = len(raw)
            self.received.extend(self.frames.events())

    def send(self, event, end: bool = False) -> None:
        self.client.send_data(self.sid, self.frames.send(event), end)

    def next(self, kind=object, timeout: float = 5.0):
        """The next received event (of ``kind``; others before it are dropped)."""
        def found():
            self.feed()
            while self.received and not isinstance(self.received[0], kind):
                self.received.pop(0)
            return self.received
        self.client.pump(found, timeout)
        return self.received.pop(0)

    def ended(self) -> bool:
        return bool(self.client.of(h2.events.StreamEnded, self.sid))

    def reset(self) -> int | None:
        resets = self.client.of(h2.events.StreamReset, self.sid)
        return resets[0].error_code if resets else None


def recorded(client: H2Client, key: str) -> dict:
    """The websocket.disconnect the app received on the WebSocket opened with ``?key``."""
    def ask():
        status, body = client.get(f"/recorded?key={key}")
        assert status == 200
        return json.loads(body)
    return wait_until(ask, 10, interval=0.05, message=f"the disconnect of {key}")


def ws_server(*extra: str, app: str = "h2_ws_apps:app", env=None) -> GunicornServer:
    return GunicornServer([*ASGI, *extra, app], cwd=HERE, env=env)


@pytest.fixture(scope="module")
def srv():
    with ws_server("--websocket-max-message-size", "100000") as server:
        yield server


@pytest.fixture
def client(srv):
    c = H2Client(srv.port)
    yield c
    c.close()


# -- the announcement -------------------------------------------------------------------------

def test_asgi_announces_extended_connect(client):
    assert client.remote_settings()[ENABLE_CONNECT] == 1


def test_gthread_does_not_announce_and_refuses_protocol():
    with GunicornServer(["-k", "gthread", "--http-protocols", "h2,h1", "--http2-cleartext",
                         "prior-knowledge", "h2_apps:app"], cwd=HERE) as server:
        client = H2Client(server.port)
        assert client.remote_settings()[ENABLE_CONNECT] == 0
        # RFC 8441 §3: a :protocol the server did not enable is a malformed request.
        sid = client.connect("/ws")
        client.pump(lambda: client.ended(sid))
        (reset,) = client.of(h2.events.StreamReset, sid)
        assert reset.error_code == ErrorCodes.PROTOCOL_ERROR
        assert client.get("/") == (200, b"hello HTTP/2.0")  # the connection goes on
        client.close()


def test_not_announced_when_wsproto_is_missing():
    hidden = {"HIDE_MODULES": "wsproto",
              "PYTHONPATH": os.pathsep.join([str(APPS / "hidden"), str(APPS), str(HERE)])}
    with ws_server(env=hidden) as server:
        client = H2Client(server.port)
        assert client.remote_settings()[ENABLE_CONNECT] == 0
        sid = client.connect("/echo")
        client.pump(lambda: client.ended(sid))
        assert client.of(h2.events.StreamReset, sid)[0].error_code == ErrorCodes.PROTOCOL_ERROR
        assert client.get("/hello") == (200, b"hello")
        client.close()


# -- the handshake ----------------------------------------------------------------------------

def test_websocket_scope_over_h2(client):
    ws = client.websocket("/scope?a=1", subprotocols=["chat", "superchat"])
    assert ws.fields[b"sec-websocket-protocol"] == b"chat"
    assert b"sec-websocket-accept" not in ws.fields  # RFC 8441 §5
    scope = json.loads(ws.next(TextMessage).data)
    assert scope["type"] == "websocket" and scope["http_version"] == "2"
    assert scope["scheme"] == "ws" and scope["path"] == "/scope"
    assert scope["query_string"] == "a=1" and scope["subprotocols"] == ["chat", "superchat"]
    assert scope["headers"]["host"] == f"127.0.0.1:{client.port}"
    assert scope["headers"]["sec-websocket-version"] == "13"
    assert "websocket.http.response" in scope["extensions"]
    assert scope["client"][0] == "127.0.0.1"


@pytest.mark.parametrize("version,status", [(None, 400), ("8", 426)], ids=["none", "old"])
def test_bad_websocket_version(client, version, status):
    sid = client.connect("/echo", version=version)
    got, fields = client.response(sid)
    assert got == status
    assert client.pump(lambda: client.ended(sid))
    if status == 426:
        assert fields[b"sec-websocket-version"] == b"13"


def test_connect_that_ends_its_stream_is_400(client):
    sid = client.connect("/echo?ended", end=True)
    assert client.response(sid)[0] == 400
    assert client.get("/hello") == (200, b"hello")


def test_unknown_protocol_is_not_implemented(client):
    sid = client.connect("/echo", protocol="chat-over-bytes")
    assert client.response(sid)[0] == 501


def test_app_rejects_with_403(client):
    sid = client.connect("/reject")
    assert client.response(sid)[0] == 403
    assert client.body(sid) == b"403 Forbidden\n"


def test_denial_response(client):
    sid = client.connect("/deny")
    status, fields = client.response(sid)
    assert status == 401 and fields[b"x-why"] == b"token"
    assert client.body(sid) == b"no entry"
    assert client.of(h2.events.StreamEnded, sid)


def test_app_error_before_accept_is_500_without_detail(client):
    sid = client.connect("/boom-before")
    assert client.response(sid)[0] == 500
    assert b"secret" not in client.body(sid)


# -- messages ---------------------------------------------------------------------------------

def test_echo_text_binary_fragmented_and_ping(client):
    ws = client.websocket("/echo")
    assert ws.fields[b"x-app"] == b"echo"
    ws.send(TextMessage("hello h2"))
    assert ws.next(TextMessage).data == "hello h2"
    ws.send(BytesMessage(b"\x00\xff" * 5000))
    assert ws.next(BytesMessage).data == b"\x00\xff" * 5000
    ws.send(TextMessage("frag", message_finished=False))
    ws.send(TextMessage("mented", message_finished=True))
    assert ws.next(TextMessage).data == "fragmented"
    ws.send(Ping(b"p1"))
    assert ws.next(Pong).payload == b"p1"


def test_permessage_deflate_over_h2(client):
    ws = client.websocket("/echo", deflate=True)
    assert ws.fields[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    text = "compress me " * 500
    before = len(ws.raw)
    ws.send(TextMessage(text))
    assert ws.next(TextMessage).data == text
    frame = bytes(ws.raw[before:])
    assert frame[0] & 0x40  # RSV1: the server compressed its message (RFC 7692 §6)
    assert len(frame) < len(text) // 10


def test_message_size_limit_closes_1009(client):
    ws = client.websocket("/echo?big")
    ws.send(BytesMessage(b"x" * 150000))
    close = ws.next(CloseConnection)
    assert close.code == 1009
    assert recorded(client, "big")["code"] == 1009


def test_large_message_within_a_small_client_window(srv):
    client = H2Client(srv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    ws = client.websocket("/big?n=300000")
    part = ws.next(BytesMessage, timeout=10)
    data = part.data
    while not part.message_finished:
        part = ws.next(BytesMessage, timeout=10)
        data += part.data
    assert data == b"b" * 300000
    assert all(len(e.data) <= 1000 for e in client.of(h2.events.DataReceived, ws.sid))
    client.close()


def test_reading_pauses_for_an_app_that_does_not_receive(client):
    # The session stops reading once about 1 MiB of messages waits for the application; from
    # then on no credit comes back, so the client is held at its stream window.
    ws = client.websocket("/idle")
    sent = 0
    backlog = b""
    def spent():
        nonlocal sent, backlog
        while True:
            if not backlog:
                backlog = ws.frames.send(TextMessage("i" * 60000))
            n = client.send_data(ws.sid, backlog, wait=False)
            sent += n
            backlog = backlog[n:]
            if backlog:
                return True  # the window is spent
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sent <= 2 * 1024 * 1024:
        client.pump(spent)
        try:  # credit for what the session took before it paused may still come
            client.pump(lambda: client.conn.local_flow_control_window(ws.sid) > 0, timeout=1)
        except TimeoutError:
            break
    assert 1024 * 1024 <= sent <= 1024 * 1024 + 4 * 65536


# -- closing ----------------------------------------------------------------------------------

def test_client_closes(client):
    ws = client.websocket("/echo?client-closes")
    ws.send(CloseConnection(1000, "bye"))
    close = ws.next(CloseConnection)
    assert close.code == 1000
    client.pump(ws.ended)  # RFC 8441 §5: then END_STREAM, as TCP's FIN
    assert recorded(client, "client-closes") == {"type": "websocket.disconnect", "code": 1000,
                                                  "reason": "bye"}


def test_app_closes(client):
    ws = client.websocket("/echo?app-closes")
    ws.send(TextMessage("close 4000 done"))
    close = ws.next(CloseConnection)
    assert (close.code, close.reason) == (4000, "done")
    assert not ws.ended()
    ws.send(close.response(), end=True)
    client.pump(ws.ended)
    assert ws.reset() is None
    assert recorded(client, "app-closes")["code"] == 4000


def test_reset_stream_is_disconnect_1006(client):
    ws = client.websocket("/echo?reset")
    ws.send(TextMessage("x"))
    ws.next(TextMessage)
    client.conn.reset_stream(ws.sid, ErrorCodes.CANCEL)
    client.flush()
    assert recorded(client, "reset")["code"] == 1006


def test_end_stream_without_close_is_1006(client):
    ws = client.websocket("/echo?eof")
    client.conn.end_stream(ws.sid)
    client.flush()
    assert recorded(client, "eof")["code"] == 1006


def test_protocol_error_closes_1002_then_waits_for_end_stream(client):
    ws = client.websocket("/echo?unmasked")
    client.send_data(ws.sid, b"\x81\x02hi")  # RFC 6455 §5.1: client frames must be masked
    assert ws.next(CloseConnection).code == 1002
    client.pump(ws.ended)  # the server's side ends; it reads on until the client's END_STREAM
    client.send_data(ws.sid, b"", end=True)
    assert recorded(client, "unmasked")["code"] == 1002
    assert client.get("/hello") == (200, b"hello")
    assert ws.reset() is None  # no RST_STREAM: the client ended its side in time


def test_websockets_and_requests_multiplexed(client):
    first = client.websocket("/echo")
    second = client.websocket("/echo")
    first.send(TextMessage("one"))
    second.send(TextMessage("two"))
    assert client.get("/hello") == (200, b"hello")
    assert second.next(TextMessage).data == "two"
    assert first.next(TextMessage).data == "one"
    second.send(CloseConnection(1000))
    assert second.next(CloseConnection).code == 1000
    first.send(TextMessage("still here"))
    assert first.next(TextMessage).data == "still here"
    assert client.get("/hello") == (200, b"hello")


def test_starlette_websocket_endpoints_over_h2(srv):
    with ws_server(app="asgi_ws_starlette:app") as server:
        client = H2Client(server.port)
        ws = client.websocket("/sum", subprotocols=["sum.v1"])
        assert ws.fields[b"sec-websocket-protocol"] == b"sum.v1"
        ws.send(TextMessage(json.dumps([1, 2, 39])))
        assert json.loads(ws.next(TextMessage).data) == {"sum": 42}
        echo = client.websocket("/echo")
        echo.send(TextMessage("hi"))
        assert echo.next(TextMessage).data == "echo: hi"
        sid = client.connect("/guarded")
        assert client.response(sid)[0] == 403
        client.close()


# -- limits, timeouts, stopping ---------------------------------------------------------------

def test_slot_cap_and_write_timeout():
    with ws_server("--websocket-max-connections", "1", "--write-timeout", "1") as server:
        client = H2Client(server.port)
        client.credit = False  # a client that reads nothing: the server's windows run dry
        ws = client.websocket("/flood?flood")
        sid = client.connect("/echo")
        assert client.response(sid)[0] == 503  # websocket_max_connections, as on HTTP/1.1
        client.pump(lambda: ws.reset() is not None, timeout=15)
        assert ws.reset() == ErrorCodes.CANCEL  # RFC 8441 §5: the abrupt end
        server.wait_for_log(r"read nothing for 1s, dropping the connection \(write_timeout\)")
        reader = H2Client(server.port)
        assert recorded(reader, "flood")["code"] == 1008
        reader.close()
        client.close()


def test_graceful_stop_closes_with_1001():
    with ws_server("--log-level", "debug") as server:
        client = H2Client(server.port)
        ws = client.websocket("/echo")
        server.send_signal(signal.SIGTERM)
        close = ws.next(CloseConnection, timeout=10)
        assert close.code == 1001
        client.pump(lambda: client.of(h2.events.ConnectionTerminated))
        assert client.of(h2.events.ConnectionTerminated)[0].error_code == ErrorCodes.NO_ERROR
        # h2's client state machine ends at GOAWAY; a real client still answers the Close on
        # the accepted stream, so the reply goes as a raw frame.
        reply = DataFrame(ws.sid, ws.frames.send(close.response()), flags=["END_STREAM"])
        client.sock.sendall(reply.serialize())
        assert server.wait_exit(15) == 0
        assert "close handshake timed out" not in server.log()
        client.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl needed for a test cert")
def test_tls_alpn_h2_websocket(cert):  # noqa: F811 - the fixture
    certfile, keyfile = cert
    with GunicornServer(["-k", "asgi", "--http-protocols", "h2,h1", "--certfile", certfile,
                         "--keyfile", keyfile, "h2_ws_apps:app"], cwd=HERE) as server:
        client = H2Client(server.port, cafile=certfile)
        assert client.remote_settings()[ENABLE_CONNECT] == 1
        ws = client.websocket("/echo", deflate=True)
        ws.send(TextMessage("scheme"))
        assert ws.next(TextMessage).data == "wss"
        ws.send(CloseConnection(1000))
        assert ws.next(CloseConnection).code == 1000
        client.close()


# -- the session, sans-IO ---------------------------------------------------------------------

def _session(enabled: bool) -> tuple[Session, h2.connection.H2Connection]:
    session = Session(SessionConfig(ParserOptions(), enable_connect_protocol=enabled),
                      trusted=False, is_ssl=True)
    session.initiate()
    peer = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    peer.initiate_connection()
    peer.receive_data(session.data_to_send())
    return session, peer


def _extended_connect(peer, method="CONNECT", **pseudo):
    block = {":method": method, ":protocol": "websocket", ":scheme": "https", ":path": "/c",
             ":authority": "example.com", **pseudo}
    peer.send_headers(1, [(k, v) for k, v in block.items() if v is not None] +
                      [("sec-websocket-version", "13")])
    return peer.data_to_send()


def test_session_maps_extended_connect_when_enabled():
    session, peer = _session(True)
    assert peer.remote_settings.enable_connect_protocol == 1
    (ready,) = [e for e in session.receive(_extended_connect(peer), 0.0)
                if isinstance(e, RequestReady)]
    request = ready.request
    assert (request.method, request.path, request.upgrade) == ("CONNECT", "/c", "websocket")
    assert request.header("HOST") == "example.com" and not ready.ended


@pytest.mark.parametrize("enabled,pseudo", [
    (False, {}),
    (True, {"method": "GET"}),
    (True, {":path": None}),
    (True, {":scheme": None}),
    (True, {":protocol": ""}),
], ids=["not-announced", "not-connect", "no-path", "no-scheme", "empty-protocol"])
def test_session_resets_malformed_extended_connect(enabled, pseudo):
    session, peer = _session(enabled)
    peer.config.validate_outbound_headers = False
    events = session.receive(_extended_connect(peer, **pseudo), 0.0)
    assert not [e for e in events if isinstance(e, RequestReady)]
    events = peer.receive_data(session.data_to_send())
    (reset,) = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert reset.error_code == ErrorCodes.PROTOCOL_ERROR

