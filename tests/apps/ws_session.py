"""Serve a WebSocketSession on a real asyncio transport (a socketpair) in the test process.

The server side is a small asyncio.Protocol that parses the upgrade request with the real
parser, builds the scope with the worker's ScopeBuilder and hands over to the session, as the
asgi worker's connection does. The client side is raw bytes plus a wsproto client Connection.
Used by tests/core/test_asgi_websocket_session.py and test_asgi_websocket_liveness.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from gunicorn.asgi.scope import ScopeBuilder
from gunicorn.asgi.websocket import WebSocketSession, is_websocket_upgrade
from gunicorn.asgi.ws_limits import WebSocketLimits
from gunicorn.asgi.ws_transport import HTTP1Transport
from gunicorn.config import Config
from gunicorn.http.events import Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from wsproto.connection import Connection, ConnectionType

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (b"GET /ws?x=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() +
           b"\r\nSec-WebSocket-Version: 13\r\n")
LOG = logging.getLogger("test.asgi.websocket")


def upgrade(extra: bytes = b"") -> bytes:
    return UPGRADE + extra + b"\r\n"


class ServerSide(asyncio.Protocol):
    """Parse the upgrade request, then forward every callback to the session."""

    def __init__(self, app: Callable[..., Awaitable[None]], cfg: Config,
                 limits: WebSocketLimits | None = None) -> None:
        self.app = app
        self.cfg = cfg
        self.limits = limits
        self.parser = RequestParser(ParserOptions())
        self.session: WebSocketSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = 0
        self.lost = asyncio.Event()  # the transport is gone
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # uvloop's transports do not subclass asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.data_received(data)
            return
        self.parser.feed(data)
        request = self.parser.next_event()
        if not isinstance(request, Request):
            return
        assert is_websocket_upgrade(request)
        scope = ScopeBuilder().websocket(request, ("127.0.0.1", 1), ("127.0.0.1", 2))
        loop = asyncio.get_running_loop()
        self.session = WebSocketSession(
            transport=HTTP1Transport(self.transport, request), scope=scope, app=self.app,
            cfg=self.cfg, log=LOG, loop=loop, on_close=self.on_close, limits=self.limits)
        self.parser.next_event()  # EndOfMessage of the body-less request
        self.session.data_received(self.parser.trailing_data())
        self.task = loop.create_task(self.session.run())

    def on_close(self) -> None:
        self.closed += 1

    def eof_received(self) -> None:
        if self.session is not None:
            self.session.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set()
        if self.session is not None:
            self.session.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.session is not None:
            self.session.pause_writing()

    def resume_writing(self) -> None:
        if self.session is not None:
            self.session.resume_writing()


class Client:
    """Raw-socket client speaking frames through a wsproto client Connection."""

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.ws = Connection(ConnectionType.CLIENT)
        self.queue: list[Any] = []

    async def response_head(self) -> tuple[str, dict[str, str]]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[:-2]
        return lines[0], {k.lower(): v for k, v in (x.split(": ", 1) for x in lines[1:])}

    def send(self, event: Any) -> None:
        self.writer.write(self.ws.send(event))

    async def next_event(self) -> Any:
        while not self.queue:
            data = await self.reader.read(65536)
            self.ws.receive_data(data or None)
            self.queue.extend(self.ws.events())
        return self.queue.pop(0)


def run(scenario: Callable[..., Awaitable[Any]], app: Callable[..., Awaitable[None]],
        cfg: Config | None = None, limits: WebSocketLimits | None = None) -> Any:
    """Serve ``app`` on one end of a socketpair and run ``scenario(server, client)`` against
    it (5 s at most), on the loop ``Client.loop_factory`` makes."""
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        server = ServerSide(app, cfg or Config(), limits)
        await loop.connect_accepted_socket(lambda: server, a)
        reader, writer = await asyncio.open_connection(sock=b)
        try:
            return await asyncio.wait_for(scenario(server, Client(reader, writer)), 5)
        finally:
            writer.close()
            if server.task is not None:
                await asyncio.wait_for(asyncio.gather(server.task, return_exceptions=True), 5)
    with asyncio.Runner(loop_factory=Client.loop_factory) as runner:
        return runner.run(main())
