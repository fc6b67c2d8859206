"""Values computed from several settings, as properties of :class:`~gunicorn.config.Config`.

A property here shadows the setting of the same name on purpose, following gunicorn:
``cfg.worker_class`` is the resolved class while ``cfg.get("worker_class")`` is what the user wrote.
"""

from __future__ import annotations

from typing import Any


class DerivedValues:
    """Mixin for Config. ``self.<setting>`` reads a validated value through Config.__getattr__."""

    def get(self, name: str) -> Any:  # provided by Config
        raise NotImplementedError

    @property
    def worker_class_str(self) -> str:
        value = self.get("worker_class")
        return value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"

    @property
    def worker_class(self) -> type:
        from gunicorn.workers import load_worker_class

        return load_worker_class(self.get("worker_class"))
