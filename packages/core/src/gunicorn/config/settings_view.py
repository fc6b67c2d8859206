"""``cfg.settings``: the configuration as code written for gunicorn reads it.

Third-party workers and hooks written against gunicorn look settings up as
``cfg.settings["backlog"].value`` (uvicorn's worker does, for one), iterate ``cfg.settings`` to
list them, and sometimes call ``cfg.settings[name].set(value)``. This is a live view over a
:class:`~gunicorn.config.Config`: reading ``value`` reads the current value and ``set`` goes
through the setting's validator like :meth:`Config.set`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gunicorn.config.registry import Setting
    from gunicorn.config.typed import CoreSettings


class SettingView:
    """One setting with gunicorn's attribute names (``name``, ``value``, ``section``, ``cli``,
    ``meta``, ``action``, ``default``, ``short``, ``desc``, ``validator``)."""

    __slots__ = ("_cfg", "_setting")

    def __init__(self, cfg: CoreSettings, setting: Setting) -> None:
        self._cfg = cfg
        self._setting = setting

    @property
    def name(self) -> str:
        return self._setting.name

    @property
    def value(self) -> Any:
        return self._cfg.get(self._setting.name)

    @property
    def section(self) -> str:
        return self._setting.section

    @property
    def cli(self) -> list[str]:
        return list(self._setting.cli)

    @property
    def meta(self) -> str | None:
        return self._setting.meta

    @property
    def action(self) -> str:
        return self._setting.action

    @property
    def default(self) -> Any:
        return self._setting.default

    @property
    def short(self) -> str:
        return self._setting.short_help or self._setting.doc.split(". ")[0]

    @property
    def desc(self) -> str:
        return self._setting.doc

    @property
    def validator(self) -> Any:
        return self._setting.validator

    def get(self) -> Any:
        """The current value (gunicorn's ``Setting.get``)."""
        return self.value

    def set(self, value: Any) -> None:
        """Validate and store ``value``; raises ConfigError naming the setting when it is bad."""
        self._cfg.set(self._setting.name, value)

    def __repr__(self) -> str:
        return f"<Setting {self.name}={self.value!r}>"


class SettingsView(Mapping[str, SettingView]):
    """``cfg.settings``: every registered setting by name, in registration order."""

    __slots__ = ("_cfg",)

    def __init__(self, cfg: CoreSettings) -> None:
        self._cfg = cfg

    def __getitem__(self, name: str) -> SettingView:
        registry = self._cfg.registry
        if name not in registry:
            raise KeyError(name)
        return SettingView(self._cfg, registry.get(name))

    def __iter__(self) -> Iterator[str]:
        return (setting.name for setting in self._cfg.registry)

    def __len__(self) -> int:
        return len(self._cfg.registry)
