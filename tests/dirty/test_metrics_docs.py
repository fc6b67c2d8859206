"""docs/metrics.md lists every metric family the core and gunicorn-dirty declare, and the
Grafana dashboard uses only documented ones."""

from __future__ import annotations

import json
import re

from gunicorn.dirty.metrics import DirtyMetrics
from gunicorn.instrument.metrics import PREFIX, CoreMetrics, MetricFamilies
from harness import REPO

DOCS = (REPO / "docs" / "metrics.md").read_text()
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"


class NameCollector(MetricFamilies):
    """Families that record nothing and remember what was declared (exported names)."""

    def __init__(self):
        self.names = set()

    def counter(self, name, documentation, labels=()):
        self.names.add(PREFIX + name.removesuffix("_total") + "_total")
        return super().counter(name, documentation, labels)

    def gauge(self, name, documentation, labels=(), aggregate="sum"):
        self.names.add(PREFIX + name)
        return super().gauge(name, documentation, labels, aggregate)

    def histogram(self, name, documentation, labels=(), **kwargs):
        self.names.add(PREFIX + name)
        return super().histogram(name, documentation, labels)


def test_every_declared_family_is_in_the_tables():
    families = NameCollector()
    CoreMetrics(families)
    DirtyMetrics(families)
    documented = set(re.findall(r"^\| `(gunicorn_\w+)`", DOCS, re.MULTILINE))
    assert families.names - documented == set()


def test_the_dashboard_uses_documented_metrics():
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
             for t in p["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name)
            for expr in exprs for name in re.findall(r"gunicorn_\w+", expr)}
    assert used and all(f"`{name}`" in DOCS for name in used), used
