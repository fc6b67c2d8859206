"""The worker heartbeat file (in-process: no fork needed)."""

from __future__ import annotations

import os
import time

from gunicorn.config import Config
from gunicorn.workers.heartbeat import Heartbeat


def test_notify_stamps_monotonic_time():
    hb = Heartbeat(min_interval=0)
    try:
        before = time.monotonic()
        hb.notify()
        assert before - 0.01 <= hb.last_update() <= time.monotonic() + 0.01
    finally:
        hb.close()


def test_notify_is_rate_limited():
    hb = Heartbeat(min_interval=60)
    try:
        first = hb.last_update()
        hb.notify()
        assert hb.last_update() == first
        hb.notify(force=True)
        assert hb.last_update() > first
    finally:
        hb.close()


def test_file_is_unlinked_and_not_inherited(tmp_path):
    cfg = Config(env={})
    cfg.set("worker_tmp_dir", str(tmp_path))
    hb = Heartbeat(cfg)
    try:
        assert list(tmp_path.iterdir()) == []
        assert not os.get_inheritable(hb.fileno())
    finally:
        hb.close()
