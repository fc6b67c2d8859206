#!/usr/bin/env python3
"""Run the servers of a suite file side by side, in interleaved rounds, and print medians.

    python benchmarks/suite.py benchmarks/suites/core-h1.txt [--rounds 3] [-d 5] [-w 2]
        [--peers /tmp/peers/bin/python] [--ours .venv/bin/python] [--only REGEX]
        [--markdown out.md] [--json out.jsonl]

A suite file has one server per line (``#`` comments and blank lines are ignored)::

    name | h1 or h2 | load options | server command (bash; {port} is the port to bind)

Load options: ``-c N`` (repeatable: one measured run per level), ``-d SECONDS`` (h1), ``-m
STREAMS`` and ``-n REQUESTS`` (h2), ``--path /p``. The command sees ``$OURS`` (this project's
interpreter), ``$PYTHON`` (the peers' interpreter: gunicorn 27.0.1, uvicorn, ...) and
``$PORT``; it runs in ``benchmarks/apps``. Lines that need the peers are skipped, with the
command that installs them, when the peers' interpreter does not exist.

Rounds are interleaved (round 1 starts, warms up, measures and stops every server, then round
2, ...), so a slow drift of a shared machine hits every server alike; compare ratios within one
table, and CPU per request above all.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
from servers import Server  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_PEERS = "/tmp/peers/bin/python"
PEERS_SETUP = ("python3 -m venv /tmp/peers && /tmp/peers/bin/pip install "
               "'gunicorn[gevent]==27.0.1' 'uvicorn[standard]' h2")
PEER_VARIABLE = re.compile(r"\$\{?PYTHON\b")


@dataclass
class Entry:
    name: str
    protocol: str
    command: str
    levels: list[int]
    seconds: int | None = None
    streams: int = 10
    requests: int = 20000
    path: str = "/"
    runs: dict[int, list[loadgen.Run]] = field(default_factory=dict)

    @property
    def needs_peers(self) -> bool:
        return bool(PEER_VARIABLE.search(self.command))


def parse_suite(path: Path) -> list[Entry]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|", 3)]
        if len(parts) != 4 or parts[1] not in ("h1", "h2"):
            raise SystemExit(f"{path}:{number}: expected 'name | h1|h2 | options | command'")
        options = argparse.ArgumentParser(add_help=False)
        options.add_argument("-c", type=int, action="append")
        options.add_argument("-d", type=int)
        options.add_argument("-m", type=int, default=10)
        options.add_argument("-n", type=int, default=20000)
        options.add_argument("--path", default="/")
        parsed = options.parse_args(shlex.split(parts[2]))
        levels = parsed.c or ([10] if parts[1] == "h2" else [50])
        entries.append(Entry(parts[0], parts[1], parts[3], levels, parsed.d, parsed.m,
                             parsed.n, parsed.path))
    return entries


def run_round(entries: list[Entry], env: dict[str, str], args: argparse.Namespace,
              number: int, skipped: dict[str, str]) -> None:
    for entry in entries:
        if entry.name in skipped:
            continue
        try:
            server = Server(entry.name, entry.command, env).start()
        except RuntimeError as exc:
            skipped[entry.name] = str(exc).splitlines()[0]
            print(f"!! {entry.name} skipped: {exc}", flush=True)
            continue
        try:
            for level in entry.levels:
                loadgen.warm_up(server, entry.protocol, level, args.warmup)
                run = loadgen.measure(server, entry.protocol, level,
                                      seconds=entry.seconds or args.duration,
                                      streams=entry.streams, requests=entry.requests,
                                      path=entry.path)
                entry.runs.setdefault(level, []).append(run)
                print(f"{entry.name:<14} {entry.protocol} c={level:<4} round {number}: "
                      f"{run.rps:9.0f} req/s  p99 {run.p99_ms:6.2f} ms  "
                      f"{run.cpu_us_per_request:6.1f} us CPU/req  errors {run.errors}",
                      flush=True)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps(dict(asdict(run), name=entry.name, c=level,
                                                  round=number)) + "\n")
        finally:
            server.stop()
        time.sleep(0.5)  # let the port and the CPU settle before the next server


def table(entries: list[Entry], skipped: dict[str, str]) -> str:
    lines = ["| server | load | req/s (median) | req/s min-max | p99 ms | server CPU us/req "
             "| busiest proc % | errors |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for entry in entries:
        for level, runs in entry.runs.items():
            rps = [r.rps for r in runs]
            load = f"{entry.protocol} c={level}" + (f" m={entry.streams}"
                                                     if entry.protocol == "h2" else "")
            lines.append(
                f"| {entry.name} | {load} | {statistics.median(rps):.0f} | "
                f"{min(rps):.0f}-{max(rps):.0f} | "
                f"{statistics.median(r.p99_ms for r in runs):.2f} | "
                f"{statistics.median(r.cpu_us_per_request for r in runs):.1f} | "
                f"{100 * statistics.median(r.busiest_share for r in runs):.0f} | "
                f"{sum(r.errors for r in runs)} |")
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why.replace('|', '/')} | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-d", "--duration", type=int, default=5, help="seconds per h1 run")
    parser.add_argument("-w", "--warmup", type=int, default=2, help="warm-up seconds")
    parser.add_argument("--ours", default=sys.executable, help="this project's interpreter")
    parser.add_argument("--peers", default=DEFAULT_PEERS, help="the peers' interpreter")
    parser.add_argument("--only", help="regex on server names")
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--json", help="append every run here, one JSON object a line")
    args = parser.parse_args()

    entries = parse_suite(args.suite)
    if args.only:
        entries = [e for e in entries if re.search(args.only, e.name)]
    missing = loadgen.missing_tools({e.protocol for e in entries})
    if missing:
        raise SystemExit(f"missing load generator: {', '.join(missing)} "
                         "(Debian: apt-get install wrk nghttp2-client)")
    skipped: dict[str, str] = {}
    if not Path(args.peers).exists():
        print(f"Peers' interpreter {args.peers} not found: measuring ours alone. To compare, "
              f"install the peers with:\n    {PEERS_SETUP}", flush=True)
        for entry in entries:
            if entry.needs_peers:
                skipped[entry.name] = f"no peers at {args.peers}"
    env = {"OURS": str(Path(args.ours).absolute()), "PYTHON": args.peers}
    for number in range(1, args.rounds + 1):
        print(f"## round {number}/{args.rounds}", flush=True)
        run_round(entries, env, args, number, skipped)
    summary = table(entries, skipped)
    print("\n" + summary)
    if args.markdown:
        Path(args.markdown).write_text(summary + "\n")


if __name__ == "__main__":
    main()
