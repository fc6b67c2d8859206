#!/usr/bin/env python3
"""WebSocket echo benchmark: the server CPU one message costs, with and without permessage-deflate.

For each configuration this starts ``gunicorn -k asgi -w 1`` serving :func:`app` (this module
is also the application: every text message is echoed), then a ``websockets`` client sends
``--n`` JSON-like text messages of each ``--sizes`` (100 B and 4 KiB by default) and reads every
echo, ``--window`` messages in flight. The worker's CPU (utime + stime from
``/proc/<pid>/stat``) over the timed messages, divided by their count, is the figure reported:
it is what the server spends to receive, hand to the app, and send back one message; the
client's own CPU is not in it.

    .venv/bin/python benchmarks/ws_echo.py                        # deflate off / level 1 / 6
    .venv/bin/python benchmarks/ws_echo.py --n 5000 --modes off,6 --json out.json

Configurations (``--modes``): ``off`` (``--websocket-per-message-deflate off``) and a zlib level
``1``-``9`` (deflate on, ``--websocket-deflate-level``). The client offers deflate with the
``websockets`` defaults in every mode; with ``off`` the server declines it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
TICK = os.sysconf("SC_CLK_TCK")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo every text message (the benchmark's server side; served with lifespan off)."""
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text") or ""})


def messages(size: int, count: int = 500, seed: int = 7) -> list[str]:
    """``count`` distinct JSON documents cut to ``size`` characters (records of ids, names,
    scores and flags, as an API would push)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        items: list[dict[str, Any]] = []
        text = ""
        while len(text) < size:
            items.append({"id": rng.randrange(10**6), "name": f"user{rng.randrange(10**4)}",
                          "score": round(rng.random() * 100, 3), "active": rng.random() < 0.5,
                          "tags": rng.sample(["red", "green", "blue", "admin", "beta"], 2)})
            text = json.dumps(items)
        out.append(text[:size])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def worker_pid(master: int, deadline: float) -> int:
    path = Path(f"/proc/{master}/task/{master}/children")
    while time.monotonic() < deadline:
        children = path.read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise TimeoutError("no worker process")


@contextlib.contextmanager
def server(mode: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    args = [PYTHON, "-m", "gunicorn", "-k", "asgi", "-w", "1", "-b", f"127.0.0.1:{port}",
            "--chdir", str(HERE), "--asgi-lifespan", "off", "--websocket-ping-interval", "0"]
    if mode == "off":
        args += ["--websocket-per-message-deflate", "off"]
    else:
        args += ["--websocket-deflate-level", mode]
    proc = subprocess.Popen([*args, "ws_echo:app"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        yield port, worker_pid(proc.pid, deadline)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_one(port: int, pid: int, texts: list[str], n: int, window: int) -> dict[str, Any]:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        negotiated = ws.response.headers.get("Sec-WebSocket-Extensions") or "-"

        def exchange(count: int) -> None:
            sent = received = 0
            while received < count:
                while sent < count and sent - received < window:
                    ws.send(texts[sent % len(texts)])
                    sent += 1
                ws.recv(timeout=30)
                received += 1

        exchange(min(n // 10, 1000) or 1)  # warm-up (imports, first allocations)
        cpu, wall = cpu_seconds(pid), time.perf_counter()
        exchange(n)
        cpu, wall = cpu_seconds(pid) - cpu, time.perf_counter() - wall
    return {"extension": negotiated, "server_cpu_us_per_msg": cpu / n * 1e6,
            "msgs_per_s": n / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="timed messages per run")
    parser.add_argument("--sizes", default="100,4096", help="message sizes in characters")
    parser.add_argument("--modes", default="off,1,6", help="off and/or zlib levels 1-9")
    parser.add_argument("--window", type=int, default=8, help="messages in flight")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--json", help="also write the results to this file")
    opts = parser.parse_args()
    results = []
    for size in (int(s) for s in opts.sizes.split(",")):
        texts = messages(size)
        for mode in opts.modes.split(","):
            runs = []
            for _ in range(opts.rounds):
                with server(mode) as (port, pid):
                    runs.append(run_one(port, pid, texts, opts.n, opts.window))
            runs.sort(key=lambda r: r["server_cpu_us_per_msg"])
            best = runs[len(runs) // 2]
            row = {"size": size, "mode": mode, **best,
                   "all_cpu_us": [round(r["server_cpu_us_per_msg"], 1) for r in runs]}
            results.append(row)
            print(f"{size:>5} B  deflate {mode:>3}  server CPU {best['server_cpu_us_per_msg']:6.1f}"
                  f" us/msg (runs {row['all_cpu_us']})  {best['msgs_per_s']:8.0f} msg/s  "
                  f"[{best['extension']}]", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
