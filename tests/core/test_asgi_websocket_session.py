"""WebSocketSession on a real asyncio transport (a socketpair), in one process (the set-up is
in tests/apps/ws_session.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from apps.ws_session import LOG, UPGRADE, Client, run, upgrade
from gunicorn.asgi import websocket as ws_module
from gunicorn.asgi.errors import ClientDisconnected
from gunicorn.config import Config
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request, monkeypatch):
    """Every scenario runs on both loops the worker supports."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        monkeypatch.setattr(Client, "loop_factory", uvloop.new_event_loop, raising=False)
    else:
        monkeypatch.setattr(Client, "loop_factory", asyncio.new_event_loop, raising=False)
    return request.param


async def echo_app(scope, receive, send):
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub, "headers": [(b"x-echo", b"1")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            scope["state"]["disconnect"] = message
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            continue
        await send({"type": "websocket.send", **{k: message[k] for k in ("text", "bytes")
                                                 if k in message}})


def with_state(app):
    state: dict[str, Any] = {}

    async def wrapped(scope, receive, send):
        scope["state"] = state
        await app(scope, receive, send)
    return wrapped, state


def test_echo_text_and_bytes_and_close_from_client():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade(b"Sec-WebSocket-Protocol: chat, other\r\n"))
        status, headers = await client.response_head()
        assert status == "HTTP/1.1 101 Switching Protocols"
        assert headers["sec-websocket-protocol"] == "chat" and headers["x-echo"] == "1"
        client.send(TextMessage(data="héllo"))
        assert (await client.next_event()).data == "héllo"
        client.send(BytesMessage(data=b"\x00" * 100000))
        got = b""
        while len(got) < 100000:
            got += (await client.next_event()).data
        client.send(Ping(payload=b"p"))
        assert isinstance(await client.next_event(), Pong)
        client.send(CloseConnection(code=1000, reason="bye"))
        close = await client.next_event()
        assert close.code == 1000
        assert await client.reader.read() == b""  # the server closes TCP first
        await server.task
        assert server.closed == 1 and server.session.status == 101
    run(scenario, app)
    assert state["disconnect"] == {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}


def test_frames_sent_with_the_request_are_delivered_after_accept():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade() + client.ws.send(TextMessage(data="early")))
        await client.response_head()
        assert (await client.next_event()).data == "early"
    run(scenario, app)


def test_application_close_is_a_handshake():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.send(TextMessage(data="close"))
        close = await client.next_event()
        assert (close.code, close.reason) == (4000, "asked")
        client.send(close.response())
        assert await client.reader.read() == b""
        await server.task
    run(scenario, app)
    assert state["disconnect"]["code"] == 4000


def test_abrupt_client_close_gives_1006():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.writer.transport.abort()
        await server.task
        assert server.closed == 1
    run(scenario, app)
    assert state["disconnect"]["code"] == 1006


def test_close_before_accept_is_403_and_receive_then_disconnects():
    seen = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.close"})
        seen.append(await receive())

    async def scenario(server, client):
        client.writer.write(upgrade())
        status, headers = await client.response_head()
        assert status == "HTTP/1.1 403 Forbidden" and headers["connection"] == "close"
        await server.task
        assert server.session.status == 403
    run(scenario, app)
    assert seen[0]["type"] == "websocket.disconnect"


def test_denial_response_reaches_the_client():
    async def app(scope, receive, send):
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"6")]})
        await send({"type": "websocket.http.response.body", "body": b"denied"})

    async def scenario(server, client):
        client.writer.write(upgrade())
        status, headers = await client.response_head()
        assert status == "HTTP/1.1 401 Unauthorized"
        assert await client.reader.read() == b"denied"
        assert server.session.status == 401
    run(scenario, app)


@pytest.mark.parametrize("when,expected", [("before", "500"), ("return", "500")])
def test_application_failure_before_accept_is_500(when, expected, caplog):
    async def app(scope, receive, send):
        await receive()
        if when == "before":
            raise ValueError("boom")

    async def scenario(server, client):
        client.writer.write(upgrade())
        status, _ = await client.response_head()
        assert status.split()[1] == expected
        body = await client.reader.read()
        assert b"boom" not in body
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        run(scenario, app)
    assert "websocket" in caplog.text


def test_application_failure_after_accept_is_1011():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("boom")

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        close = await client.next_event()
        assert close.code == 1011
        client.send(close.response())
        await server.task
    run(scenario, app)


def test_application_returning_closes_with_1000():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        assert (await client.next_event()).code == 1000
    run(scenario, app)


def test_bad_version_is_426_and_the_app_is_not_called():
    called = []

    async def app(scope, receive, send):
        called.append(scope)

    async def scenario(server, client):
        client.writer.write(UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n")
        status, headers = await client.response_head()
        assert status == "HTTP/1.1 426 Upgrade Required"
        assert headers["sec-websocket-version"] == "13"
        await server.task
        assert server.closed == 1 and server.session.status == 426
    run(scenario, app)
    assert not called


def test_shutdown_closes_with_1001():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        server.session.shutdown()
        close = await client.next_event()
        assert close.code == 1001
        client.send(close.response())
        await server.task
    run(scenario, app)
    assert state["disconnect"]["code"] == 1001


def test_shutdown_during_the_handshake_closes_right_after_accept():
    release = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await release.wait()
        await send({"type": "websocket.accept"})
        await receive()

    async def scenario(server, client):
        client.writer.write(upgrade())
        while server.session is None:
            await asyncio.sleep(0.01)
        server.session.shutdown()
        release.set()
        status, _ = await client.response_head()
        assert status.startswith("HTTP/1.1 101")
        assert (await client.next_event()).code == 1001
    run(scenario, app)


def test_close_handshake_times_out(monkeypatch):
    monkeypatch.setattr(ws_module, "CLOSE_TIMEOUT", 0.2)
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.send(TextMessage(data="close"))
        assert (await client.next_event()).code == 4000
        # No Close reply: the server gives up and drops the connection.
        assert await client.reader.read() == b""
        await server.task
    run(scenario, app)
    assert state["disconnect"]["code"] == 1006


def test_oversized_message_is_closed_with_1009():
    cfg = Config()
    cfg.set("websocket_max_message_size", 1000)
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.send(BytesMessage(data=b"x" * 1001))
        close = await client.next_event()
        assert close.code == 1009
        client.send(close.response())
        assert await client.reader.read() == b""
    run(scenario, app, cfg)
    assert state["disconnect"]["code"] == 1009


def test_unmasked_frame_is_closed_with_1002():
    app, state = with_state(echo_app)

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.writer.write(b"\x81\x02hi")
        assert (await client.next_event()).code == 1002
    run(scenario, app)
    assert state["disconnect"]["code"] == 1002


def test_send_after_disconnect_raises_client_disconnected():
    raised = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "late"})
        except ClientDisconnected:
            raised.append(True)
        await send({"type": "websocket.close"})  # harmless no-op

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.writer.transport.abort()
        await server.task
    run(scenario, app)
    assert raised == [True]


def test_app_ignoring_the_disconnect_is_cancelled_after_the_grace_period():
    cfg = Config()
    cfg.set("asgi_disconnect_grace_period", 0)
    cancelled = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        client.writer.transport.abort()
        await server.task
        assert server.closed == 1
    run(scenario, app, cfg)
    assert cancelled == [True]


def test_a_slow_reader_pauses_send():
    progress = {"sent": 0}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        chunk = b"x" * 65536
        for _ in range(200):
            await send({"type": "websocket.send", "bytes": chunk})
            progress["sent"] += 1
        await send({"type": "websocket.close"})
        await receive()

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        # The client reads nothing: the app must stall long before 200 x 64 KiB.
        last = -1
        while progress["sent"] != last:
            last = progress["sent"]
            await asyncio.sleep(0.1)
        assert 0 < progress["sent"] < 200
        total = 0
        while True:
            event = await client.next_event()
            if isinstance(event, CloseConnection):
                break
            total += len(event.data)
        assert total == 200 * 65536
        client.send(event.response())
    run(scenario, app)
    assert progress["sent"] == 200


def test_an_app_that_does_not_receive_pauses_reading():
    release = asyncio.Event()
    received = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(len(message["bytes"]))

    async def scenario(server, client):
        client.writer.write(upgrade())
        await client.response_head()
        chunk = b"z" * 65536
        for _ in range(128):  # 8 MiB, far above what the session queues before pausing
            client.send(BytesMessage(data=chunk))
        # The server stops reading: bytes pile up on the client side instead of in its inbox
        # (without the pause they would all be queued for the app within a fraction of this).
        await asyncio.sleep(0.5)
        assert client.writer.transport.get_write_buffer_size() > 4 * 1024 * 1024
        release.set()
        await client.writer.drain()
        client.send(CloseConnection(code=1000))
        assert isinstance(await client.next_event(), CloseConnection)
        await server.task
    run(scenario, app)
    assert received == [65536] * 128
