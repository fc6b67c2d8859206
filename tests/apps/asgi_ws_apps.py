"""Raw ASGI WebSocket applications for tests/core/test_asgi_websocket_serving.py.

``app`` routes by path:

* ``/echo``: accept (first offered subprotocol, an ``x-app`` header) and echo every message;
  the text ``close <code> <reason>`` makes the app close; ``slow`` makes it sleep 0.5 s first;
  ``scheme`` is answered with the scope's scheme.
* ``/reject``: ``websocket.close`` before accepting (403).
* ``/deny``: a ``websocket.http.response`` denial (401 with a body).
* ``/boom-before``, ``/boom-after``: raise before / after accepting.
* ``/flood``: accept and send 64 KiB binary messages until ``send`` fails, then record the
  disconnect as ``/echo`` does (with ``"sent"``, the number of messages sent).
* ``/disconnects`` (HTTP): JSON list of the ``websocket.disconnect`` messages the echo and
  flood handlers received in this worker (run the tests with one worker).
* ``/hello`` (HTTP): a plain 200 response.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

DISCONNECTS: list[dict[str, Any]] = []


async def echo(scope, receive, send):
    await receive()
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub,
                "headers": [(b"x-app", b"echo")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            DISCONNECTS.append(message)
            return
        text = message.get("text")
        if text and text.startswith("close "):
            _, code, reason = text.split(" ", 2)
            await send({"type": "websocket.close", "code": int(code), "reason": reason})
            continue
        if text == "slow":
            await asyncio.sleep(0.5)
        if text == "scheme":
            text = scope["scheme"]
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def flood(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    sent = 0
    try:
        while True:
            await send({"type": "websocket.send", "bytes": b"f" * 65536})
            sent += 1
    except OSError:  # ClientDisconnected: the server dropped the connection
        pass
    DISCONNECTS.append({**await receive(), "sent": sent})


async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def reject(scope, receive, send):
    await receive()
    await send({"type": "websocket.close", "code": 1008})


async def deny(scope, receive, send):
    await receive()
    assert "websocket.http.response" in scope["extensions"]
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"x-why", b"token")]})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"entry"})


async def boom_before(scope, receive, send):
    await receive()
    raise RuntimeError("secret detail")


async def boom_after(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    raise RuntimeError("secret detail")


async def disconnects(scope, receive, send):
    body = json.dumps(DISCONNECTS).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


ROUTES = {"/echo": echo, "/reject": reject, "/deny": deny, "/boom-before": boom_before,
          "/boom-after": boom_after, "/disconnects": disconnects, "/flood": flood,
          "/hello": hello}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    handler = ROUTES.get(scope["path"])
    if handler is None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await handler(scope, receive, send)
