"""The typed view of the settings the ``http2`` plugin adds: ``cfg: Http2Settings``.

The plugin's own code reads its settings through this view; the core never does (it does not
know the plugin). :class:`~gunicorn.config.Config` satisfies this Protocol, so the plugin's hooks
may declare ``cfg: Http2Settings``; a configuration the relay hands over as a value typed
``CoreSettings`` (``SidecarContext.cfg``) is narrowed with :func:`http2_settings`.

Generated from the settings registry by ``python -m gunicorn.config.typed_gen --plugin http2``
(``make typed``): do not edit. Change the settings (their validator's return annotation, or
``Setting.type``) and regenerate.
"""

from __future__ import annotations

from typing import Protocol, cast

from gunicorn.config.typed import CoreSettings
from gunicorn.errors import PluginError


class Http2Settings(CoreSettings, Protocol):
    """Http2 settings, one read-only attribute each."""

    # -- HTTP/2 --------------------------------------------------------------------------------
    @property
    def http2_cleartext(self) -> str: ...
    @property
    def http2_max_concurrent_streams(self) -> int: ...
    @property
    def http2_initial_window_size(self) -> int: ...
    @property
    def http2_max_frame_size(self) -> int: ...
    @property
    def http2_max_header_list_size(self) -> int: ...
    @property
    def http2_max_request_body(self) -> int: ...
    @property
    def http2_max_reset_rate(self) -> int: ...


def http2_settings(cfg: CoreSettings) -> Http2Settings:
    """``cfg`` (a configuration the relay handed over, e.g. ``SidecarContext.cfg``) seen
    through this plugin's view; PluginError when the plugin's settings are not registered in
    it (the plugin was not loaded through the relay)."""
    if "http2_cleartext" not in cfg.registry:
        raise PluginError("the http2 plugin's settings are not registered in this configuration")
    return cast("Http2Settings", cfg)
