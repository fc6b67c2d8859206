#!/usr/bin/env python3
"""Stash call latency from an HTTP worker: the in-arbiter store against Redis, in one sitting.

Starts a redis-server (no persistence) on a free loopback port in a temporary directory, then
for each backend a real server (``-w 1 -k gthread --threads 2``, one dirty worker running
``stash_bench_app:NoopApp``; ``--dirty-stash-url`` for Redis, over TCP and over its Unix
socket) whose ``/bench`` endpoint times ``stash.put``/``stash.get`` of a 64-byte value inside
the HTTP worker, sync and asyncio, one call at a time. Each round reports the median and p99
of ``--n`` calls; the table shows the median of the rounds' medians.

    .venv/bin/python benchmarks/stash_backends.py                       # every backend
    .venv/bin/python benchmarks/stash_backends.py --n 5000 --rounds 3 --backends arbiter,redis
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from dirty_streaming import fetch, free_port, stop

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[tuple[str, str]]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port, sock = free_port(), tmp / "redis.sock"
    conf = tmp / "redis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nunixsocket {sock}\nunixsocketperm 700\n"
                    f"dir {tmp}\nsave \"\"\nappendonly no\nlogfile {tmp / 'redis.log'}\n")
    proc = subprocess.Popen([binary, str(conf)], start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                        1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", f"unix://{sock}?db=0"
    finally:
        proc.terminate()
        proc.wait(15)


@contextlib.contextmanager
def server(extra: list[str]) -> Iterator[str]:
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="stash-bench-")
    log_path = Path(tmp.name) / "server.log"
    env = dict(os.environ, PYTHONPATH=str(HERE), TMPDIR=tmp.name, XDG_RUNTIME_DIR=tmp.name)
    env.pop("GUNICORN_CMD_ARGS", None)
    argv = [PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
            "--threads", "2", "--timeout", "600", "--no-control-socket", "--dirty-app",
            "stash_bench_app:NoopApp", "--dirty-workers", "1", *extra, "stash_bench_app:app"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(f"{base}/bench?n=10", 30)
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready:\n{log_path.read_text()[-3000:]}") \
                        from None
                time.sleep(0.2)
        yield base
    finally:
        stop(proc)
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="arbiter,redis,redis-unix")
    parser.add_argument("--n", type=int, default=10_000, help="calls of each kind per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="stash-bench-redis-") as tmp, \
            redis_server(Path(tmp)) as (tcp_url, unix_url):
        extra = {"arbiter": [], "redis": ["--dirty-stash-url", tcp_url],
                 "redis-unix": ["--dirty-stash-url", unix_url]}
        for name in args.backends.split(","):
            print(f"running {name}...", file=sys.stderr)
            with server(extra[name]) as base:
                results[name] = [fetch(f"{base}/bench?n={args.n}&size=64", 600)
                                 for _ in range(args.rounds)]
    print(f"stash put/get of a 64-byte value from one HTTP worker thread, {args.n:,} calls per "
          f"round, median (p99) of {args.rounds} rounds, microseconds per call")
    print(f"{'backend':<12}{'sync put':>16}{'sync get':>16}{'async put':>16}{'async get':>16}")
    for name, rounds in results.items():
        cells = []
        for mode in ("sync", "async"):
            for op in ("put", "get"):
                med = statistics.median(r[mode][op]["median_us"] for r in rounds)
                p99 = statistics.median(r[mode][op]["p99_us"] for r in rounds)
                cells.append(f"{med:>8.1f} ({p99:>4.0f})")
        print(f"{name:<12}" + "".join(f"{c:>16}" for c in cells))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
