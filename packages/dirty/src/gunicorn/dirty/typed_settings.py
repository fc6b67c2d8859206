"""The typed view of the settings the ``dirty`` plugin adds: ``cfg: DirtySettings``.

The plugin's own code reads its settings through this view; the core never does (it does not
know the plugin). :class:`~gunicorn.config.Config` satisfies this Protocol, so the plugin's hooks
may declare ``cfg: DirtySettings``; a configuration the relay hands over as a value typed
``CoreSettings`` (``SidecarContext.cfg``) is narrowed with :func:`dirty_settings`.

Generated from the settings registry by ``python -m gunicorn.config.typed_gen --plugin dirty``
(``make typed``): do not edit. Change the settings (their validator's return annotation, or
``Setting.type``) and regenerate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from gunicorn.config.typed import CoreSettings
from gunicorn.errors import PluginError


class DirtySettings(CoreSettings, Protocol):
    """Dirty settings, one read-only attribute each."""

    # -- Dirty Arbiters ------------------------------------------------------------------------
    @property
    def dirty_apps(self) -> list[str]: ...
    @property
    def dirty_workers(self) -> int: ...
    @property
    def dirty_timeout(self) -> int: ...
    @property
    def dirty_threads(self) -> int: ...
    @property
    def dirty_graceful_timeout(self) -> int: ...
    @property
    def dirty_max_queue(self) -> int: ...
    @property
    def dirty_stash_file(self) -> str | None: ...
    @property
    def dirty_stash_save_interval(self) -> int: ...
    @property
    def dirty_stash_url(self) -> str | None: ...
    @property
    def dirty_stash_prefix(self) -> str | None: ...
    @property
    def dirty_resources(self) -> dict[str, list[str]]: ...

    # -- Dirty Arbiter Hooks -------------------------------------------------------------------
    @property
    def on_dirty_starting(self) -> Callable[[Any], Any]: ...
    @property
    def dirty_post_fork(self) -> Callable[[Any, Any], Any]: ...
    @property
    def dirty_worker_init(self) -> Callable[[Any], Any]: ...
    @property
    def dirty_worker_exit(self) -> Callable[[Any, Any], Any]: ...


def dirty_settings(cfg: CoreSettings) -> DirtySettings:
    """``cfg`` (a configuration the relay handed over, e.g. ``SidecarContext.cfg``) seen
    through this plugin's view; PluginError when the plugin's settings are not registered in
    it (the plugin was not loaded through the relay)."""
    if "dirty_apps" not in cfg.registry:
        raise PluginError("the dirty plugin's settings are not registered in this configuration")
    return cast("DirtySettings", cfg)
