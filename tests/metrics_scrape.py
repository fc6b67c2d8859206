"""Helpers for tests of --metrics-bind: start a server with a metrics listener, read /metrics
with prometheus_client's own parser, read /healthz."""

from __future__ import annotations

import http.client
import json
from typing import Any

from harness import GunicornServer, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families


def metrics_server(args: list[str], env: dict[str, str] | None = None,
                   **kwargs: Any) -> GunicornServer:
    """A GunicornServer with ``--metrics-bind`` on a free port (``srv.metrics_port``)."""
    port = free_port()
    srv = GunicornServer(["--metrics-bind", f"127.0.0.1:{port}", *args], env=env, **kwargs)
    srv.metrics_port = port  # type: ignore[attr-defined]
    return srv


def fetch(host: str, port: int, path: str, headers: dict[str, str] | None = None,
          timeout: float = 5.0) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def scrape(srv: Any) -> dict[str, Any]:
    """Every metric family of ``/metrics``, by name (counters without ``_total``)."""
    status, content_type, body = fetch(srv.host, srv.metrics_port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def sample_sum(families: dict[str, Any], name: str, sample_name: str | None = None,
               **labels: str) -> float:
    """The sum of the samples ``sample_name`` (default ``name``) of family ``name`` whose
    labels include ``labels``; 0 when the family is absent."""
    family = families.get(name)
    if family is None:
        return 0.0
    wanted = sample_name or name
    return sum(s.value for s in family.samples
               if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_metric(srv: Any, name: str, value: float, sample_name: str | None = None,
                timeout: float = 10.0, **labels: str) -> dict[str, Any]:
    """Scrape until the sum of a sample equals ``value``; return the families."""
    seen: list[float] = []

    def reached() -> dict[str, Any] | None:
        families = scrape(srv)
        seen.append(sample_sum(families, name, sample_name, **labels))
        return families if seen[-1] == value else None
    try:
        return wait_until(reached, timeout=timeout)  # type: ignore[return-value]
    except TimeoutError:
        raise TimeoutError(f"{sample_name or name}{labels} never became {value} in {timeout}s "
                           f"(last: {seen[-1:]})") from None


def health(srv: Any) -> tuple[int, dict[str, Any]]:
    status, content_type, body = fetch(srv.host, srv.metrics_port, "/healthz")
    assert content_type == "application/json"
    return status, json.loads(body)


def wait_booted(srv: Any, count: int) -> None:
    """Wait until the master reports ``count`` booted workers (its children include the
    metrics sidecar, so counting processes would be off by one)."""
    def booted() -> bool:
        try:
            _, body = health(srv)
        except ConnectionRefusedError:  # bound just after the application's listeners
            return False
        workers = body["workers"]
        return workers["booted"] == workers["alive"] == count
    wait_until(booted, timeout=20, message=f"{count} booted workers")
