"""HTTP front ends streaming from the dirty app ``stream_dirty:TokenApp``.

``wsgi_app`` (run it with gthread) answers with chunked responses, one JSON line per chunk:

    GET /stream?action=X&args=J      the chunks of stream(X, *json(J)); a failure mid-stream
                                     becomes a last line {"error": type, "error_type": ...}
    GET /interleave?n=N              chunk i of count(N) plus execute(echo) between chunks

``asgi_app`` (Starlette, run it with ``-k asgi``) serves the same as Server-Sent Events:

    GET /sse?action=X&args=J         "data: <json>" per chunk, then "event: end" (or
                                     "event: error" with the error as JSON)
    GET /interleave?n=N              as above, with stream_async and execute_async
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyError, get_dirty_client, get_dirty_client_async
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from stream_dirty import APP


def _error(exc: DirtyError) -> dict:
    return {"error": type(exc).__name__, "message": str(exc),
            "error_type": getattr(exc, "error_type", None)}


def _line(obj: object) -> bytes:
    return (json.dumps(obj) + "\n").encode()


# -- WSGI ---------------------------------------------------------------------------------------

def _stream_lines(action: str, args: list):
    # `with` closes the dirty stream when the server closes this generator (client gone).
    with get_dirty_client().call_stream(APP, action, args) as stream:
        try:
            for item in stream:
                yield _line(item)
        except DirtyError as exc:
            yield _line(_error(exc))


def _interleave_lines(n: int):
    client = get_dirty_client()
    with client.stream(APP, "count", n) as stream:
        for item in stream:
            yield _line([item, client.execute(APP, "echo", f"echo-{item}")])


def wsgi_app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ["PATH_INFO"]
    if path == "/stream":
        body = _stream_lines(query["action"], json.loads(query.get("args", "[]")))
    elif path == "/interleave":
        body = _interleave_lines(int(query["n"]))
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "application/x-ndjson")])
    return body


# -- ASGI (Starlette) ---------------------------------------------------------------------------

class EventStream(StreamingResponse):
    """Closes its body iterator however the response ends: Starlette leaves it suspended when
    send() fails (client gone), and only closing it cancels the dirty stream promptly."""

    media_type = "text/event-stream"

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()


def _event(data: object, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


async def sse(request: Request) -> EventStream:
    action = request.query_params["action"]
    args = json.loads(request.query_params.get("args", "[]"))
    client = await get_dirty_client_async()

    async def events():
        async with client.call_stream_async(APP, action, args) as stream:
            try:
                async for item in stream:
                    yield _event(item)
            except DirtyError as exc:
                yield _event(_error(exc), "error")
                return
        yield _event(None, "end")

    return EventStream(events())


async def interleave(request: Request) -> EventStream:
    n = int(request.query_params["n"])
    client = await get_dirty_client_async()

    async def events():
        async with client.stream_async(APP, "acount", n) as stream:
            async for item in stream:
                yield _event([item, await client.execute_async(APP, "echo", f"echo-{item}")])
        yield _event(None, "end")

    return EventStream(events())


asgi_app = Starlette(routes=[Route("/sse", sse), Route("/interleave", interleave)])
