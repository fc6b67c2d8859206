"""gunicorn/dirty/typed_settings.py is generated from the plugin's settings."""

from __future__ import annotations

from gunicorn.config.typed_gen import render_plugin
from harness import REPO

TYPED = REPO / "packages" / "dirty" / "src" / "gunicorn" / "dirty" / "typed_settings.py"


def test_dirty_typed_view_is_up_to_date() -> None:
    assert TYPED.read_text() == render_plugin("dirty"), "run `make typed` to regenerate it"
