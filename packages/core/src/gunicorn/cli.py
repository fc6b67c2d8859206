"""The ``gunicorn`` command: plugins -> registry -> configuration -> arbiter.

Exit statuses decided here, before anything forks:

* 0 -- ``--version``, ``--help``, ``--print-config``, a successful ``--check-config``;
* 1 -- ``--check-config`` could not load the application;
* 2 -- a usage error, a bad setting, a broken config file or plugin
  (one line: ``Error: <setting>: <message>``).

Everything after that belongs to the arbiter.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from gunicorn import util
from gunicorn.app.interface import mismatch
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
from gunicorn.workers import served_interface

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings


def _fail(message: str, status: int = 2) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(status)


def build_registry(plugins: PluginManager) -> Registry:
    """The core settings plus those the plugins add."""
    registry = core_registry()
    plugins.add_settings(registry)
    return registry


def print_config(cfg: CoreSettings) -> None:
    for name, value in cfg.items():
        print(f"{name} = {cfg.registry.get(name).shown(value)!r}")


def check_config(cfg: CoreSettings) -> int:
    """Import the application as a worker would; 0 when it loads, 1 otherwise.

    Also says when the worker chosen cannot serve it (an ASGI app under a WSGI worker)."""
    source = app_source(cfg)
    try:
        app = source.load()
    except AppImportError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except (Exception, SystemExit):  # noqa: BLE001 -- the user's module may raise anything;
        # show where, since the traceback is the useful part here.
        traceback.print_exc()
        return 1
    served = served_interface(cfg.worker_class)
    wrong = mismatch(app, served, cfg.worker_class_str) if served else None
    if wrong is not None:
        sys.stderr.write(f"Error: {wrong}\n")
        return 1
    return 0


def app_source(cfg: CoreSettings) -> AppSource:
    """Where workers load the application from: ``APP_MODULE`` or a ``--paste`` ini file."""
    # Absolute now: the arbiter changes to --chdir before workers load it.
    paste = os.path.abspath(cfg.paste) if cfg.paste else None
    return AppSource(cfg.wsgi_app, cfg.chdir, cfg.pythonpath, paste=paste,
                     paste_global=cfg.raw_paste_global_conf)


def show_notices(cfg: CoreSettings, log: Any = None) -> None:
    """Log the configuration's notices (likely typos, settings without effect); without a
    logger, print them to stderr (``--check-config``)."""
    for notice in cfg.notices:
        if log is not None:
            log.log(notice.level, notice.message)
        else:
            sys.stderr.write(f"{logging.getLevelName(notice.level).capitalize()}: "
                             f"{notice.message}\n")


def configure(cfg: CoreSettings, plugins: PluginManager) -> None:
    """Let plugins validate the final config, then check the asked-for protocols exist and
    that the Unix sockets to create can be created."""
    plugins.configure(cfg)
    check_protocols(cfg, plugins)
    check_bind_paths(cfg)
    check_control_socket(cfg)
    problem = util.check_owner_change(cfg.uid, cfg.gid)
    if problem is not None:
        raise ConfigError("user" if cfg.uid is not None and cfg.uid != os.geteuid()
                          else "group", problem)


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
    if not cfg.wsgi_app and not cfg.paste:
        build_parser(registry).error("no application module specified (APP_MODULE)")

    try:
        # Resolved now so a typo in -k or --logger-class is exit 2, not a crash loop of workers.
        cfg.worker_class  # noqa: B018
        if cfg.check_config:
            show_notices(cfg)
            raise SystemExit(check_config(cfg))
        log: Any = cfg.logger_class(cfg)
    except ConfigError as exc:
        _fail(str(exc))
    show_notices(cfg, log)

    def reload_config() -> Config:
        fresh = load_config(args, environ, registry, cwd=cwd)
        configure(fresh, plugins)
        show_notices(fresh, log)
        return fresh

    from gunicorn.arbiter.arbiter import Arbiter  # the arbiter is only needed to actually serve

    Arbiter(cfg, app_source(cfg), plugins, log, reload_config=reload_config).run()
