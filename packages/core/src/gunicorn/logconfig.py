"""Logging configuration checked before it is applied: the dictConfig defaults, the merge of a
user's ``logconfig_dict``, dry runs of dict and ini configs, and syslog addresses.

:class:`gunicorn.glogging.Logger` builds every handler before it swaps any (``setup()`` is
atomic); this module is the "is this config buildable" half of that, with no logger state.
"""

from __future__ import annotations

import configparser
import logging
import logging.config
import socket
from collections.abc import Mapping
from typing import Any

ERROR_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"


def default_logconfig(log_format: str = "text") -> dict[str, Any]:
    """A fresh copy of the dictConfig that ``logconfig_dict``/``logconfig_json`` extend
    (see :func:`merge_logconfig`). With ``log_format`` ``"json"`` its ``generic`` formatter
    writes JSON lines (:class:`~gunicorn.instrument.jsonlog.JsonFormatter`)."""
    generic: dict[str, Any] = {"format": ERROR_FORMAT, "datefmt": DATE_FORMAT,
                               "class": "logging.Formatter"}
    if log_format == "json":
        generic = {"()": "gunicorn.instrument.jsonlog.JsonFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            # propagate is off (gunicorn has it on): with the root's console handler every
            # line would otherwise be printed twice.
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"],
                               "propagate": False, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"],
                                "propagate": False, "qualname": "gunicorn.access"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "generic",
                        "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                              "stream": "ext://sys.stderr"},
        },
        "formatters": {"generic": generic},
    }


def merge_logconfig(user: Mapping[str, Any], log_format: str = "text") -> dict[str, Any]:
    """The defaults (:func:`default_logconfig` for ``log_format``) updated with ``user``'s keys.

    ``loggers`` and ``root`` are replaced as a whole, as in gunicorn (a user's ``loggers`` that
    leaves out ``gunicorn.error`` keeps the ``errorlog`` handler). The name-keyed definitions
    (``formatters``, ``filters``, ``handlers``) are merged by name instead: defining one's own
    handlers must not remove the ``console`` handler the default ``root`` refers to.
    """
    merged = default_logconfig(log_format)
    for key, value in _copy_tree(dict(user)).items():
        if key in ("formatters", "filters", "handlers") and isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    return merged


def parse_syslog_address(addr: str) -> tuple[int | None, str | tuple[str, int]]:
    """Split ``syslog_addr`` into (socket type, address) for SysLogHandler.

    Forms: ``unix://PATH`` (``#dgram`` or ``#stream`` forces the type; without it the handler
    tries both), ``udp://HOST[:PORT]``, ``tcp://HOST[:PORT]``; IPv6 hosts in brackets; the port
    defaults to 514. Raises ValueError on anything else.
    """
    if addr.startswith("unix://"):
        path, _, kind = addr[len("unix://"):].partition("#")
        kinds = {"": None, "dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}
        if kind not in kinds or not path:
            raise ValueError(f"invalid syslog address {addr!r}")
        return kinds[kind], path
    scheme, sep, rest = addr.partition("://")
    socktypes = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}
    if not sep or scheme not in socktypes:
        raise ValueError(f"invalid syslog address {addr!r} (use unix://, udp:// or tcp://)")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"{port!r} is not a valid port number")
    return socktypes[scheme], (host.lower() or "localhost", int(port) if port else 514)


# What a broken logconfig raises while being built: bad values, unknown classes or modules,
# missing sections, unopenable files.
CONFIG_ERRORS: tuple[type[Exception], ...] = (
    ValueError, TypeError, AttributeError, ImportError, KeyError, OSError, configparser.Error,
)


def _copy_tree(value: Any) -> Any:
    """Copy the dicts and lists of a dictConfig, keeping leaf objects (streams, factories).

    dictConfig pops keys from the dicts it is given, and cfg.logconfig_dict is applied again on
    every HUP, so it always gets a copy; deepcopy would choke on stream objects.
    """
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


def _check_level(level: Any) -> None:
    if isinstance(level, int):
        return
    if not isinstance(level, str) or not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"unknown level {level!r}")


def dry_run_dictconfig(config: dict[str, Any]) -> None:
    """Build the formatters, filters and handlers of ``config`` and check its loggers, without
    touching the logging tree; raise ValueError (or ImportError, TypeError...) when it is broken.

    ``logging.config.dictConfig`` closes every live handler *before* it builds the new ones, so
    a config that fails halfway would leave the server without a log; this check runs first.
    """
    config = _copy_tree(config)
    if config.get("version") != 1:
        raise ValueError("the dictionary must have 'version': 1")
    if config.get("incremental"):
        return  # incremental configs only adjust levels of existing objects
    built: list[logging.Handler] = []
    configurator = logging.config.DictConfigurator(config)
    cfg = configurator.config
    try:
        for section, build in (("formatters", configurator.configure_formatter),
                               ("filters", configurator.configure_filter)):
            items = cfg.get(section, {})
            for name in list(items):
                items[name] = build(items[name])
        handlers = cfg.get("handlers", {})
        raw = {name: _copy_tree(dict(spec)) for name, spec in handlers.items()}
        pending = sorted(handlers)
        # Handlers may target other handlers (MemoryHandler): retry until no progress.
        while pending:
            failed: list[tuple[str, Exception]] = []
            for name in pending:
                # configure_handler pops keys from its argument: every attempt gets a fresh copy.
                handlers[name] = _copy_tree(raw[name])
                try:
                    handler = configurator.configure_handler(handlers[name])
                except CONFIG_ERRORS as exc:
                    failed.append((name, exc))
                    continue
                built.append(handler)
                handlers[name] = handler
            if len(failed) == len(pending):
                first, cause = failed[0]
                raise ValueError(f"unable to configure handler {first!r}: {cause}") from cause
            pending = [name for name, _ in failed]
        loggers = dict(cfg.get("loggers", {}))
        if cfg.get("root"):
            loggers["root"] = cfg["root"]
        for name, spec in loggers.items():
            if "level" in spec:
                _check_level(spec["level"])
            for ref in spec.get("handlers", ()):
                if ref not in handlers:
                    raise ValueError(f"logger {name!r} uses unknown handler {ref!r}")
            for ref in spec.get("filters", ()):
                if isinstance(ref, str) and ref not in cfg.get("filters", {}):
                    raise ValueError(f"logger {name!r} uses unknown filter {ref!r}")
    finally:
        for handler in built:
            handler.close()


def dry_run_fileconfig(path: str, defaults: dict[str, str]) -> None:
    """Check an ini logconfig: parse it and build its formatters and handlers, then drop them.

    Uses the two helpers fileConfig itself is made of (stable since Python 2, but private): the
    alternative is re-implementing fileConfig's eval-based handler construction.
    """
    parser = configparser.ConfigParser(defaults)
    with open(path, encoding="utf-8") as f:
        parser.read_file(f)
    formatters = logging.config._create_formatters(parser)  # type: ignore[attr-defined]
    handlers = logging.config._install_handlers(parser, formatters)  # type: ignore[attr-defined]
    for handler in handlers.values():
        handler.close()
    for name in parser["loggers"]["keys"].split(","):
        name = name.strip()
        section = parser[f"logger_{name}"]
        if "level" in section:
            _check_level(section["level"])
        for ref in filter(None, (h.strip() for h in section.get("handlers", "").split(","))):
            if ref not in handlers:
                raise ValueError(f"logger {name!r} uses unknown handler {ref!r}")
