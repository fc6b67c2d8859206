#!/usr/bin/env python3
"""Request batching benchmark: 64 concurrent callers of a no-op action through one dirty worker,
batched (``@batch``) against the same action unbatched.

Starts a real server (``-w 1 --dirty-workers 1 --dirty-threads 1``) with
``batch_bench_app.py``, then drives it from this process: ``--callers`` asyncio tasks share one
``DirtyClient`` connection and call the action back to back until ``--calls`` calls are done.
Reports calls per second and the mean batch size (calls / invocations of the action, as counted
inside the dirty worker), median of ``--rounds``.

    .venv/bin/python benchmarks/dirty_batch.py
    .venv/bin/python benchmarks/dirty_batch.py --callers 64 --calls 20000 --max-size 16 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APP = "batch_bench_app:BatchBench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(max_size: int, max_wait: float) -> Iterator[str]:
    """A gunicorn with one dirty worker; yields the dirty arbiter's socket path."""
    tmp = tempfile.TemporaryDirectory(prefix="dirty-batch-")
    env = dict(os.environ, PYTHONPATH=str(HERE), TMPDIR=tmp.name, XDG_RUNTIME_DIR=tmp.name,
               BATCH_MAX_SIZE=str(max_size), BATCH_MAX_WAIT=str(max_wait))
    env.pop("GUNICORN_CMD_ARGS", None)
    argv = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{free_port()}", "-w", "1",
            "--no-control-socket", "--dirty-app", APP, "--dirty-workers", "1",
            "--dirty-threads", "1", "--dirty-max-queue", "0", "batch_bench_app:app"]
    log = open(Path(tmp.name) / "server.log", "wb")
    proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield wait_ready(tmp.name, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
        tmp.cleanup()


def wait_ready(tmp: str, proc: subprocess.Popen[bytes]) -> str:
    from gunicorn.dirty import DirtyClient, DirtyError

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see its log in {tmp}")
        found = glob.glob(os.path.join(tmp, "gunicorn-dirty-*", "arbiter.sock"))
        if found:
            with contextlib.suppress(DirtyError), DirtyClient(found[0], timeout=2) as client:
                client.execute(APP, "stats", True)
                return found[0]
        time.sleep(0.05)
    raise SystemExit("the dirty pool did not come up in 30s")


async def drive(path: str, action: str, callers: int, calls: int) -> float:
    from gunicorn.dirty import DirtyClient

    client = DirtyClient(path, timeout=60)
    left = calls

    async def caller(n: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.execute_async(APP, action, n)

    await client.execute_async(APP, "stats", True)
    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    elapsed = time.perf_counter() - started
    await client.close_async()
    return elapsed


def measure(path: str, action: str, args: argparse.Namespace) -> dict[str, float]:
    from gunicorn.dirty import DirtyClient

    rates, sizes = [], []
    asyncio.run(drive(path, action, args.callers, min(args.calls, 2000)))  # warm-up
    for _ in range(args.rounds):
        elapsed = asyncio.run(drive(path, action, args.callers, args.calls))
        with DirtyClient(path, timeout=10) as client:
            stats = client.execute(APP, "stats", True)
        rates.append(stats["calls"] / elapsed)
        sizes.append(stats["calls"] / max(1, stats["invocations"]))
    return {"calls_per_s": round(statistics.median(rates)),
            "mean_batch": round(statistics.median(sizes), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-size", type=int, default=16)
    parser.add_argument("--max-wait", type=float, default=0.01)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    with server(args.max_size, args.max_wait) as path:
        results = {"unbatched": measure(path, "plain_noop", args),
                   "batched": measure(path, "noop", args)}
    results["speedup"] = round(results["batched"]["calls_per_s"]
                               / results["unbatched"]["calls_per_s"], 2)
    print(f"{args.callers} callers, one dirty worker, @batch(max_size={args.max_size}, "
          f"max_wait={args.max_wait})")
    for name in ("unbatched", "batched"):
        r = results[name]
        print(f"  {name:9}  {r['calls_per_s']:>8} calls/s  mean batch {r['mean_batch']}")
    print(f"  speed-up  {results['speedup']}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
