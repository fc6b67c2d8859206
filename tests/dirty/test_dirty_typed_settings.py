"""gunicorn/dirty/typed_settings.py is generated from the plugin's settings."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.config.settings import core_registry
from gunicorn.config.typed_gen import render_plugin
from gunicorn.dirty.plugin import DirtyPlugin
from gunicorn.dirty.typed_settings import dirty_settings
from gunicorn.errors import PluginError
from harness import REPO

TYPED = REPO / "packages" / "dirty" / "src" / "gunicorn" / "dirty" / "typed_settings.py"


def test_dirty_typed_view_is_up_to_date() -> None:
    assert TYPED.read_text() == render_plugin("dirty"), "run `make typed` to regenerate it"


def test_narrowing_checks_that_the_plugin_settings_are_registered() -> None:
    with pytest.raises(PluginError, match="dirty plugin's settings"):
        dirty_settings(Config())
    registry = core_registry()
    DirtyPlugin().add_settings(registry)
    cfg = Config(registry)
    assert dirty_settings(cfg) is cfg and dirty_settings(cfg).dirty_workers == 0
