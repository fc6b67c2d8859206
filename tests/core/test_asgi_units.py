"""The asgi layer in-process: scopes from parsed bytes, lifespan against small apps, and one
HTTPConnection on a real socketpair fed whole, byte by byte and in random splits."""

from __future__ import annotations

import asyncio
import socket
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from gunicorn.asgi.connection import HTTPConnection
from gunicorn.asgi.context import WorkerContext
from gunicorn.asgi.cycle import _decode_headers, _status_line
from gunicorn.asgi.errors import LifespanFailure, ProtocolViolation
from gunicorn.asgi.lifespan import Lifespan
from gunicorn.asgi.scope import ScopeBuilder, socket_address
from gunicorn.config.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.events import Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def parse(raw: bytes, **kwargs) -> Request:
    parser = RequestParser(ParserOptions(), **kwargs)
    parser.feed(raw)
    event = parser.next_event()
    assert isinstance(event, Request)
    return event


# -- scopes ---------------------------------------------------------------------------------------

def test_http_scope_from_bytes():
    req = parse(b"POST /a%20b/c?x=1&y=%2F HTTP/1.0\r\nHost: h\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n")
    scope = ScopeBuilder().http(req, ("10.0.0.1", 5000), ("10.0.0.2", 80))
    assert scope["type"] == "http" and scope["http_version"] == "1.0"
    assert scope["method"] == "POST" and scope["scheme"] == "http"
    assert scope["path"] == "/a b/c" and scope["raw_path"] == b"/a%20b/c"
    assert scope["query_string"] == b"x=1&y=%2F"
    assert scope["headers"] == [(b"host", b"h"), (b"x-two", b"1"), (b"x-two", b"2")]
    assert scope["client"] == ("10.0.0.1", 5000) and scope["server"] == ("10.0.0.2", 80)
    assert "state" not in scope


@pytest.mark.parametrize("root, path, expected", [
    ("/app", "/x", "/app/x"), ("/app/", "/x", "/app/x"), ("/app", "/app/x", "/app/x"),
    ("/app", "/app", "/app"), ("/app", "/apple", "/app/apple"), ("", "/x", "/x"),
], ids=["prefixed", "trailing-slash", "already-there", "exact", "lookalike", "none"])
def test_root_path_is_part_of_path(root, path, expected):
    scope = ScopeBuilder(root).http(parse(f"GET {path} HTTP/1.1\r\n\r\n".encode()), None, None)
    assert scope["path"] == expected and scope["raw_path"] == expected.encode()
    assert scope["root_path"] == root.rstrip("/")


def test_state_is_copied_per_scope():
    builder = ScopeBuilder()
    builder.state = {"db": "pool"}
    req = parse(b"GET / HTTP/1.1\r\n\r\n")
    first, second = builder.http(req, None, None), builder.http(req, None, None)
    first["state"]["db"] = "changed"
    assert second["state"] == {"db": "pool"} and builder.state == {"db": "pool"}


def test_proxy_protocol_addresses_win():
    options = ParserOptions.build(proxy_protocol="v1")
    parser = RequestParser(options, proxy_trusted=True)
    parser.feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nGET / HTTP/1.1\r\n\r\n")
    req = parser.next_event()
    scope = ScopeBuilder().http(req, ("127.0.0.1", 9), ("127.0.0.1", 80))
    assert scope["client"] == ("1.2.3.4", 1111) and scope["server"] == ("5.6.7.8", 2222)


def test_websocket_scope():
    req = parse(b"GET /ws?t=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Protocol: chat, , superchat\r\n\r\n", is_ssl=True)
    scope = ScopeBuilder("/root").websocket(req, ("1.1.1.1", 1), ("2.2.2.2", 443))
    assert scope["type"] == "websocket" and scope["scheme"] == "wss"
    assert scope["subprotocols"] == ["chat", "superchat"] and "method" not in scope
    assert scope["path"] == "/root/ws" and scope["query_string"] == b"t=1"


@pytest.mark.parametrize("addr, expected", [
    (("127.0.0.1", 80), ("127.0.0.1", 80)), (("::1", 80, 0, 0), ("::1", 80)),
    ("/tmp/s.sock", ("/tmp/s.sock", None)), (b"", None), ("", None), (None, None),
], ids=["v4", "v6", "unix", "unnamed-bytes", "unnamed", "none"])
def test_socket_address(addr, expected):
    assert socket_address(addr) == expected


# -- lifespan -------------------------------------------------------------------------------------

class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg, *args, **kwargs):
        self.lines.append(msg % args)

    error = info = warning = debug


def run_lifespan(app, mode, timeout=1.0):
    async def main():
        lifespan = Lifespan(app, mode, _Log(), timeout=timeout)
        await lifespan.startup()
        await lifespan.shutdown()
        return lifespan
    return asyncio.run(main())


def test_lifespan_complete_sets_state_and_runs_shutdown():
    seen = []

    async def app(scope, receive, send):
        assert (await receive())["type"] == "lifespan.startup"
        scope["state"]["k"] = "v"
        await send({"type": "lifespan.startup.complete"})
        seen.append((await receive())["type"])
        await send({"type": "lifespan.shutdown.complete"})

    lifespan = run_lifespan(app, "auto")
    assert lifespan.supported and lifespan.state == {"k": "v"}
    assert seen == ["lifespan.shutdown"]


async def _raises(scope, receive, send):
    raise KeyError(scope["type"])


async def _returns(scope, receive, send):
    return None


async def _fails(scope, receive, send):
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no db"})


async def _hangs(scope, receive, send):
    await asyncio.sleep(10)


@pytest.mark.parametrize("app, mode, outcome", [
    (_raises, "auto", "unsupported"), (_returns, "auto", "unsupported"),
    (_raises, "on", "KeyError"), (_returns, "on", "returned without answering"),
    (_fails, "auto", "no db"), (_fails, "on", "no db"), (_hangs, "auto", "timed out"),
    (_raises, "off", "unsupported"),
], ids=["auto-raises", "auto-returns", "on-raises", "on-returns", "auto-failed", "on-failed",
        "timeout", "off"])
def test_lifespan_outcomes(app, mode, outcome):
    if outcome == "unsupported":
        assert not run_lifespan(app, mode).supported
    else:
        with pytest.raises(LifespanFailure, match=outcome):
            run_lifespan(app, mode, timeout=0.2)


# -- one connection on a socketpair -----------------------------------------------------------------

async def echo_app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = scope["method"].encode() + b" " + scope["raw_path"] + b" " + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


PIPELINE = (b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
            b"GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
EXPECTED = [b"GET /one ", b"POST /two hello", b"POST /three abcde", b"GET /four "]


def serve_pieces(pieces: list[bytes]) -> list[bytes]:
    """Send ``pieces`` to one HTTPConnection over a socketpair; return the response bodies."""
    async def main():
        loop = asyncio.get_running_loop()
        cfg = Config()
        worker = SimpleNamespace(cfg=cfg, log=Logger(cfg), nr=0, max_requests=0, alive=True)
        ctx = WorkerContext(worker, loop, echo_app)
        ctx.open_count = 1
        server_sock, client_sock = socket.socketpair()
        conn = HTTPConnection(ctx)
        await loop.connect_accepted_socket(lambda: conn, server_sock)
        reader, writer = await asyncio.open_connection(sock=client_sock)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 ")[1:]]
    return asyncio.run(main())


def test_pipeline_whole():
    assert serve_pieces([PIPELINE]) == EXPECTED


def test_pipeline_byte_by_byte():
    assert serve_pieces([PIPELINE[i:i + 1] for i in range(len(PIPELINE))]) == EXPECTED


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(PIPELINE) - 1), max_size=12))
def test_pipeline_random_splits(cuts):
    bounds = [0, *sorted(set(cuts)), len(PIPELINE)]
    assert (serve_pieces([PIPELINE[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
            == EXPECTED)


# -- response messages ------------------------------------------------------------------------------

@pytest.mark.parametrize("status, line", [(200, "200 OK"), (HTTPStatus.NOT_FOUND, "404 Not Found"),
                                          (599, "599")], ids=["int", "httpstatus", "unknown"])
def test_status_line(status, line):
    assert _status_line(status) == line


@pytest.mark.parametrize("status", [True, 101, 103, "200", 1000, None],
                         ids=["bool", "101", "103", "str", "too-big", "none"])
def test_status_line_refuses(status):
    with pytest.raises(ProtocolViolation):
        _status_line(status)


def test_decode_headers():
    headers, close = _decode_headers([(b"X-A", b"1"), [bytearray(b"connection"), b"Close"]])
    assert headers == [("X-A", "1"), ("connection", "Close")] and close
    with pytest.raises(ProtocolViolation):
        _decode_headers([("x-str", "value")])
    with pytest.raises(ProtocolViolation):
        _decode_headers([(b"just-a-name",)])
