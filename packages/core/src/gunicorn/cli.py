"""The ``gunicorn`` command: plugins -> registry -> configuration -> arbiter.

Exit statuses decided here, before anything forks:

* 0 -- ``--version``, ``--help``, ``--print-config``, a successful ``--check-config``;
* 1 -- ``--check-config`` could not load the application;
* 2 -- a usage error, a bad setting, a broken config file or plugin
  (one line: ``Error: <setting>: <message>``).

Everything after that belongs to the arbiter.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from gunicorn.app.loader import AppSource
from gunicorn.config.config import Config
from gunicorn.config.loader import load_config
from gunicorn.config.parser import build_parser, prescan_disabled_plugins
from gunicorn.config.registry import Registry
from gunicorn.config.settings import core_registry
from gunicorn.control.binding import check_control_socket
from gunicorn.errors import AppImportError, ConfigError, PluginError
from gunicorn.plugins import PluginManager
from gunicorn.protocols import check_config as check_protocols
from gunicorn.sockets import check_bind_paths


def _fail(message: str, status: int = 2) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(status)


def build_registry(plugins: PluginManager) -> Registry:
    """The core settings plus those the plugins add."""
    registry = core_registry()
    plugins.add_settings(registry)
    return registry


def print_config(cfg: Config) -> None:
    for name, value in cfg.items():
        print(f"{name} = {cfg.registry.get(name).shown(value)!r}")


def check_config(cfg: Config) -> int:
    """Import the application as a worker would; 0 when it loads, 1 otherwise."""
    source = AppSource(cfg.wsgi_app, cfg.chdir, cfg.pythonpath)
    try:
        source.load()
    except AppImportError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except (Exception, SystemExit):  # noqa: BLE001 -- the user's module may raise anything;
        # show where, since the traceback is the useful part here.
        traceback.print_exc()
        return 1
    return 0


def configure(cfg: Config, plugins: PluginManager) -> None:
    """Let plugins validate the final config, then check the asked-for protocols exist and
    that the Unix sockets to create can be created."""
    plugins.configure(cfg)
    check_protocols(cfg, plugins)
    check_bind_paths(cfg)
    check_control_socket(cfg)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """Run the ``gunicorn`` command with ``argv`` (default: ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # A snapshot: the arbiter later applies raw_env to os.environ, which must not feed back
    # into the environment-derived defaults when the configuration is reloaded on HUP.
    environ = dict(os.environ if env is None else env)
    cwd = os.getcwd()
    try:
        plugins = PluginManager.from_entry_points(prescan_disabled_plugins(args, environ))
        registry = build_registry(plugins)
        cfg = load_config(args, environ, registry, cwd=cwd)
        configure(cfg, plugins)
    except (ConfigError, PluginError) as exc:
        _fail(str(exc))

    if cfg.print_config:
        print_config(cfg)
        raise SystemExit(0)
    if not cfg.wsgi_app:
        build_parser(registry).error("no application module specified (APP_MODULE)")
    if cfg.check_config:
        raise SystemExit(check_config(cfg))

    try:
        # Resolved now so a typo in -k or --logger-class is exit 2, not a crash loop of workers.
        cfg.worker_class  # noqa: B018
        log: Any = cfg.logger_class(cfg)
    except ConfigError as exc:
        _fail(str(exc))

    def reload_config() -> Config:
        fresh = load_config(args, environ, registry, cwd=cwd)
        configure(fresh, plugins)
        return fresh

    from gunicorn.arbiter.arbiter import Arbiter  # the arbiter is only needed to actually serve

    app = AppSource(cfg.wsgi_app, cfg.chdir, cfg.pythonpath)
    Arbiter(cfg, app, plugins, log, reload_config=reload_config).run()
