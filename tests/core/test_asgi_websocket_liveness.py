"""WebSocket keepalive pings and the write timeout in the session driver, on a socketpair with
sub-second settings (real processes: test_asgi_websocket_limits.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from apps.ws_session import LOG, Client, run, upgrade
from gunicorn.asgi.ws_limits import WebSocketLimits
from gunicorn.config import Config
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request, monkeypatch):
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        monkeypatch.setattr(Client, "loop_factory", uvloop.new_event_loop)
    else:
        monkeypatch.setattr(Client, "loop_factory", asyncio.new_event_loop)
    return request.param


def limits(**changes: float) -> WebSocketLimits:
    return dataclasses.replace(WebSocketLimits.from_config(Config()), **changes)


def recording_app(record: dict):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record["disconnect"] = message
                return
            await send({"type": "websocket.send", "text": message.get("text") or "?"})
    return app


def test_a_quiet_peer_is_pinged_and_stays_while_it_answers():
    record: dict = {}

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        for _ in range(3):  # three rounds: each ping answered outlives the timeout
            ping = await client.next_event()
            assert isinstance(ping, Ping) and len(ping.payload) == 4
            client.send(ping.response())
        client.send(TextMessage(data="still here"))
        assert (await client.next_event()).data == "still here"
        client.send(CloseConnection(code=1000))
        assert isinstance(await client.next_event(), CloseConnection)
        await server.task
    run(scenario, recording_app(record), limits=limits(ping_interval=0.2, ping_timeout=0.2))
    assert record["disconnect"]["code"] == 1000


def test_a_peer_that_never_answers_is_closed_with_1011(caplog):
    record: dict = {}

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        assert isinstance(await client.next_event(), Ping)  # not answered
        close = await client.next_event()
        assert (close.code, close.reason) == (1011, "keepalive ping timeout")
        assert await client.reader.read() == b""  # then the transport is dropped
        await server.task
    with caplog.at_level(logging.INFO, logger=LOG.name):
        run(scenario, recording_app(record), limits=limits(ping_interval=0.2, ping_timeout=0.2))
    assert record["disconnect"]["code"] == 1011
    assert "127.0.0.1:1: no answer to a ping" in caplog.text


def test_no_pings_when_the_interval_is_zero():
    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.reader.read(1), 0.5)
        client.send(CloseConnection(code=1000))
        assert isinstance(await client.next_event(), CloseConnection)
    run(scenario, recording_app({}), limits=limits(ping_interval=0, ping_timeout=0.1))


def flooding_app(record: dict):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        sent = 0
        try:
            for _ in range(400):
                await send({"type": "websocket.send", "bytes": b"f" * 65536})
                sent += 1
        except OSError as exc:  # ClientDisconnected
            record["error"] = type(exc).__name__
        record["sent"] = sent
        record["disconnect"] = await receive()
    return app


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(caplog):
    record: dict = {}

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        # Read nothing: the app's send() blocks until the write timeout drops the connection.
        await server.task
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario, flooding_app(record), limits=limits(write_timeout=0.4, ping_interval=0))
    assert record["sent"] < 400
    assert record["error"] == "ClientDisconnected"
    assert record["disconnect"] == {"type": "websocket.disconnect", "code": 1008,
                                    "reason": "write timeout"}
    lines = [r for r in caplog.records if "write_timeout" in r.getMessage()]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0].getMessage()


def test_a_slow_but_steady_reader_is_not_dropped():
    record: dict = {}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(40):
            await send({"type": "websocket.send", "bytes": b"s" * 65536})
        await send({"type": "websocket.close"})
        record["disconnect"] = await receive()

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        total = 0
        while True:
            await asyncio.sleep(0.05)  # pacing: a reader slower than the app, never stalled
            data = await client.reader.read(256 * 1024)
            client.ws.receive_data(data or None)
            for event in client.ws.events():
                if isinstance(event, BytesMessage):
                    total += len(event.data)
                elif isinstance(event, CloseConnection):
                    assert total == 40 * 65536
                    client.send(event.response())
                    await server.task
                    return
    run(scenario, app, limits=limits(write_timeout=0.3, ping_interval=0))
    assert record["disconnect"]["code"] == 1000


def test_a_closed_connection_that_never_drains_is_dropped(caplog):
    # The peer reads nothing, then sends its Close frame: the server's echo stays buffered
    # behind unread output while nothing is paused (the buffer is below its high-water mark),
    # the session ends, and without a bound the transport would flush (and hold its
    # connection slot) forever.
    record: dict = {}
    held: dict = {"paused": asyncio.Event()}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await held["paused"].wait()
        transport = held["server"].transport
        # Fill the kernel buffers until a little stays in the transport's own buffer.
        while transport.get_write_buffer_size() == 0:
            await send({"type": "websocket.send", "bytes": b"d" * 4096})
        record["buffered"] = transport.get_write_buffer_size()
        record["disconnect"] = await receive()

    async def scenario(server, client):
        held["server"] = server
        client.writer.write(upgrade())
        await client.response_head()
        client.writer.transport.pause_reading()
        held["paused"].set()
        while "buffered" not in record:
            await asyncio.sleep(0.01)
        client.send(CloseConnection(code=1000))
        await server.task  # the session is over, with output still buffered
        assert not server.lost.is_set()
        await server.lost.wait()
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario, app, limits=limits(write_timeout=0.4, ping_interval=0))
    assert 0 < record["buffered"] < 65536
    assert record["disconnect"]["code"] == 1000
    assert "(write_timeout)" in caplog.text
