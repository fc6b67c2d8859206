"""ASGI hello world for the benchmark suites (raw ASGI 3, answers lifespan).

``GET /`` answers ``Hello, World!``; ``GET /payload`` 16 KiB, as hello_wsgi.
"""

from hello_wsgi import HELLO, PAYLOAD


def _start(body):
    return {"type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode())]}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = PAYLOAD if scope["path"] == "/payload" else HELLO
    await send(_start(body))
    await send({"type": "http.response.body", "body": body})
