"""Section "Process Naming": the names the server's processes show in ps and top."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Process Naming"

SETTINGS = (
    Setting(
        name="proc_name",
        section=SECTION,
        cli=("-n", "--name"),
        meta="STRING",
        default=None,
        validator=v.optional_string,
        short_help="The process name (needs setproctitle).",
        doc=(
            "The name the master and workers show in `ps` and `top` (and the syslog tag). "
            "Renaming needs the `setproctitle` package. Unset: `default_proc_name`."
        ),
    ),
    Setting(
        name="default_proc_name",
        section=SECTION,
        default="gunicorn",
        validator=v.string,
        doc="The process name used when `proc_name` is not set. Config file only.",
    ),
)
