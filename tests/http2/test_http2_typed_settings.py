"""gunicorn/http2/typed_settings.py is generated from the plugin's settings."""

from __future__ import annotations

from gunicorn.config.typed_gen import render_plugin
from harness import REPO

TYPED = REPO / "packages" / "http2" / "src" / "gunicorn" / "http2" / "typed_settings.py"


def test_http2_typed_view_is_up_to_date() -> None:
    assert TYPED.read_text() == render_plugin("http2"), "run `make typed` to regenerate it"
