"""The typo rule for config-file names and flags, and the plugin-setting table."""

from __future__ import annotations

import os

import pytest
from gunicorn.config.plugin_settings import missing_plugin
from gunicorn.config.settings import core_registry
from gunicorn.config.suggest import edit_distance, likely_flags, likely_setting

REGISTRY = core_registry()


def _hook(server, worker):
    pass


def _helper():
    pass


@pytest.mark.parametrize("a, b, distance", [
    ("workers", "workers", 0), ("workres", "workers", 1), ("bnd", "bind", 1),
    ("worker", "workers", 1), ("wrokers", "workers", 1), ("keepalive_str", "keepalive", 4),
])
def test_edit_distance_counts_adjacent_swaps_as_one(a, b, distance):
    assert edit_distance(a, b) == distance


@pytest.mark.parametrize("name, value, meant", [
    ("workres", 4, "workers"), ("bnd", "0.0.0.0:80", "bind"), ("log_level", "info", "loglevel"),
    ("access_log", "-", "accesslog"), ("preload", True, "preload_app"),
    ("keep_alive", 5, "keepalive"), ("post_forks", _hook, "post_fork"),
    ("child_exited", _hook, "child_exit"),
    # Helpers of real-world config files stay silent.
    ("keepalive_str", "2", None), ("use_loglevel", "info", None), ("use_accesslog", "-", None),
    ("workers_per_core", 1.0, None), ("web_concurrency", 2, None), ("max_workers", 4, None),
    ("host", "0.0.0.0", None), ("port", 80, None), ("env", {}, None), ("name", "x", None),
    ("cores", 2, None), ("number_of_workers", _helper, None), ("WORKERS", 4, None),
    ("_workres", 4, None), ("path", os.path, None), ("workres", dict, None),
    ("workers", _hook, None),  # a function is compared with hooks only
], ids=lambda v: v if isinstance(v, str) else "")
def test_likely_setting(name, value, meant):
    assert likely_setting(name, value, REGISTRY) == meant


def test_likely_flags():
    flags = [flag for setting in REGISTRY for flag in setting.cli]
    assert likely_flags("--wokers", flags) == ["--workers"]
    assert likely_flags("--time-out=3", flags) == ["--timeout"]
    assert likely_flags("--completely-unknown", flags) == []


def test_missing_plugin_names_the_package_or_the_disabling_flag():
    assert missing_plugin("dirty_workers") == ("needs the dirty plugin, which is not installed: "
                                               "pip install gunicorn-dirty")
    assert missing_plugin("http2_max_frame_size", ["http2"]) == (
        "belongs to the http2 plugin, which is disabled (--disable-plugin http2)")
    assert missing_plugin("workers") is None
