"""Launch an Arbiter directly (no CLI) for the arbiter tests.

    python arb_run.py [-b ADDR]... [--plugin MOD:ATTR]... [--json FILE] [NAME=VALUE]...

Settings come from ``NAME=VALUE`` pairs and from the JSON object in FILE (which is re-read on HUP,
so a test can change the configuration and send HUP). The worker class defaults to the fixed
response worker of arb_workers.py and the app to arb_apps:app.
"""

from __future__ import annotations

import importlib
import json
import sys

from gunicorn.app.loader import AppSource
from gunicorn.arbiter.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.plugins import LoadedPlugin, PluginManager


def parse(argv):
    binds, plugins, pairs, json_file = [], [], [], None
    it = iter(argv)
    for arg in it:
        if arg == "-b":
            binds.append(next(it))
        elif arg == "--plugin":
            plugins.append(next(it))
        elif arg == "--json":
            json_file = next(it)
        else:
            pairs.append(arg.split("=", 1))
    return binds, plugins, pairs, json_file


def load_plugins(specs):
    loaded = []
    for spec in specs:
        module, _, attr = spec.partition(":")
        obj = getattr(importlib.import_module(module), attr)
        loaded.append(LoadedPlugin(attr, obj() if isinstance(obj, type) else obj))
    return PluginManager(loaded)


def build_config(binds, pairs, json_file, plugins):
    from gunicorn.config.settings import core_registry

    registry = core_registry()
    plugins.add_settings(registry)
    cfg = Config(registry)
    cfg.set("worker_class", "arb_workers.FixedResponseWorker")
    cfg.set("wsgi_app", "arb_apps:app")
    if binds:
        cfg.set("bind", binds)
    for name, value in pairs:
        cfg.set(name, value)
    if json_file:
        with open(json_file) as fh:
            for name, value in json.load(fh).items():
                cfg.set(name, value)
    plugins.configure(cfg)
    return cfg


def main(argv):
    binds, plugin_specs, pairs, json_file = parse(argv)
    plugins = load_plugins(plugin_specs)
    cfg = build_config(binds, pairs, json_file, plugins)
    log = cfg.logger_class(cfg)
    app = AppSource(cfg.wsgi_app, cfg.chdir, cfg.pythonpath)
    Arbiter(cfg, app, plugins, log,
            reload_config=lambda: build_config(binds, pairs, json_file, plugins)).run()


if __name__ == "__main__":
    main(sys.argv[1:])
