"""The typed settings view (gunicorn/config/typed.py) is generated from the registry."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Literal

import pytest
from gunicorn.config import Config, Setting
from gunicorn.config import validators as v
from gunicorn.config.typed import CoreSettings
from gunicorn.config.typed_gen import TypeGenError, render_core, setting_type
from harness import REPO

TYPED = REPO / "packages" / "core" / "src" / "gunicorn" / "config" / "typed.py"


def _declared(protocol: type) -> set[str]:
    return {name for name, member in vars(protocol).items() if isinstance(member, property)}


def test_typed_view_is_up_to_date() -> None:
    assert TYPED.read_text() == render_core(), "run `make typed` to regenerate config/typed.py"


def test_view_declares_every_core_setting_and_derived_value() -> None:
    cfg = Config()
    declared = _declared(CoreSettings)
    assert {setting.name for setting in cfg.registry} <= declared
    assert {"uid", "gid", "is_ssl", "worker_class", "address", "ssl_options"} <= declared
    for name in declared:
        getattr(cfg, name)  # every name in the view is a real attribute of Config


@pytest.mark.parametrize(("validator", "default", "expected"), [
    (v.positive_int(minimum=1), 1, int),
    (v.optional_string, None, str | None),
    (v.string, None, str | None),
    (v.choice("text", "json"), "text", Literal["text", "json"]),
], ids=["int", "optional", "none-default", "choice"])
def test_type_is_derived_from_the_validator(validator: Any, default: Any, expected: Any) -> None:
    setting = Setting(name="x", section="S", doc="d", default=default, validator=validator)
    assert setting_type(setting) == expected


def test_hook_type_has_the_hook_arity() -> None:
    setting = Setting(name="h", section="S", doc="d", default=print, validator=v.hook((2, 3)))
    assert "Callable[[Any, Any, Any], Any]" in str(setting_type(setting)).replace("typing.", "")


def test_explicit_type_wins() -> None:
    setting = Setting(name="x", section="S", doc="d", type="Path", validator=lambda value: value)
    assert setting_type(setting) == "Path"


def test_a_setting_without_a_type_is_refused_naming_it() -> None:
    def untyped(value: Any) -> Any:
        return value

    with pytest.raises(TypeGenError, match="'mystery'"):
        setting_type(Setting(name="mystery", section="S", doc="d", validator=untyped))


def test_generator_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "gunicorn.config.typed_gen"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "class CoreSettings(ConfigAccess, Protocol):" in result.stdout
