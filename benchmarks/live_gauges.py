"""The cost of the live gauges' call sites in isolation: what one request adds to a worker for
``gunicorn_requests_in_flight`` (inc + dec) and ``gunicorn_keepalive_connections`` (idle +
busy), with metrics off (the no-op objects) and on (prometheus_client multiprocess files).

    .venv/bin/python benchmarks/live_gauges.py [--n 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import timeit
from collections.abc import Callable
from types import SimpleNamespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200000)
    n = parser.parse_args().n
    directory = tempfile.mkdtemp(prefix="live-gauges-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client is imported
    from gunicorn.instrument.metrics import CoreMetrics, PrometheusFamilies, RequestMetrics

    logs = {"off": SimpleNamespace(),
            "on": SimpleNamespace(request_metrics=RequestMetrics(
                CoreMetrics(PrometheusFamilies(directory)), "gthread"))}
    for mode, log in logs.items():
        for label, fn in (("in flight inc+dec", _one_request(log)),
                          ("keep-alive idle+busy", _one_keepalive_turn(log))):
            seconds = min(timeit.repeat(fn, number=n, repeat=5)) / n
            print(f"metrics {mode:3}  {label:22} {seconds * 1e9:7.0f} ns per request")


def _one_request(log: object) -> Callable[[], None]:
    from gunicorn.instrument.live import worker_gauges

    in_flight = worker_gauges(log).in_flight

    def run() -> None:
        in_flight.inc()
        in_flight.dec()
    return run


def _one_keepalive_turn(log: object) -> Callable[[], None]:
    from gunicorn.instrument.live import worker_gauges

    keepalive, conn = worker_gauges(log).keepalive(), object()

    def run() -> None:
        keepalive.idle(conn)
        keepalive.busy(conn)
    return run

if __name__ == "__main__":
    main()
