"""The core's settings, one module per section of the reference.

Each module exposes ``SETTINGS``, a tuple of :class:`~gunicorn.config.registry.Setting`. The
order of :data:`SECTIONS` is the order of the ``--help`` groups and of ``docs/settings.md``.
Plugins add their own sections to the registry through their ``add_settings`` hook.
"""

from __future__ import annotations

from gunicorn.config.registry import Registry
from gunicorn.config.settings import (
    config_file,
    control,
    debugging,
    hooks,
    http_handling,
    logging_settings,
    metrics,
    plugins,
    process_naming,
    protocols,
    security,
    server_mechanics,
    server_socket,
    ssl,
    websockets,
    worker_processes,
)

SECTIONS = (
    config_file,
    server_socket,
    worker_processes,
    websockets,
    security,
    debugging,
    server_mechanics,
    http_handling,
    protocols,
    logging_settings,
    metrics,
    process_naming,
    ssl,
    hooks,
    plugins,
    control,
)


def core_registry() -> Registry:
    """A new registry holding every core setting (a fresh one per call: callers may extend it)."""
    registry = Registry()
    for module in SECTIONS:
        registry.add_all(module.SETTINGS)
    return registry


__all__ = ["SECTIONS", "core_registry"]
