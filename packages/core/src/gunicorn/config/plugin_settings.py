"""Settings that belong to a plugin which is not loaded.

``dirty_workers = 4`` in a config file, or ``--dirty-workers 4``, while gunicorn-dirty is not
installed (or was disabled with ``--disable-plugin dirty``) must stop the server and say what
to install, not pass silently or look like a typo. The core never imports a plugin, so it keeps
this small table of the known plugins' setting prefixes, as :data:`gunicorn.protocols.PROVIDERS`
does for protocol tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

# Setting-name prefix -> (plugin entry-point name, the distribution that provides it).
PLUGIN_PREFIXES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "dirty_": ("dirty", "gunicorn-dirty"),
    "http2_": ("http2", "gunicorn-http2"),
})


def flag_to_name(flag: str) -> str:
    """``--dirty-workers=4`` -> ``dirty_workers``."""
    return flag.split("=", 1)[0].lstrip("-").replace("-", "_")


def missing_plugin(name: str, disabled: Iterable[str] = ()) -> str | None:
    """Why the (unregistered) setting ``name`` is unavailable, or None if no known plugin
    provides it."""
    for prefix, (plugin, distribution) in PLUGIN_PREFIXES.items():
        if name.startswith(prefix):
            if plugin in set(disabled):
                return (f"belongs to the {plugin} plugin, which is disabled "
                        f"(--disable-plugin {plugin})")
            return (f"needs the {plugin} plugin, which is not installed: "
                    f"pip install {distribution}")
    return None
