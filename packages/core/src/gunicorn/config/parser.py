"""The ``gunicorn`` command-line parser, generated from the settings registry.

Every option's default is ``argparse.SUPPRESS``, so the namespace holds only what the user
actually typed: that is what lets the command line override the config file and
``$GUNICORN_CMD_ARGS`` setting by setting, without argparse defaults clobbering them.

Values are not converted here (no ``type=``, no ``choices=``): they go through the settings'
validators, so a bad value is reported as ``Error: <setting>: <message>`` like any other.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from gunicorn.config.plugin_settings import flag_to_name, missing_plugin
from gunicorn.config.registry import Registry, Setting
from gunicorn.config.suggest import likely_flags
from gunicorn.errors import ConfigError
from gunicorn.version import __version__

PROG = "gunicorn"
USAGE = "%(prog)s [OPTIONS] [APP_MODULE]"
CMD_ARGS_ENV = "GUNICORN_CMD_ARGS"


def _help(setting: Setting) -> str:
    text = setting.short_help or setting.doc.split(". ")[0].rstrip(".") + "."
    if setting.choices:
        text += f" One of: {', '.join(setting.choices)}."
    default = setting.default_doc if setting.default_doc is not None else repr(setting.default)
    # argparse %-formats help strings; a literal % (access_log_format) must be doubled.
    return f"{text} [{default}]".replace("%", "%%")


# Words a flag with an optional value (``--proxy-protocol [MODE]``) also takes as its value.
_BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "none"})


class CommandLineParser(argparse.ArgumentParser):
    """An ArgumentParser that does not let ``--flag [VALUE]`` swallow the APP_MODULE.

    argparse gives an optional value to the flag whenever a non-option word follows, so
    ``--proxy-protocol app:app`` would read ``app:app`` as the mode. When a setting lists its
    ``choices``, a following word that is not one of them is left for the positional argument.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.optional_value_flags: dict[str, tuple[frozenset[str], Any]] = {}

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None:
            args = self._bind_optional_values(list(args))
        return super().parse_known_args(args, namespace)

    def _bind_optional_values(self, args: list[str]) -> list[str]:
        result: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                return result + args[index:]
            flag = self.optional_value_flags.get(arg)
            following = args[index + 1] if index + 1 < len(args) else None
            if flag is not None and following is not None and not following.startswith("-"):
                accepted, const = flag
                if following.lower() not in accepted:
                    result.append(f"{arg}={const}")
                    continue
            result.append(arg)
        return result


def build_parser(registry: Registry) -> CommandLineParser:
    """An ArgumentParser with one option per setting that has ``cli`` flags, grouped by section."""
    parser = CommandLineParser(prog=PROG, usage=USAGE, add_help=False,
                               argument_default=argparse.SUPPRESS)
    general = parser.add_argument_group("General")
    general.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    general.add_argument("-v", "--version", action="version",
                         version=f"%(prog)s (version {__version__})",
                         help="Show the version and exit.")
    general.add_argument("wsgi_app", metavar="APP_MODULE", nargs="?", default=argparse.SUPPRESS,
                         help="The application, as MODULE:VARIABLE (or set wsgi_app in the "
                              "config file).")
    for section, settings in registry.sections().items():
        group = parser.add_argument_group(section)
        for setting in settings:
            if setting.cli:
                group.add_argument(*setting.cli, **_argument_options(setting))
            if setting.cli and setting.nargs == "?" and setting.choices:
                accepted = frozenset(setting.choices) | _BOOLEAN_WORDS
                for flag in setting.cli:
                    parser.optional_value_flags[flag] = (accepted, setting.const)
    return parser


def _argument_options(setting: Setting) -> dict[str, Any]:
    options: dict[str, Any] = {
        "dest": setting.name,
        "action": setting.action,
        "default": argparse.SUPPRESS,
        "help": _help(setting),
    }
    if setting.action in ("store", "append"):
        options["metavar"] = setting.meta or setting.name.upper()
        if setting.nargs is not None:
            options["nargs"] = setting.nargs
            options["const"] = setting.const
    elif setting.action in ("store_const", "append_const"):
        options["const"] = setting.const
    return options


def parse_args(parser: argparse.ArgumentParser, args: Sequence[str],
               disabled_plugins: Sequence[str] = ()) -> dict[str, Any]:
    """The values explicitly given in ``args``, by setting name.

    Exits 2 on a usage error; an unknown flag is reported with the closest known one ("did you
    mean --workers?"). Raises ConfigError for a flag of a plugin that is not loaded
    (``--dirty-workers`` without gunicorn-dirty), naming what to install.
    """
    namespace, extras = parser.parse_known_args(list(args))
    if extras:
        parser.error(_unknown_arguments(parser, extras, disabled_plugins))
    return dict(vars(namespace))


def _unknown_arguments(parser: argparse.ArgumentParser, extras: list[str],
                       disabled_plugins: Sequence[str]) -> str:
    flags = [flag for flag in parser._option_string_actions if flag.startswith("--")]
    for extra in extras:
        if extra.startswith("--"):
            name = flag_to_name(extra)
            why = missing_plugin(name, disabled_plugins)
            if why is not None:
                raise ConfigError(name, f"{extra.split('=', 1)[0]} {why}")
    parts = []
    for extra in extras:
        near = likely_flags(extra, flags) if extra.startswith("-") else []
        parts.append(f"{extra} (did you mean {near[0]}?)" if near else extra)
    return f"unrecognized arguments: {' '.join(parts)}"


def env_args(env: Mapping[str, str]) -> list[str]:
    """``$GUNICORN_CMD_ARGS`` split as a shell would."""
    return shlex.split(env.get(CMD_ARGS_ENV, ""))


def prescan_disabled_plugins(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The ``--disable-plugin`` names in ``argv`` and ``$GUNICORN_CMD_ARGS``.

    Plugins must be loaded before the full parser exists (they add options to it), so this one
    option is read first with a parser that knows nothing else.
    """
    scan = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    scan.add_argument("--disable-plugin", action="append", default=[])
    names: list[str] = []
    for args in (env_args(env), list(argv)):
        known, _ = scan.parse_known_args(args)
        names.extend(known.disable_plugin)
    return names
