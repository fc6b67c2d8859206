"""The app under test of stash_backends.py: its ``/bench`` endpoint times stash calls inside an
HTTP worker, with whatever backend the server was started with (the dirty arbiter's store, or
Redis with ``--dirty-stash-url``). ``NoopApp`` is the dirty pool's app (the stash needs none
in Redis mode, but both servers run the same pool so only the backend differs)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyApp, stash


class NoopApp(DirtyApp):
    def ping(self) -> str:
        return "pong"


def _summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {"median_us": statistics.median(ordered) / 1e3,
            "p99_us": ordered[int(len(ordered) * 0.99)] / 1e3,
            "mean_us": statistics.fmean(ordered) / 1e3}


def _sync(n: int, value: bytes) -> dict[str, Any]:
    put, get, clock = stash.put, stash.get, time.perf_counter_ns
    puts, gets = [], []
    for i in range(n):
        key = f"k{i % 1000}"
        t0 = clock()
        put("bench", key, value)
        t1 = clock()
        get("bench", key)
        t2 = clock()
        puts.append(t1 - t0)
        gets.append(t2 - t1)
    return {"put": _summary(puts), "get": _summary(gets)}


async def _async(n: int, value: bytes) -> dict[str, Any]:
    put, get, clock = stash.aput, stash.aget, time.perf_counter_ns
    puts, gets = [], []
    for i in range(n):
        key = f"k{i % 1000}"
        t0 = clock()
        await put("bench", key, value)
        t1 = clock()
        await get("bench", key)
        t2 = clock()
        puts.append(t1 - t0)
        gets.append(t2 - t1)
    return {"put": _summary(puts), "get": _summary(gets)}


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    n, size = int(q.get("n", "1000")), int(q.get("size", "64"))
    value = b"x" * size
    _sync(min(n, 200), value)  # warm-up: connections, scripts loaded
    body = {"sync": _sync(n, value), "async": asyncio.run(_async(n, value)),
            "pid": __import__("os").getpid()}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
