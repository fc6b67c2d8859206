"""Section "Config File": where the configuration and the application come from."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Config File"

SETTINGS = (
    Setting(
        name="config",
        section=SECTION,
        cli=("-c", "--config"),
        meta="CONFIG",
        default="./gunicorn.conf.py",
        validator=v.string,
        short_help="The configuration file (a path, or python:MODULE).",
        doc=(
            "The configuration file to read: a path to a Python file, or `python:MODULE.NAME` to "
            "import a module found on the Python path. The file is executed as Python and every "
            "module-level name that matches a setting is applied; other names are ignored. When "
            "the option is not given, `./gunicorn.conf.py` is read if it exists. The option can "
            "also be given in `$GUNICORN_CMD_ARGS`."
        ),
    ),
    Setting(
        name="wsgi_app",
        section=SECTION,
        default=None,
        validator=v.optional_string,
        doc=(
            "The application to serve, written `MODULE:VARIABLE` (or `MODULE:factory()`). It is "
            "what the positional APP_MODULE argument sets, so a config file can name the "
            "application and leave the command line without one."
        ),
    ),
)
