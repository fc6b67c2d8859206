"""Apps, a plugin and a hook for the observability tests (metrics, health, JSON logs, ids).

WSGI ``app`` and ASGI ``asgi_app``: ``/boom`` raises (the traceback holds the user agent),
``/hold`` waits until the file named by ``OBS_HOLD`` exists (at most 60 s), ``/body`` answers
the length of the request body it read, ``/own-id`` sets its own ``X-Request-ID``; anything
else answers ``{"pid": ..., "request_id": ...}``. ``asgi_app`` also accepts WebSockets: it
echoes text messages, and ``close <code>`` makes it close with that code.

``ObsPlugin`` declares one metric family and one ``/healthz`` section through the plugin relay;
``OBS_PLUGIN_HEALTH=fail`` makes its section unhealthy.

``gated_post_fork`` (``post_fork`` hook) holds each new worker until the file named by
``OBS_GATE`` exists, so a test can watch a server with no booted worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from asgi_apps import _lifespan


def _body(request_id):
    return json.dumps({"pid": os.getpid(), "request_id": request_id}).encode()


def _held():
    return os.path.exists(os.environ.get("OBS_HOLD", ""))


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("boom from " + environ.get("HTTP_USER_AGENT", "-"))
    if path == "/hold":
        deadline = time.monotonic() + 60
        while not _held() and time.monotonic() < deadline:
            time.sleep(0.02)  # the test releases the request by creating the file
    headers = [("Content-Type", "application/json")]
    if path == "/body":
        body = json.dumps({"read": len(environ["wsgi.input"].read())}).encode()
    else:
        body = _body(environ.get("gunicorn.request_id"))
    if path == "/own-id":
        headers.append(("x-request-id", "from-the-app"))
    start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
    return [body]


async def _websocket(receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") or ""
        if text.startswith("close "):
            await send({"type": "websocket.close", "code": int(text.split()[1])})
        else:
            await send({"type": "websocket.send", "text": text})


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(receive, send)
        return
    path = scope["path"]
    if path == "/boom":
        headers = dict(scope["headers"])
        raise RuntimeError("boom from " + headers.get(b"user-agent", b"-").decode("latin-1"))
    if path == "/hold":
        deadline = time.monotonic() + 60
        while not _held() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    if path == "/body":
        read = 0
        while True:
            message = await receive()
            read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.dumps({"read": read}).encode()
    else:
        body = _body(scope["extensions"].get("gunicorn.request_id", {}).get("id"))
    headers = [(b"content-type", b"application/json")]
    if path == "/own-id":
        headers.append((b"x-request-id", b"from-the-app"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ObsPlugin:
    def metrics(self, families):
        self.calls = families.counter("obs_plugin_calls_total", "Calls of the test plugin.",
                                      ("kind",))
        self.calls.labels("declared").inc()

    def health(self, cfg):
        ok = os.environ.get("OBS_PLUGIN_HEALTH") != "fail"
        return {"obs": {"ok": ok, "ready": 1 if ok else 0, "expected": 1}}


def gated_post_fork(server, worker):
    gate = os.environ["OBS_GATE"]
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)  # a user hook may wait as it likes; the test polls /healthz
