"""ASGI apps served over HTTP/2 by test_h2_asgi.py (no tests here).

Each process-wide rendezvous is keyed by a group name from the query string, so tests sharing a
server never meet each other's requests.
"""

import asyncio
import json
import sys
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class Rendezvous:
    def __init__(self):
        self.events = {}
        self.counts = {}

    def event(self, group):
        if group not in self.events:
            self.events[group] = asyncio.Event()
        return self.events[group]


MEET = Rendezvous()


def _query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _respond(send, body, status=200, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_all(receive):
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return chunks, True
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return chunks, False


def note(text):
    print(f"H12-{text}", file=sys.stderr, flush=True)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = _query(scope)
    if path == "/scope":
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = json.dumps({"http_version": scope["http_version"], "scheme": scope["scheme"],
                           "path": scope["path"], "query": scope["query_string"].decode(),
                           "host": headers.get("host"), "extensions": scope["extensions"]})
        await _respond(send, body.encode())
    elif path == "/barrier":
        # Both requests of a group must be in the app at once: proof the streams run together.
        group = query.get("g", "")
        MEET.counts[group] = MEET.counts.get(group, 0) + 1
        if MEET.counts[group] >= 2:
            MEET.event(group).set()
        try:
            await asyncio.wait_for(MEET.event(group).wait(), 3.0)
            await _respond(send, b"met")
        except asyncio.TimeoutError:
            await _respond(send, b"alone")
    elif path == "/gated":
        await MEET.event(query.get("g", "")).wait()  # read nothing until released
        chunks, _ = await _read_all(receive)
        await _respond(send, f"chunks={len(chunks)} total={sum(map(len, chunks))}".encode())
    elif path == "/release":
        MEET.event(query.get("g", "")).set()
        await _respond(send, b"released")
    elif path == "/upload":
        chunks, _ = await _read_all(receive)
        await _respond(send, f"chunks={len(chunks)} total={sum(map(len, chunks))}".encode())
    elif path == "/watch":
        note(f"WATCHING {query.get('g')}")
        chunks, disconnected = await _read_all(receive)
        while not disconnected:
            disconnected = (await receive())["type"] == "http.disconnect"
        note(f"DISCONNECT {query.get('g')} after {sum(map(len, chunks))}")
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"body", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
    elif path == "/hints":
        await send({"type": "http.response.informational", "status": 103,
                    "headers": [(b"link", b"</s.css>; rel=preload")]})
        await _respond(send, b"hinted")
    elif path == "/big":
        left = int(query.get("n", 0))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(left).encode())]})
        while left:
            n = min(left, 16384)
            left -= n
            await send({"type": "http.response.body", "body": b"x" * n, "more_body": bool(left)})
    elif path == "/short":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"only ten b"})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": query["file"]})
    elif path == "/sleep":
        note(f"STARTED {query.get('g')}")
        await asyncio.sleep(float(query.get("s", 0.5)))
        await _respond(send, b"slept")
    elif path == "/error":
        raise RuntimeError("secret detail")
    elif path == "/nocontent":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"ignored"})
    else:
        await _respond(send, f"hello {scope['http_version']}".encode())


async def _star_home(request: Request):
    return JSONResponse({"http_version": request.scope["http_version"],
                         "host": request.headers.get("host")})


async def _star_echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


async def _star_stream(request: Request):
    async def parts():
        for i in range(5):
            yield f"part{i};".encode()
    return StreamingResponse(parts(), media_type="text/plain")


starlette_app = Starlette(routes=[Route("/", _star_home), Route("/echo", _star_echo,
                                                                methods=["POST"]),
                                  Route("/stream", _star_stream)])
