"""Apps, a plugin and a hook for the observability tests (metrics, health, JSON logs, ids).

WSGI ``app`` and ASGI ``asgi_app``: ``/boom`` raises (the traceback holds the user agent),
anything else answers ``{"pid": ..., "request_id": ...}``.

``ObsPlugin`` declares one metric family and one ``/healthz`` section through the plugin relay;
``OBS_PLUGIN_HEALTH=fail`` makes its section unhealthy.

``gated_post_fork`` (``post_fork`` hook) holds each new worker until the file named by
``OBS_GATE`` exists, so a test can watch a server with no booted worker.
"""

from __future__ import annotations

import json
import os
import time

from asgi_apps import _lifespan


def _body(request_id):
    return json.dumps({"pid": os.getpid(), "request_id": request_id}).encode()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom from " + environ.get("HTTP_USER_AGENT", "-"))
    body = _body(environ.get("gunicorn.request_id"))
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["path"] == "/boom":
        headers = dict(scope["headers"])
        raise RuntimeError("boom from " + headers.get(b"user-agent", b"-").decode("latin-1"))
    request_id = scope["extensions"].get("gunicorn.request_id", {}).get("id")
    body = _body(request_id)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
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
