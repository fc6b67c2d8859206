"""Section "Metrics": the Prometheus and health listener (``--metrics-bind``)."""

from __future__ import annotations

import importlib.util
from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.address import parse_address
from gunicorn.config.registry import Setting

SECTION = "Metrics"
EXTRA_HINT = "pip install 'gunicorn-core[metrics]'"


def prometheus_available() -> bool:
    """True when ``prometheus_client`` can be imported (looked up, not imported: importing it
    before the server chose its multiprocess directory would fix it in single-process mode)."""
    try:
        return importlib.util.find_spec("prometheus_client") is not None
    except (ImportError, ValueError):
        return False


def _metrics_bind(value: Any) -> str | None:
    if value is None:
        return None
    text = v.string(value).strip()
    if not text:
        return None
    parse_address(text)
    if not prometheus_available():
        raise ValueError(f"needs the prometheus_client package ({EXTRA_HINT})")
    return text


SETTINGS = (
    Setting(
        name="metrics_bind",
        section=SECTION,
        cli=("--metrics-bind",),
        meta="ADDRESS",
        default=None,
        validator=_metrics_bind,
        short_help="Serve /metrics (Prometheus) and /healthz on this address.",
        doc=(
            "Open a separate listener, never one of the application's sockets, that serves "
            "`GET /metrics` in the Prometheus text format (OpenMetrics when the scraper asks "
            "for it) and `GET /healthz` (200 while the master runs and at least one worker "
            "has booted, else 503; a small JSON body). Same address forms as `bind`: "
            "`HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd://N`. Needs the `prometheus_client` "
            f"package (`{EXTRA_HINT}`): without it the server exits with code 2. Served by a "
            "sidecar process, so a scrape never holds up the master or a worker. The metrics "
            "of every process are aggregated by prometheus_client's multiprocess mode from "
            "a private directory (mode 0700) the master creates and removes; metrics the "
            "application defines with prometheus_client are exported too. Read at start: a "
            "HUP does not open, move or close it. See docs/metrics.md."
        ),
    ),
)
