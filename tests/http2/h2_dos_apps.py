"""Apps for test_h2_dos.py: they count their own invocations (one worker: ``-w 1``), so a test
sees from outside how often an attack made the application run.

* ``/work?SECS``: counts one invocation, then takes SECS seconds;
* ``/hits``: how many invocations of ``/work`` this worker has seen;
* ``/sessions``: h2 connection objects still in memory (``gc.get_objects``: with the collector
  off, see h2_dos_conf.py, one kept alive by a reference cycle stays listed);
* anything else: h2_apps.py's (``/big?N``: N bytes in 16 KiB chunks from a generator).
"""

import asyncio
import gc
import threading
import time

import h2_apps


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.hits = 0

    def hit(self):
        with self.lock:
            self.hits += 1


COUNTER = Counter()


def live_sessions():
    from h2.connection import H2Connection

    return sum(1 for obj in gc.get_objects() if isinstance(obj, H2Connection))


def report(path):
    """The body of a counter endpoint, or None for other paths."""
    if path == "/hits":
        return str(COUNTER.hits).encode()
    if path == "/sessions":
        return str(live_sessions()).encode()
    return None


def wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/work":
        COUNTER.hit()
        time.sleep(float(environ.get("QUERY_STRING") or 0))
        body = b"done"
    else:
        body = report(path)
        if body is None:
            return h2_apps.app(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/work":
        COUNTER.hit()
        await asyncio.sleep(float(scope["query_string"].decode() or 0))
        body = b"done"
    else:
        body = report(path) or b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
