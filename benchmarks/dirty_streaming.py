#!/usr/bin/env python3
"""Dirty streaming benchmark: ours against gunicorn 27, in one sitting.

For each implementation this starts a real server (1 gthread HTTP worker, ``--dirty-workers 4``,
``--dirty-threads 1``) with the apps of ``stream_bench_app.py``, then asks its ``/bench``
endpoint to measure, inside the HTTP worker, with the client API both share:

* throughput: one stream of ``--n`` (100k) small chunks (``--size`` 16-char strings), sync
  ``client.stream`` and asyncio ``client.stream_async``; chunks/s, median of ``--rounds``;
* time to first chunk: from ``client.stream(...)`` to holding its first chunk, median of
  ``--samples`` one-chunk streams after a warm-up.

    .venv/bin/python benchmarks/dirty_streaming.py                  # both, default pythons
    .venv/bin/python benchmarks/dirty_streaming.py --impl ours --n 20000 --json out.json

``--ours-python`` / ``--gunicorn-python`` choose the interpreters (each must have its gunicorn
with dirty support installed; gunicorn 27.0.1 lives in /tmp/peers here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APP = "stream_bench_app:StreamBench"
VERSION_SCRIPT = """
import importlib.metadata as m
for dist in ("gunicorn-core", "gunicorn"):
    try:
        print(m.version(dist))
        break
    except m.PackageNotFoundError:
        pass
"""
PYTHONS = {"ours": str(REPO / ".venv" / "bin" / "python"), "gunicorn": "/tmp/peers/bin/python"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(python: str, dirty_workers: int):
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="dirty-bench-")
    log_path = Path(tmp.name) / "server.log"
    env = dict(os.environ, PYTHONPATH=str(HERE), TMPDIR=tmp.name, XDG_RUNTIME_DIR=tmp.name)
    env.pop("GUNICORN_CMD_ARGS", None)
    argv = [python, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
            "--threads", "2", "--timeout", "900", "--dirty-app", APP,
            "--dirty-workers", str(dirty_workers), "--dirty-threads", "1", "--dirty-timeout",
            "900", "stream_bench_app:app"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", proc, log_path
    finally:
        stop(proc)
        tmp.cleanup()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server (its own session), SIGKILL what is left after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of the run may outlive it


def fetch(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_ready(base: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    """Until a tiny run succeeds: the port is bound and the dirty workers have booted."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()[-3000:]}")
        try:
            fetch(f"{base}/bench?n=10&rounds=1&samples=1", 30)
            return
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready:\n{log_path.read_text()[-3000:]}") from None
            time.sleep(0.2)


def run(impl: str, python: str, args: argparse.Namespace) -> dict:
    with server(python, args.dirty_workers) as (base, proc, log_path):
        wait_ready(base, proc, log_path)
        query = f"n={args.n}&size={args.size}&rounds={args.rounds}&samples={args.samples}"
        try:
            result = fetch(f"{base}/bench?{query}", 900)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{impl}: {exc}\n{log_path.read_text()[-3000:]}") from exc
    version = subprocess.run([python, "-c", VERSION_SCRIPT], capture_output=True, text=True)
    result["version"] = version.stdout.strip() or "?"
    return result


def _rate(entry: dict) -> str:
    return f"{entry['median']:>12,.0f}" if "median" in entry else f"{'error':>12}"


def report(results: dict[str, dict], args: argparse.Namespace) -> str:
    lines = [f"{args.n:,} chunks of {args.size} chars, {args.dirty_workers} dirty workers, "
             f"median of {args.rounds} streams; first chunk: median of {args.samples}",
             f"{'implementation':<22}{'sync chunks/s':>14}{'async chunks/s':>16}"
             f"{'first chunk':>14}{'(min)':>10}"]
    for impl, r in results.items():
        first = r["first_chunk_s"]
        lines.append(f"{impl + ' ' + r['version']:<22}{_rate(r['sync_chunks_per_s']):>14}"
                     f"{_rate(r['async_chunks_per_s']):>16}"
                     f"{first['median'] * 1e6:>11.0f} us{first['min'] * 1e6:>7.0f} us")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", default="ours,gunicorn", help="comma-separated: ours,gunicorn")
    parser.add_argument("--ours-python", default=PYTHONS["ours"])
    parser.add_argument("--gunicorn-python", default=PYTHONS["gunicorn"])
    parser.add_argument("--dirty-workers", type=int, default=4)
    parser.add_argument("--n", type=int, default=100_000, help="chunks per throughput stream")
    parser.add_argument("--size", type=int, default=16, help="characters per chunk")
    parser.add_argument("--rounds", type=int, default=3, help="throughput streams per run")
    parser.add_argument("--samples", type=int, default=200, help="first-chunk samples")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    pythons = {"ours": args.ours_python, "gunicorn": args.gunicorn_python}
    results = {}
    for impl in args.impl.split(","):
        print(f"running {impl} ({pythons[impl]})...", file=sys.stderr)
        results[impl] = run(impl, pythons[impl], args)
    print(report(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
