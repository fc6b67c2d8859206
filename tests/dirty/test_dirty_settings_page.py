"""docs/settings-dirty.md is generated from the plugin's settings and must not drift from them."""

from __future__ import annotations

from gunicorn.config.docs import plugin_intro, plugin_registry, render
from harness import REPO


def test_dirty_settings_page_is_up_to_date() -> None:
    committed = (REPO / "docs" / "settings-dirty.md").read_text()
    expected = render(plugin_registry("dirty"), plugin_intro("dirty"))
    assert committed == expected, "run `make docs` to regenerate docs/settings-dirty.md"


def test_dirty_page_holds_only_dirty_settings() -> None:
    names = {setting.name for setting in plugin_registry("dirty")}
    assert "dirty_apps" in names and "on_dirty_starting" in names
    assert "bind" not in names and "workers" not in names
