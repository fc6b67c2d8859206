"""Load generators: ``wrk`` for HTTP/1.1, ``h2load`` for cleartext HTTP/2 (prior knowledge).

Each run returns a :class:`Run`: requests, requests per second, the 99th percentile latency,
errors (socket errors, timeouts, non-2xx/3xx answers), and the CPU the server and the client
used during the run, from which CPU per request follows (the figure least disturbed by a load
generator sharing the machine).
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True, slots=True)
class Run:
    requests: int
    rps: float
    p99_ms: float
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    busiest_share: float  # CPU of the busiest server process / all server CPU

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else float("nan")


def missing_tools(protocols: set[str]) -> list[str]:
    needed = {"h1": "wrk", "h2": "h2load"}
    return sorted(needed[p] for p in protocols if shutil.which(needed[p]) is None)


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match.group(1)) * UNITS_MS[match.group(2)] if match else float("nan")


def _wrk(url: str, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(total.group(1)) if total else 0,
            "rps": float(rps.group(1)) if rps else 0.0,
            "p99_ms": _ms(p99.group(1)) if p99 else float("nan"),
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0), "raw": out}


def _h2load(url: str, connections: int, streams: int, requests: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        out = subprocess.run(["h2load", f"-c{connections}", f"-m{streams}", f"-n{requests}",
                              "--log-file", log.name, url],
                             capture_output=True, text=True, timeout=600).stdout
        # One line per request: start time, status, duration in microseconds.
        durations = sorted(int(line.split()[2]) for line in log
                           if len(line.split()) >= 3 and line.split()[1].startswith("2"))
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) "
                     r"failed, (\d+) errored, (\d+) timeout", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    p99 = durations[max(0, -(-len(durations) * 99 // 100) - 1)] / 1000 if durations else None
    return {"requests": int(done.group(1)) if done else 0,
            "rps": float(rps.group(1)) if rps else 0.0,
            "p99_ms": p99 if p99 is not None else float("nan"),
            "errors": sum(int(done.group(i)) for i in (2, 3, 4)) if done else 0, "raw": out}


def measure(server: Any, protocol: str, connections: int, *, seconds: int = 5,
            streams: int = 10, requests: int = 20000, path: str = "/") -> Run:
    """One measured run against ``server`` (a :class:`servers.Server`)."""
    url = f"http://127.0.0.1:{server.port}{path}"
    cpu_before, client_before = server.cpu(), _client_cpu()
    if protocol == "h2":
        result = _h2load(url, connections, streams, requests)
    else:
        result = _wrk(url, connections, seconds)
    cpu_after, client_after = server.cpu(), _client_cpu()
    grown = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
    total = sum(grown.values())
    return Run(requests=result["requests"], rps=result["rps"], p99_ms=result["p99_ms"],
               errors=result["errors"], server_cpu_s=total,
               client_cpu_s=client_after - client_before,
               busiest_share=max(grown.values()) / total if total > 0 else float("nan"))


def warm_up(server: Any, protocol: str, connections: int, seconds: int) -> None:
    if seconds <= 0:
        return
    measure(server, protocol, connections, seconds=seconds, requests=2000)

