"""The example served by `make run` calls its dirty app (examples/dirty_app.py)."""

from __future__ import annotations

import json
import urllib.request

from conftest import DirtyServer
from harness import REPO


def test_make_run_example_uses_the_dirty_pool() -> None:
    server = DirtyServer(["-c", "gunicorn.conf.py", "--dirty-workers", "1", "--no-control-socket",
                          "app:app"], cwd=REPO / "examples")
    with server:
        server.booted(1, timeout=30)
        with urllib.request.urlopen(f"{server.url}/factorise?n=600851475143", timeout=10) as r:
            assert json.loads(r.read())["factors"] == [71, 839, 1471, 6857]
        with urllib.request.urlopen(f"{server.url}/progress?n=3", timeout=10) as r:
            steps = [json.loads(line) for line in r.read().splitlines()]
        assert [s["step"] for s in steps] == [1, 2, 3]
