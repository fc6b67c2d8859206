"""docs/settings.md is generated from the registry and must not drift from it."""

from __future__ import annotations

import subprocess
import sys

from gunicorn.config.docs import render
from gunicorn.config.settings import core_registry
from harness import REPO


def test_settings_reference_is_up_to_date() -> None:
    committed = (REPO / "docs" / "settings.md").read_text()
    assert committed == render(core_registry()), "run `make docs` to regenerate docs/settings.md"


def test_every_core_setting_is_documented() -> None:
    text = render(core_registry())
    for setting in core_registry():
        assert f"### `{setting.name}`" in text
        assert setting.doc.strip(), setting.name


def test_docs_module_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "gunicorn.config.docs"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("# Settings")
