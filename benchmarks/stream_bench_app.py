"""The apps under test of dirty_streaming.py; importable by ours and by gunicorn 27.

``StreamBench`` is the dirty app; ``app`` is a WSGI app whose ``/bench`` endpoint runs the
measurements inside an HTTP worker (where both implementations set GUNICORN_DIRTY_SOCKET), with
only the client API the two share: ``get_dirty_client(timeout)`` and ``client.stream(...)``.
"""

import asyncio
import json
import statistics
import time
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyApp, get_dirty_client, get_dirty_client_async

APP = "stream_bench_app:StreamBench"
TIMEOUT = 600.0  # gunicorn 27 bounds a whole stream by the client timeout


class StreamBench(DirtyApp):
    def tokens(self, n, size):
        token = "x" * size
        for _ in range(n):
            yield token

    async def atokens(self, n, size):
        token = "x" * size
        for _ in range(n):
            yield token

    def ping(self):
        return "pong"


def _throughput(n, size, rounds):
    client = get_dirty_client(timeout=TIMEOUT)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = sum(1 for _ in client.stream(APP, "tokens", n, size))
        elapsed = time.perf_counter() - start
        assert count == n, count
        rates.append(n / elapsed)
    return rates


async def _athroughput(n, size, rounds):
    client = await get_dirty_client_async(timeout=TIMEOUT)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = 0
        async for _ in client.stream_async(APP, "atokens", n, size):
            count += 1
        elapsed = time.perf_counter() - start
        assert count == n, count
        rates.append(n / elapsed)
    return rates


def _first_chunk(samples, size):
    """Seconds from asking for a stream to holding its first chunk (1-chunk streams, drained)."""
    client = get_dirty_client(timeout=TIMEOUT)
    for _ in range(20):  # warm up: connection, worker threads
        list(client.stream(APP, "tokens", 1, size))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        stream = client.stream(APP, "tokens", 1, size)
        next(iter(stream))
        times.append(time.perf_counter() - start)
        for _ in stream:  # drain: gunicorn 27 cannot reuse a client with a stream left open
            pass
    return times


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    n, size = int(query.get("n", 100_000)), int(query.get("size", 16))
    rounds, samples = int(query.get("rounds", 3)), int(query.get("samples", 200))
    result = {"pid_check": get_dirty_client(timeout=TIMEOUT).execute(APP, "ping")}
    result["sync_chunks_per_s"] = _summary(_throughput(n, size, rounds))
    try:
        result["async_chunks_per_s"] = _summary(asyncio.run(_athroughput(n, size, rounds)))
    except Exception as exc:  # report, do not hide: one implementation may lack the feature
        result["async_chunks_per_s"] = {"error": f"{type(exc).__name__}: {exc}"}
    result["first_chunk_s"] = _summary(_first_chunk(samples, size))
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
