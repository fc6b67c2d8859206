"""Build the final :class:`~gunicorn.config.Config` from every source, in precedence order.

Lowest to highest::

    defaults (some taken from the environment: $PORT, $WEB_CONCURRENCY, ...)
      < settings provided by the application
      < the config file (-c FILE, -c python:MODULE, or ./gunicorn.conf.py when it exists)
      < $GUNICORN_CMD_ARGS
      < the command line

:func:`load_config` is a pure rebuild from the same inputs, so the arbiter calls it again on HUP to
pick up an edited config file.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn.config.config import Config
from gunicorn.config.parser import build_parser, env_args, parse_args, prescan_disabled_plugins
from gunicorn.config.plugin_settings import missing_plugin
from gunicorn.config.registry import Registry
from gunicorn.config.suggest import likely_setting
from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

DEFAULT_CONFIG_FILE = "./gunicorn.conf.py"
PYTHON_PREFIX = "python:"


def load_config(argv: Sequence[str], env: Mapping[str, str], registry: Registry, *,
                app_settings: Mapping[str, Any] | None = None,
                cwd: str | None = None) -> Config:
    """Return the configuration given by ``argv`` (without the program name) and ``env``.

    ``app_settings`` are defaults the application supplies (below the config file). ``cwd`` is
    where a relative config path and ``./gunicorn.conf.py`` are looked up (the current directory
    by default); it is also put on ``sys.path`` so ``python:MODULE`` configs and dotted hook
    paths import from it.

    Raises :class:`ConfigError` for a bad value or a config file that cannot be loaded; a usage
    error (unknown option) exits with status 2 through argparse.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    parser = build_parser(registry)
    disabled = prescan_disabled_plugins(argv, env)
    from_env = parse_args(parser, env_args(env), disabled)
    from_cli = parse_args(parser, argv, disabled)

    cfg = Config(registry, env)
    for name, value in (app_settings or {}).items():
        if name in registry:
            cfg.set(name, value)

    path = from_cli.get("config") or from_env.get("config")
    explicit = path is not None
    if path is None and os.path.isfile(os.path.join(cwd, DEFAULT_CONFIG_FILE)):
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        apply_config_source(cfg, path, cwd, explicit=explicit, disabled_plugins=disabled)
        cfg.set("config", path)

    for layer in (from_env, from_cli):
        for name, value in layer.items():
            cfg.set(name, value)
    apply_paste(cfg, cwd)
    note_settings_without_effect(cfg)
    return cfg


def apply_paste(cfg: CoreSettings, cwd: str) -> None:
    """``--paste``: check the ini file and PasteDeploy now (exit 2 before anything forks), and
    take the defaults gunicorn takes from the file (process name, its logging config)."""
    if not cfg.paste:
        return
    from gunicorn.app.paste import (
        LOGGING_SETTINGS,
        MISSING,
        has_logging_config,
        paste_installed,
        split_uri,
    )

    path = os.path.join(cwd, split_uri(cfg.paste)[0])
    if not os.path.isfile(path):
        raise ConfigError("paste", f"{split_uri(cfg.paste)[0]!r} does not exist")
    if not paste_installed():
        raise ConfigError("paste", MISSING)
    if not cfg.is_set("default_proc_name"):
        cfg.set("default_proc_name", split_uri(cfg.paste)[0])
    if has_logging_config(path) and not any(cfg.is_set(name) for name in LOGGING_SETTINGS):
        cfg.set("logconfig", path)


# Values accepted for compatibility that change nothing here: (setting, value) -> why.
WITHOUT_EFFECT = {
    ("http_parser", "fast"): "gunicorn-core has one HTTP/1.1 parser (strict, pure Python); "
                             "it is always used",
}


def note_settings_without_effect(cfg: CoreSettings) -> None:
    for (name, value), why in WITHOUT_EFFECT.items():
        if name in cfg.registry and cfg.get(name) == value:
            cfg.notice(f"{name} = {value!r}: {why}", logging.INFO)


def apply_config_source(cfg: CoreSettings, source: str, cwd: str, *, explicit: bool = True,
                        disabled_plugins: Sequence[str] = ()) -> None:
    """Apply a config file path or a ``python:MODULE`` spec to ``cfg``."""
    if source.startswith(PYTHON_PREFIX):
        namespace = _import_config_module(source[len(PYTHON_PREFIX):])
    else:
        path = os.path.join(cwd, source)
        if not os.path.isfile(path):
            if not explicit:
                return
            raise ConfigError("config", f"config file {source!r} does not exist")
        namespace = _exec_config_file(path, source)
    apply_namespace(cfg, namespace, source, disabled_plugins)


def apply_namespace(cfg: CoreSettings, namespace: Mapping[str, Any], source: str,
                    disabled_plugins: Sequence[str] = ()) -> None:
    """Set every name of ``namespace`` that is a setting.

    Other names are the file's business, except a plugin's setting while that plugin is not
    loaded (ConfigError naming what to install) and a name that is probably a typo of a
    setting (a warning notice; see :mod:`gunicorn.config.suggest` for the rule).
    """
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if name not in cfg.registry:
            _unknown_name(cfg, name, value, source, disabled_plugins)
            continue
        try:
            cfg.set(name, value)
        except ConfigError as exc:
            raise ConfigError(name, f"{exc.message} (in {source})") from exc


def _unknown_name(cfg: CoreSettings, name: str, value: Any, source: str,
                  disabled_plugins: Sequence[str]) -> None:
    why = missing_plugin(name, disabled_plugins)
    if why is not None:
        raise ConfigError(name, f"{why} (in {source})")
    meant = likely_setting(name, value, cfg.registry)
    if meant is not None:
        cfg.notice(f"{source}: {name!r} is not a setting; did you mean {meant!r}? "
                   "(it is ignored)")


def _exec_config_file(path: str, shown: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__file__": path, "__name__": "__config__"}
    try:
        with open(path, "rb") as fh:
            code = compile(fh.read(), path, "exec")
        exec(code, namespace)  # the config file is Python by design
    except SyntaxError as exc:
        raise ConfigError(None, f"{shown}: syntax error at line {exc.lineno}: {exc.msg}") from exc
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- user code may raise anything;
        # report it on one line naming the file, the CLI exits 2 before anything forks.
        raise ConfigError(None, f"{shown}: {type(exc).__name__}: {exc}") from exc
    return namespace


def _import_config_module(module_name: str) -> dict[str, Any]:
    try:
        if module_name in sys.modules:
            # Re-read on HUP: a reload must see the edited module, not the cached one.
            module = importlib.reload(sys.modules[module_name])
        else:
            module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- as in _exec_config_file
        raise ConfigError(
            None, f"python:{module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    return dict(vars(module))
