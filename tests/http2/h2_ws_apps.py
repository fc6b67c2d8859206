"""ASGI WebSocket apps served over HTTP/2 by test_h2_websocket.py (no tests here).

``app`` serves the routes of ``asgi_ws_apps`` (``/echo``, ``/reject``, ``/deny``, ``/flood``,
``/hello``...) plus:

* ``/scope``: accept (first offered subprotocol) and send the scope as JSON text;
* ``/big?n=N``: accept and send a binary message of N bytes, and again for every message;
* ``/idle``: accept and never call ``receive()`` (reading backpressure);
* ``/recorded?key=K`` (HTTP): the ``websocket.disconnect`` message of the WebSocket opened
  with the query string ``K`` (JSON, ``null`` until it came). Every WebSocket's disconnect is
  recorded under its query string, so tests sharing a server never see each other's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asgi_ws_apps

RECORDED: dict[str, dict[str, Any]] = {}


async def scope_report(scope, receive, send):
    await receive()
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    report = {k: v for k, v in scope.items() if k in (
        "type", "http_version", "scheme", "path", "raw_path", "query_string", "root_path",
        "subprotocols", "client", "server")}
    report["raw_path"] = report["raw_path"].decode()
    report["query_string"] = report["query_string"].decode()
    report["headers"] = {k.decode(): v.decode() for k, v in scope["headers"]}
    report["extensions"] = sorted(scope["extensions"])
    await send({"type": "websocket.send", "text": json.dumps(report)})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def big(scope, receive, send):
    await receive()
    size = int(scope["query_string"].decode().partition("n=")[2].partition("&")[0])
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "bytes": b"b" * size})
    while (await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "bytes": b"b" * size})


async def idle(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.Event().wait()  # cancelled after the disconnect grace period


async def recorded(scope, receive, send):
    key = scope["query_string"].decode().removeprefix("key=")
    body = json.dumps(RECORDED.get(key)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


ROUTES = {"/scope": scope_report, "/big": big, "/idle": idle, "/recorded": recorded}


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        key = scope["query_string"].decode()
        inner = receive

        async def recording():
            message = await inner()
            if message["type"] == "websocket.disconnect" and key:
                RECORDED.setdefault(key, message)
            return message
        receive = recording
    handler = ROUTES.get(scope.get("path", ""))
    if handler is None:
        await asgi_ws_apps.app(scope, receive, send)
    else:
        await handler(scope, receive, send)
