"""Section "Debugging": development helpers and configuration checks."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Debugging"

SETTINGS = (
    Setting(
        name="reload",
        section=SECTION,
        cli=("--reload",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Restart workers when the code changes.",
        doc=(
            "Watch the source files of the loaded modules (and `reload_extra_files`) and "
            "restart the workers when one changes. Meant for development only. It does not "
            "combine with `preload_app`, since the master would keep the old code."
        ),
    ),
    Setting(
        name="reload_engine",
        section=SECTION,
        cli=("--reload-engine",),
        meta="STRING",
        default="auto",
        validator=v.choice("auto", "poll", "inotify"),
        choices=("auto", "poll", "inotify"),
        short_help="How --reload watches files: auto, poll or inotify.",
        doc=(
            "How `reload` notices changes: `poll` checks modification times every second, "
            "`inotify` asks the Linux kernel (needs the `inotify_simple` package), and `auto` "
            "uses inotify when it is available."
        ),
    ),
    Setting(
        name="reload_extra_files",
        section=SECTION,
        cli=("--reload-extra-file",),
        action="append",
        meta="FILES",
        default=[],
        validator=v.appended_list,
        short_help="More files to watch with --reload (repeatable, globs allowed).",
        doc=(
            "Extra files whose change restarts the workers under `reload`, such as templates or "
            "configuration. Glob patterns (`*`, `?`, `[...]`, recursive `**`) are expanded again "
            "at every check, so new matching files are picked up."
        ),
    ),
    Setting(
        name="spew",
        section=SECTION,
        cli=("--spew",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Trace every line the server executes.",
        doc=(
            "Install a trace function that prints every line executed by the server. The "
            "output is enormous: use it only to find where a worker hangs."
        ),
    ),
    Setting(
        name="check_config",
        section=SECTION,
        cli=("--check-config",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Check the configuration and the application, then exit.",
        doc=(
            "Load the configuration and import the application, then exit: status 0 when "
            "both succeed, 1 when the application cannot be loaded, 2 on a bad setting."
        ),
    ),
    Setting(
        name="print_config",
        section=SECTION,
        cli=("--print-config",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Print the final value of every setting, then exit.",
        doc=(
            "Print every setting as `name = value`, sorted by name, after the defaults, the "
            "config file, `$GUNICORN_CMD_ARGS` and the command line have been applied, then exit."
        ),
    ),
)
