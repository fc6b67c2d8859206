"""The declarative settings registry.

Every setting -- core or plugin -- is one :class:`Setting` record. From the registry we generate the
command-line parser, config-file loading, ``--print-config``, ``--check-config`` and the settings
reference in ``docs/settings.md``; nothing about a setting is written twice.

Plugins contribute settings from their ``add_settings(registry)`` hook with :meth:`Registry.add`,
exactly as the core sections do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gunicorn.errors import ConfigError


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting.

    ``validator`` turns a raw value (a string from the command line or environment, or any Python
    value from a config file) into the typed value, or raises ``ValueError``/``TypeError`` with a
    short message; the registry wraps that into a :class:`~gunicorn.errors.ConfigError` naming the
    setting.

    ``default`` is passed through the validator too, unless it is ``None``. ``default_env`` gives
    environment-derived defaults (``$PORT`` for ``bind``, ``$WEB_CONCURRENCY`` for ``workers``): a
    callable taking the environment mapping and returning a raw value, or ``None`` for "no
    environment default".

    Command-line shape: ``cli`` holds the flags (``("-w", "--workers")``); an empty tuple means the
    setting can only be set from a config file. ``action`` is an argparse action name
    (``"store"``, ``"store_true"``, ``"store_false"``, ``"append"``, ``"store_const"``); ``nargs``,
    ``const`` and ``meta`` are handed to argparse as they are.

    Server hooks are settings whose value is a callable; ``hook_arity`` is the number of
    positional arguments the hook is called with (validated when set), or ``None`` for non-hooks.

    ``redact`` is for values that may hold a secret (a password in a URL): it returns the value
    as ``--print-config`` and the control socket's ``show config`` display it (see
    :meth:`shown`). The validator's error messages must not repeat such a value either.
    """

    name: str
    section: str
    doc: str
    default: Any = None
    validator: Callable[[Any], Any] = _identity
    cli: tuple[str, ...] = ()
    action: str = "store"
    meta: str | None = None
    nargs: str | int | None = None
    const: Any = None
    default_doc: str | None = None
    default_env: Callable[[Mapping[str, str]], Any] | None = None
    hook_arity: int | tuple[int, ...] | None = None
    short_help: str | None = None
    choices: tuple[str, ...] | None = None
    redact: Callable[[Any], Any] | None = None

    def shown(self, value: Any) -> Any:
        """``value`` as it may be displayed: through ``redact`` when the setting has one."""
        if self.redact is None or value is None:
            return value
        return self.redact(value)

    def validate(self, value: Any) -> Any:
        """Return the typed value, or raise ConfigError naming this setting."""
        try:
            return self.validator(value)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(self.name, str(exc) or f"invalid value {value!r}") from exc


@dataclass(slots=True)
class Registry:
    """An ordered set of settings, keyed by name. Names and CLI flags are unique."""

    _settings: dict[str, Setting] = field(default_factory=dict)
    _flags: dict[str, str] = field(default_factory=dict)

    def add(self, setting: Setting) -> None:
        """Register ``setting``; raise ValueError on a duplicate name or flag."""
        if setting.name in self._settings:
            raise ValueError(f"setting {setting.name!r} is already registered")
        for flag in setting.cli:
            if flag in self._flags:
                raise ValueError(
                    f"flag {flag} of setting {setting.name!r} is already used by "
                    f"{self._flags[flag]!r}"
                )
        self._settings[setting.name] = setting
        for flag in setting.cli:
            self._flags[flag] = setting.name

    def add_all(self, settings: list[Setting] | tuple[Setting, ...]) -> None:
        for setting in settings:
            self.add(setting)

    def get(self, name: str) -> Setting:
        try:
            return self._settings[name]
        except KeyError:
            raise ConfigError(name, "unknown setting") from None

    def __contains__(self, name: object) -> bool:
        return name in self._settings

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings.values())

    def __len__(self) -> int:
        return len(self._settings)

    def sections(self) -> dict[str, list[Setting]]:
        """Settings grouped by section, in registration order."""
        grouped: dict[str, list[Setting]] = {}
        for setting in self._settings.values():
            grouped.setdefault(setting.section, []).append(setting)
        return grouped
