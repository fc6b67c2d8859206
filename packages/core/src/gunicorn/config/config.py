"""The resolved configuration: typed values for every registered setting.

``cfg.<name>`` returns the validated value of a setting (``cfg.workers``, ``cfg.bind``); server
hooks are callables, so ``cfg.on_starting(server)`` calls the user's hook (or the no-op default).
A few derived values that gunicorn users' hooks rely on are properties here (``address``,
``worker_class``, ``uid``/``gid``, ``proc_name``, ``is_ssl``, ``env``, ``sendfile``).

Values are set through :meth:`Config.set`, which validates them; layering (defaults < app <
config file < ``GUNICORN_CMD_ARGS`` < command line) is done by :mod:`gunicorn.config.loader`
calling ``set`` in that order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gunicorn.config.derived import DerivedValues
from gunicorn.config.registry import Registry, Setting
from gunicorn.config.settings_view import SettingsView
from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth telling about a configuration that still works (a likely typo, a
    setting that has no effect here). ``level`` is a :mod:`logging` level."""

    message: str
    level: int = logging.WARNING


class Config(DerivedValues):
    """Typed setting values backed by a :class:`Registry`.

    Code reads it through the generated typed view, ``cfg: CoreSettings``
    (:mod:`gunicorn.config.typed`; a plugin's own view adds its settings): ``__getattr__``
    makes every setting an attribute, the view gives each its type.
    """

    registry: Registry
    notices: list[Notice]
    _values: dict[str, Any]
    _explicit: set[str]

    def __init__(self, registry: Registry | None = None, env: Mapping[str, str] | None = None) -> None:
        if registry is None:
            from gunicorn.config.settings import core_registry

            registry = core_registry()
        # object.__setattr__ because __setattr__ is guarded against typos below.
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_explicit", set())
        object.__setattr__(self, "notices", [])
        environ = os.environ if env is None else env
        for setting in registry:
            self._values[setting.name] = self._default_for(setting, environ)

    @staticmethod
    def _default_for(setting: Setting, env: Mapping[str, str]) -> Any:
        raw = setting.default
        if setting.default_env is not None:
            from_env = setting.default_env(env)
            if from_env is not None:
                raw = from_env
        if raw is None:
            return None
        return setting.validate(raw)

    # -- access -------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"no setting named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("use Config.set(name, value) so the value is validated")

    def get(self, name: str) -> Any:
        if name not in self._values:
            raise ConfigError(name, "unknown setting")
        return self._values[name]

    def set(self, name: str, value: Any) -> None:
        """Validate ``value`` and store it; raise ConfigError naming the setting when it is bad."""
        setting = self.registry.get(name)
        # None unsets an optional setting; for the others the validator explains the error.
        if value is None and setting.default is None:
            self._values[name] = None
        else:
            self._values[name] = setting.validate(value)
        self._explicit.add(name)

    def is_set(self, name: str) -> bool:
        """True when ``name`` was set explicitly (config file, env, command line, app)."""
        return name in self._explicit

    @property
    def settings(self) -> SettingsView:
        """gunicorn's ``cfg.settings[name].value`` view, for third-party workers and hooks."""
        return SettingsView(self)

    def notice(self, message: str, level: int = logging.WARNING) -> None:
        """Record a :class:`Notice`; the command logs them once the logger exists and
        ``--check-config`` prints them."""
        self.notices.append(Notice(message, level))

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._values.items())

    def copy(self) -> Config:
        clone = object.__new__(Config)
        object.__setattr__(clone, "registry", self.registry)
        object.__setattr__(clone, "_values", dict(self._values))
        object.__setattr__(clone, "_explicit", set(self._explicit))
        object.__setattr__(clone, "notices", list(self.notices))
        return clone


if TYPE_CHECKING:
    def _satisfies_view(cfg: Config) -> CoreSettings:
        return cfg  # the type checker proves that Config implements the typed view
