"""Serve with ONE worker in this very process, no arbiter: ``python wsgi_run.py [gunicorn args]``.

A test launcher for the request-serving tests while the arbiter is being written: it parses the
same command line as ``gunicorn``, binds the listeners and runs ``worker.init_process()`` here, so
TERM/QUIT sent to this process reach the worker directly.
"""

from __future__ import annotations

import os
import sys

from gunicorn.app.loader import AppSource
from gunicorn.cli import build_registry
from gunicorn.config.loader import load_config
from gunicorn.plugins import PluginManager
from gunicorn.sockets import create_listeners


def main() -> None:
    args = sys.argv[1:]
    registry = build_registry(PluginManager())
    cfg = load_config(args, dict(os.environ), registry, cwd=os.getcwd())
    log = cfg.logger_class(cfg)
    listeners = create_listeners(cfg, log)
    app = AppSource(cfg.wsgi_app, cfg.chdir, cfg.pythonpath)
    timeout = cfg.timeout / 2 if cfg.timeout > 0 else 0
    worker = cfg.worker_class(1, os.getppid(), listeners, app, timeout, cfg, log)
    log.info("Booting worker with pid: %s", os.getpid())
    worker.init_process()


if __name__ == "__main__":
    main()
