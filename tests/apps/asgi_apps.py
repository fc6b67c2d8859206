"""Raw ASGI 3 applications for the asgi worker tests (run them with -w 1: the module globals
below are the worker's memory, read back through /events and /counter).

``app`` routes by path; the other callables test lifespan variants.
"""

import asyncio
import json
import os
import time
from urllib.parse import parse_qsl

HELLO = b"Hello, World!"
# What the app observed, for tests to read back over HTTP (one worker per test server).
EVENTS = []
COUNTER = {"sends": 0}
GATE = {}


def _log_lifecycle(line):
    path = os.environ.get("ASGI_TEST_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


async def _lifespan(receive, send, state=None):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if state is not None:
                state["greeting"] = "hello from lifespan"
            _log_lifecycle("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _log_lifecycle("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive):
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            EVENTS.append("disconnect")
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send, status, body, headers=(), content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _query(scope):
    return dict(parse_qsl(scope["query_string"].decode()))


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, scope.get("state"))
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = _query(scope)
    handler = ROUTES.get(path.rsplit("/", 1)[-1] if path.startswith("/mounted") else path)
    if handler is None:
        await _respond(send, 404, b"not found")
        return
    await handler(scope, receive, send, query)


async def hello(scope, receive, send, query):
    await _read_body(receive)
    await _respond(send, 200, HELLO)


async def echo(scope, receive, send, query):
    body = await _read_body(receive)
    if body is not None:
        await _respond(send, 200, body, content_type=b"application/octet-stream")


async def stream_echo(scope, receive, send, query):
    # Echo each request body message as one response chunk (chunked: no content-length).
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})


async def chunks(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for i in range(int(query.get("n", "3"))):
        await send({"type": "http.response.body", "body": b"chunk%d;" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def scope_view(scope, receive, send, query):
    view = {key: scope.get(key) for key in ("type", "http_version", "method", "scheme", "path",
                                             "root_path", "client", "server", "state")}
    view["raw_path"] = scope["raw_path"].decode("latin-1")
    view["query_string"] = scope["query_string"].decode("latin-1")
    view["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    view["asgi"] = scope["asgi"]
    view["extensions"] = sorted(scope.get("extensions") or {})
    await _respond(send, 200, json.dumps(view).encode(), content_type=b"application/json")


async def slow(scope, receive, send, query):
    EVENTS.append("slow started")
    await asyncio.sleep(float(query.get("t", "1")))
    await _respond(send, 200, b"slow done")


async def slow_stream(scope, receive, send, query):
    # The head (keep-alive) goes out at once; the body ends after t seconds.
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first;", "more_body": True})
    EVENTS.append("slow started")
    await asyncio.sleep(float(query.get("t", "1")))
    await send({"type": "http.response.body", "body": b"last"})


async def early_hints(scope, receive, send, query):
    await send({"type": "http.response.informational", "status": 103,
                "headers": [(b"link", b"</style.css>; rel=preload; as=style")]})
    await _respond(send, 200, b"after hints")


async def bad_hints(scope, receive, send, query):
    status = int(query.get("status", "100"))
    headers = [(b"link", b"</a>\r\nX-Injected: 1")] if query.get("inject") else []
    await send({"type": "http.response.informational", "status": status, "headers": headers})
    await _respond(send, 200, b"unreachable")


async def trailers(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"trailer", b"x-checksum")]})
    await send({"type": "http.response.body", "body": b"part1,", "more_body": True})
    await send({"type": "http.response.body", "body": b"part2"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})


async def close_me(scope, receive, send, query):
    await _respond(send, 200, b"bye", headers=[(b"connection", b"close")])


async def raise_before(scope, receive, send, query):
    raise RuntimeError("secret-internal-detail")


async def raise_after(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("boom after start")


async def bad_header(scope, receive, send, query):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"x-bad", b"one\r\nInjected: yes")]})
    await send({"type": "http.response.body", "body": b"unreachable"})


async def no_response(scope, receive, send, query):
    return


async def wait_disconnect(scope, receive, send, query):
    # Read the body (possibly cut short), then wait for the client to go away.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            EVENTS.append("disconnect")
            return
        EVENTS.append(f"body:{len(message['body'])}")


async def ignore_disconnect(scope, receive, send, query):
    EVENTS.append("started")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        EVENTS.append(f"cancelled at {time.time():.3f}")  # wall clock: the test compares it
        raise


async def flood(scope, receive, send, query):
    # Stream 64 KiB chunks to a client that may not read; COUNTER shows how far send() got.
    await send({"type": "http.response.start", "status": 200, "headers": []})
    block = b"x" * 65536
    for _ in range(int(query.get("n", "1000"))):
        await send({"type": "http.response.body", "body": block, "more_body": True})
        COUNTER["sends"] += 1
    await send({"type": "http.response.body", "body": b""})


async def gated_echo(scope, receive, send, query):
    # Wait until /open is requested before reading the body (the client's upload stalls).
    gate = GATE.setdefault("gate", asyncio.Event())
    EVENTS.append("gated")
    await gate.wait()
    body = await _read_body(receive)
    await _respond(send, 200, str(len(body or b"")).encode())


async def open_gate(scope, receive, send, query):
    GATE.setdefault("gate", asyncio.Event()).set()
    await _respond(send, 200, b"opened")


async def events(scope, receive, send, query):
    await _respond(send, 200, json.dumps({"events": EVENTS, **COUNTER}).encode(),
                   content_type=b"application/json")


async def pathsend(scope, receive, send, query):
    size = os.path.getsize(query["file"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size).encode())]})
    await send({"type": "http.response.pathsend", "path": query["file"]})


async def pid(scope, receive, send, query):
    await _respond(send, 200, str(os.getpid()).encode())


async def loop_kind(scope, receive, send, query):
    await _respond(send, 200, type(asyncio.get_running_loop()).__module__.encode())


ROUTES = {
    "/": hello, "/echo": echo, "/stream-echo": stream_echo, "/chunks": chunks,
    "/scope": scope_view, "scope": scope_view, "/slow": slow, "/slow-stream": slow_stream, "/early-hints": early_hints,
    "/bad-hints": bad_hints, "/trailers": trailers, "/raise": raise_before, "/close-me": close_me,
    "/raise-after": raise_after, "/bad-header": bad_header, "/no-response": no_response,
    "/wait-disconnect": wait_disconnect, "/ignore-disconnect": ignore_disconnect,
    "/flood": flood, "/gated-echo": gated_echo, "/open": open_gate, "/events": events,
    "/pathsend": pathsend, "/pid": pid, "/loop": loop_kind,
}


# -- lifespan variants --------------------------------------------------------------------------

async def startup_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _respond(send, 200, HELLO)


async def no_lifespan(scope, receive, send):
    # Many apps written before lifespan existed: anything but http is an error.
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope {scope['type']}")
    await _respond(send, 200, json.dumps({"state": scope.get("state")}).encode())
