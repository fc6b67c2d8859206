"""Applications from a PasteDeploy ini file: ``gunicorn --paste production.ini[#name]``.

PasteDeploy (``paste.deploy``) is the optional extra ``gunicorn-core[paste]``; without it
``--paste`` stops the command with exit 2 naming the extra, before anything forks. As in
gunicorn:

* the application is ``loadapp("config:<ini>", name=<name>, relative_to=<cwd>,
  global_conf=<--paste-global KEY=VALUE pairs>)``; ``#name`` picks an ``[app:name]`` (or
  ``[composite:...]``, ``[pipeline:...]``) section, ``main`` by default;
* when the ini file has a ``[loggers]`` section, logging is configured from it
  (``logging.config.fileConfig``, with ``%(here)s`` and ``%(__file__)s`` defined), unless
  ``--log-config`` or a ``logconfig_dict``/``logconfig_json`` says otherwise;
* the process name defaults to the ini file's path.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
from collections.abc import Iterable
from typing import Any

from gunicorn.errors import AppImportError

PASTE_EXTRA = "gunicorn-core[paste]"
MISSING = f"--paste needs PasteDeploy: pip install '{PASTE_EXTRA}'"
# Logging settings that take precedence over the ini file's [loggers].
LOGGING_SETTINGS = ("logconfig", "logconfig_dict", "logconfig_json")


def split_uri(uri: str) -> tuple[str, str | None]:
    """``"app.ini#api"`` -> ``("app.ini", "api")``; no ``#`` -> ``(path, None)``."""
    path, sep, name = uri.partition("#")
    return path, (name or None) if sep else None


def paste_installed() -> bool:
    try:
        return importlib.util.find_spec("paste.deploy") is not None
    except ModuleNotFoundError:  # the parent package "paste" is missing
        return False


def has_logging_config(path: str) -> bool:
    """True when the ini file configures logging (gunicorn's test: a ``[loggers]`` section)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error:
        return False  # PasteDeploy will report the broken file when it loads the app
    return parser.has_section("loggers")


def global_conf(pairs: Iterable[str]) -> dict[str, str]:
    """``--paste-global`` ``KEY=VALUE`` entries as a dict (later entries win)."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        result[key.strip()] = value
    return result


def load_paste_app(uri: str, pairs: Iterable[str] = (), relative_to: str | None = None) -> Any:
    """The WSGI application the ini file ``uri`` (``path[#name]``) describes.

    Raises AppImportError when PasteDeploy is missing or the file does not describe an
    application (no such section, no ``use =``); errors of the application's own factory
    propagate with their traceback.
    """
    try:
        from paste.deploy import loadapp
    except ImportError as exc:
        raise AppImportError(MISSING) from exc
    path, name = split_uri(uri)
    try:
        return loadapp(f"config:{os.path.abspath(path)}", name=name,
                       relative_to=relative_to or os.getcwd(), global_conf=global_conf(pairs))
    except LookupError as exc:  # PasteDeploy's "no section", "no loader", "no entry point"
        raise AppImportError(f"{uri}: {exc}") from exc
    except FileNotFoundError as exc:
        raise AppImportError(f"{uri}: {exc}") from exc
