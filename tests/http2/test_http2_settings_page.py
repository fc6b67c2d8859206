"""docs/settings-http2.md is generated from the plugin's settings and must not drift from them."""

from __future__ import annotations

from gunicorn.config.docs import plugin_intro, plugin_registry, render
from harness import REPO


def test_http2_settings_page_is_up_to_date() -> None:
    committed = (REPO / "docs" / "settings-http2.md").read_text()
    expected = render(plugin_registry("http2"), plugin_intro("http2"))
    assert committed == expected, "run `make docs` to regenerate docs/settings-http2.md"


def test_http2_page_holds_only_http2_settings() -> None:
    names = {setting.name for setting in plugin_registry("http2")}
    assert "http2_cleartext" in names and "http2_max_frame_size" in names
    assert "bind" not in names and "workers" not in names
