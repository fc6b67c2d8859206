"""Section "Plugins": controlling the packages that extend the server."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Plugins"

SETTINGS = (
    Setting(
        name="disable_plugin",
        section=SECTION,
        cli=("--disable-plugin",),
        action="append",
        meta="NAME",
        default=[],
        validator=v.appended_list,
        short_help="Do not load this plugin (entry-point name, repeatable).",
        doc=(
            "Plugins not to load, by their name in the `gunicorn.plugins` entry-point group. "
            "Plugins are loaded before the configuration is read, so this is honoured from the "
            "command line and `$GUNICORN_CMD_ARGS` only; in a config file it has no effect."
        ),
    ),
)
