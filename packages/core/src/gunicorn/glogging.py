"""The error log and the access log.

:class:`Logger` is what the arbiter and the workers call ``log`` (``cfg.logger_class`` may name a
subclass, such as :class:`gunicorn.instrument.statsd.Statsd`). It drives two stdlib loggers with
gunicorn's names, ``gunicorn.error`` and ``gunicorn.access``, so that a user's ``logconfig`` /
``logconfig_dict`` / ``logconfig_json`` written for gunicorn keeps working.

The access line is built by ``access_log_format % atoms`` where ``atoms`` is an
:class:`AccessAtoms` mapping that computes only the atoms the format names: this runs once per
request, and most formats use a handful of the twenty-odd atoms.

``setup(cfg)`` is atomic: every new handler is built (files opened, syslog sockets created, a
logconfig dry-run) before any current handler is touched, so a bad config on HUP raises
:class:`~gunicorn.errors.ConfigError` and leaves the running log untouched.
"""

from __future__ import annotations

import base64
import configparser
import binascii
import datetime
import fcntl
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any

from gunicorn.errors import ConfigError

LOG_LEVELS: Mapping[str, int] = MappingProxyType({
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
})

ERROR_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"
ACCESS_FORMAT = "%(message)s"
SYSLOG_FORMAT = "[%(process)d] %(message)s"
# Handlers this class installs carry a name with this prefix, so setup() can find and replace
# them (and never duplicates a syslog handler) without touching handlers a logconfig added.
OWN_HANDLER_PREFIX = "gunicorn-core:"


def default_logconfig() -> dict[str, Any]:
    """A fresh copy of the dictConfig that ``logconfig_dict``/``logconfig_json`` are merged into.

    The merge is shallow (a user's ``"loggers"`` key replaces the default ``"loggers"``), as in
    gunicorn, whose documentation tells users to start from these defaults.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"],
                               "propagate": True, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"],
                                "propagate": True, "qualname": "gunicorn.access"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "generic",
                        "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                              "stream": "ext://sys.stderr"},
        },
        "formatters": {
            "generic": {"format": ERROR_FORMAT, "datefmt": DATE_FORMAT,
                        "class": "logging.Formatter"},
        },
    }


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


def _timedelta(request_time: datetime.timedelta | float) -> datetime.timedelta:
    if isinstance(request_time, datetime.timedelta):
        return request_time
    return datetime.timedelta(seconds=request_time)


def _header(headers: Any, name: str) -> Any:
    """Case-insensitive lookup in a list of pairs or a mapping; the last duplicate wins."""
    pairs = headers.items() if hasattr(headers, "items") else headers
    found = None
    for key, value in pairs or ():
        if key.lower() == name:
            found = value
    return found


class AccessAtoms(Mapping[str, Any]):
    """The access-log atoms of one request, computed on first use and cached.

    ``fmt % atoms`` looks up only the keys ``fmt`` names. Missing values render as ``-``;
    ``{name}i``/``{name}o``/``{var}e`` keys are case-insensitive; double quotes in string values
    are escaped so a quoted atom cannot break the line's fields.
    """

    __slots__ = ("_resp", "_req", "_environ", "_duration", "_cache")

    def __init__(self, resp: Any, req: Any, environ: Mapping[str, Any],
                 request_time: datetime.timedelta | float) -> None:
        self._resp = resp
        self._req = req
        self._environ = environ if environ is not None else {}
        self._duration = _timedelta(request_time)
        self._cache: dict[str, Any] = {}

    # -- Mapping ------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = self._compute(key)
        if value is None:
            value = "-"
        elif isinstance(value, str):
            value = value.replace('"', '\\"')
        self._cache[key] = value
        return value

    def __bool__(self) -> bool:
        # LogRecord tests the mapping's truth; without this Mapping would call __len__, which
        # computes every atom.
        return True

    def __iter__(self) -> Iterator[str]:
        # Only for formatters that walk record.args (JSON access logs): the hot path never iterates.
        yield from _SIMPLE_ATOMS
        req_headers = getattr(self._req, "headers", None) or ()
        for name, _ in req_headers.items() if hasattr(req_headers, "items") else req_headers:
            yield "{%s}i" % name.lower()
        resp_headers = getattr(self._resp, "headers", None) or ()
        for name, _ in resp_headers.items() if hasattr(resp_headers, "items") else resp_headers:
            yield "{%s}o" % name.lower()
        for name in self._environ:
            yield "{%s}e" % name.lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- atoms --------------------------------------------------------------------------------

    def _compute(self, key: str) -> Any:
        if key.startswith("{"):
            lowered = key.lower()
            if len(lowered) < 4 or lowered[-2] != "}":
                return None
            name, kind = lowered[1:-2], lowered[-1]
            if kind == "i":
                return _header(getattr(self._req, "headers", self._req), name)
            if kind == "o":
                return _header(getattr(self._resp, "headers", None), name)
            if kind == "e":
                return _header(self._environ, name)
            return None
        getter = _SIMPLE_ATOMS.get(key)
        return getter(self) if getter is not None else None

    def _env(self, key: str, fallback: Any = None) -> Any:
        value = self._environ.get(key)
        return fallback if value is None else value

    def _protocol(self) -> str | None:
        version = getattr(self._req, "version", None)
        fallback = "HTTP/%d.%d" % tuple(version) if version else None
        return self._env("SERVER_PROTOCOL", fallback)

    def _method(self) -> str | None:
        return self._env("REQUEST_METHOD", getattr(self._req, "method", None))

    def _status(self) -> str | None:
        code = getattr(self._resp, "status_code", None)
        if code is not None:
            return str(code)
        status = getattr(self._resp, "status", None)
        if isinstance(status, bytes):
            status = status.decode("latin-1")
        return str(status).split(None, 1)[0] if status else None

    def _request_line(self) -> str:
        uri = self._env("RAW_URI", getattr(self._req, "uri", None))
        return f"{self._method()} {uri} {self._protocol()}"

    def _user(self) -> str | None:
        auth = self._env("HTTP_AUTHORIZATION") or _header(getattr(self._req, "headers", ()),
                                                          "authorization")
        if not auth or not auth[:6].lower() == "basic ":
            return None
        try:
            decoded = base64.b64decode(auth[6:].strip().encode("ascii"), validate=True)
            return decoded.split(b":", 1)[0].decode("utf-8")
        except (ValueError, binascii.Error, UnicodeError):
            return None

    def _sent(self) -> int | None:
        return getattr(self._resp, "sent", None)

    def _seconds(self) -> int:
        d = self._duration
        return d.days * 86400 + d.seconds

    def _micros(self) -> int:
        return self._seconds() * 1_000_000 + self._duration.microseconds


_SIMPLE_ATOMS: Mapping[str, Any] = MappingProxyType({
    "h": lambda a: a._env("REMOTE_ADDR"),
    "l": lambda a: "-",
    "u": AccessAtoms._user,
    "t": lambda a: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
    "r": AccessAtoms._request_line,
    "s": AccessAtoms._status,
    "m": AccessAtoms._method,
    "U": lambda a: a._env("PATH_INFO", getattr(a._req, "path", None)),
    "q": lambda a: a._env("QUERY_STRING", getattr(a._req, "query", None)),
    "H": AccessAtoms._protocol,
    "b": lambda a: "-" if a._sent() is None else str(a._sent()),
    "B": AccessAtoms._sent,
    "f": lambda a: a._env("HTTP_REFERER"),
    "a": lambda a: a._env("HTTP_USER_AGENT"),
    "T": AccessAtoms._seconds,
    "D": AccessAtoms._micros,
    "M": lambda a: a._micros() // 1000,
    "L": lambda a: "%d.%06d" % (a._seconds(), a._duration.microseconds),
    "p": lambda a: f"<{os.getpid()}>",
})


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
        pending = sorted(handlers)
        # Handlers may target other handlers (MemoryHandler): retry until no progress.
        while pending:
            failed: list[tuple[str, Exception]] = []
            for name in pending:
                try:
                    handler = configurator.configure_handler(handlers[name])
                except CONFIG_ERRORS as exc:
                    failed.append((name, exc))
                    continue
                built.append(handler)
                handlers[name] = handler
            if len(failed) == len(pending):
                name, exc = failed[0]
                raise ValueError(f"unable to configure handler {name!r}: {exc}") from exc
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


def all_loggers() -> list[logging.Logger]:
    """The root logger and every logger created so far."""
    found = [logging.getLogger()]
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        found.append(logger)
    return found


def set_cloexec(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
