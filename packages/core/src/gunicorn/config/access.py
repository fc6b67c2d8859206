"""The part of the settings view that is not a setting: how a configuration is read and set.

:class:`ConfigAccess` is the base of the generated :class:`gunicorn.config.typed.CoreSettings`
(one read-only attribute per setting), so code that takes ``cfg: CoreSettings`` may also call
``cfg.get(name)``, ``cfg.is_set(name)`` or ``cfg.notice(...)``. :class:`~gunicorn.config.Config`
implements it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gunicorn.config.config import Config, Notice
    from gunicorn.config.registry import Registry
    from gunicorn.config.settings_view import SettingsView


class ConfigAccess(Protocol):
    """Reading and setting values by name, and the notices of a configuration."""

    @property
    def registry(self) -> Registry: ...

    @property
    def notices(self) -> list[Notice]: ...

    @property
    def settings(self) -> SettingsView: ...

    def get(self, name: str) -> Any: ...

    def set(self, name: str, value: Any) -> None: ...

    def is_set(self, name: str) -> bool: ...

    def notice(self, message: str, level: int = logging.WARNING) -> None: ...

    def items(self) -> list[tuple[str, Any]]: ...

    def copy(self) -> Config: ...
