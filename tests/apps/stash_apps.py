"""Apps for the stash process tests: a dirty app using the stash from a dirty worker, and WSGI
and ASGI apps using it from HTTP workers. Replies are JSON; bytes values are not used."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyApp, get_dirty_client, stash

DIRTY_APP = "stash_apps:StashDirtyApp"


class StashDirtyApp(DirtyApp):
    """Declares two tables (created when the dirty arbiter starts) and touches the stash from
    inside a dirty worker, with the sync and the asyncio API."""

    stashes = ["declared", "counters"]

    def pid(self) -> int:
        return os.getpid()

    def put(self, table: str, key: str, value: Any) -> bool:
        return stash.put(table, key, value)

    def get(self, table: str, key: str) -> Any:
        return stash.get(table, key, "<missing>")

    def incr_many(self, table: str, key: str, n: int) -> int:
        for _ in range(n):
            stash.incr(table, key)
        return os.getpid()

    async def aincr_many(self, table: str, key: str, n: int) -> int:
        await asyncio.gather(*(stash.aincr(table, key) for _ in range(n)))
        return await stash.aget(table, key)

    def sleep(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()


def _incr_threads(table: str, key: str, threads: int, n: int) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(n):
                stash.incr(table, key)
        except BaseException as exc:  # reported in the reply: the test shows what failed
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


def _claim_threads(table: str, key: str, threads: int, token: str) -> list[str]:
    """``threads`` threads released together, each trying ``put(if_absent=True)``; the tokens
    of those that stored (at most one, if the store is atomic)."""
    start = threading.Barrier(threads)
    won: list[str] = []

    def run(i: int) -> None:
        start.wait(10)
        if stash.put(table, key, f"{token}-{i}", ttl=60, if_absent=True):
            won.append(f"{token}-{i}")

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return won


def _handle(path: str, q: dict[str, str]) -> Any:
    if path == "/socket":
        return {"socket": os.environ.get("GUNICORN_DIRTY_SOCKET"), "pid": os.getpid()}
    if path == "/put":
        ttl = float(q["ttl"]) if "ttl" in q else None
        return {"stored": stash.put(q["t"], q["k"], json.loads(q["v"]), ttl=ttl),
                "pid": os.getpid()}
    if path == "/get":
        # A short pause keeps this worker busy so that parallel requests reach the other one.
        time.sleep(float(q.get("sleep", 0)))
        return {"value": stash.get(q["t"], q["k"], "<missing>"), "pid": os.getpid()}
    if path == "/incr":
        _incr_threads(q["t"], q["k"], int(q["threads"]), int(q["n"]))
        return {"pid": os.getpid()}
    if path == "/claim":
        return {"won": _claim_threads(q["t"], q["k"], int(q["threads"]), q["token"]),
                "pid": os.getpid()}
    if path == "/dirty":
        args = json.loads(q.get("args", "[]"))
        return {"result": get_dirty_client().execute(DIRTY_APP, q["action"], *args)}
    if path == "/table":
        t = stash.table(q["t"])
        return {"items": sorted(t.items()), "len": len(t), "keys": sorted(t)}
    raise LookupError(path)


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        status, body = "200 OK", _handle(environ["PATH_INFO"], q)
    except Exception as exc:  # the test reads the error class from the reply
        status, body = "500 Internal Server Error", {"error": type(exc).__name__, "msg": str(exc)}
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raw ASGI: /incr?t=&k=&n= runs n concurrent ``await stash.aincr`` on the worker's loop,
    /table?t= reads through an AsyncStashTable."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if scope["path"] == "/incr":
        await asyncio.gather(*(stash.aincr(q["t"], q["k"]) for _ in range(int(q["n"]))))
        body: Any = {"value": await stash.aget(q["t"], q["k"]), "pid": os.getpid()}
    else:
        t = stash.atable(q["t"])
        await t.put("a", 1)
        body = {"items": sorted(await t.items()), "count": await t.count(),
                "missing": await t.get("zz", "dflt"), "has_a": await t.contains("a")}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
