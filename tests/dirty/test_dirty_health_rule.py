"""The rule that turns the dirty arbiter's snapshot into the dirty section of /healthz."""

from __future__ import annotations

import pytest
from gunicorn.dirty.metrics import STALE_AFTER, health_section


def snapshot(*states, time=100.0):
    return {"time": time, "pid": 7, "ready": 1, "loading": 0, "expected": 1,
            "apps": {f"m:App{i}": {"state": s, "ready": int(s == "ready"), "loading": 0}
                     for i, s in enumerate(states)}}


@pytest.mark.parametrize(("snap", "ok"), [
    (snapshot("ready", "ready"), True),
    (snapshot("ready", "starting"), True),
    (snapshot("starting"), True),
    (snapshot("ready", "unavailable"), False),
    (snapshot("ready", time=100.0 - STALE_AFTER - 1), False),
    (None, False),
], ids=["all-ready", "one-loading-at-boot", "booting", "one-unavailable", "stale", "no-report"])
def test_dirty_health_verdict(snap, ok):
    section = health_section(snap, now=100.0)
    assert section["ok"] is ok
    assert ("reason" in section) is not ok


def test_unavailable_apps_are_named():
    section = health_section(snapshot("ready", "unavailable"), now=100.5)
    assert section["reason"] == "no ready dirty worker for m:App1"
    assert section["last_report_age"] == 0.5
