"""The error log and the access log.

:class:`Logger` is what the arbiter and the workers call ``log`` (``cfg.logger_class`` may name a
subclass, such as :class:`gunicorn.instrument.statsd.Statsd`). It drives two stdlib loggers with
gunicorn's names, ``gunicorn.error`` and ``gunicorn.access``, so that a user's ``logconfig`` /
``logconfig_dict`` / ``logconfig_json`` written for gunicorn keeps working.

The access line is built by ``access_log_format % atoms`` where ``atoms`` is a lazy
:class:`~gunicorn.instrument.access.AccessAtoms` mapping (the atom table is drawn there).

``setup(cfg)`` is atomic: every new handler is built (files opened, syslog sockets created, a
logconfig dry-run) before any current handler is touched, so a bad config on HUP raises
:class:`~gunicorn.errors.ConfigError` and leaves the running log untouched.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import logging.config
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from gunicorn.errors import ConfigError
from gunicorn.instrument.access import AccessAtoms, DefaultingAtoms
from gunicorn.instrument.jsonlog import JsonFormatter
from gunicorn.logconfig import (  # ERROR_FORMAT, DATE_FORMAT still importable from here
    CONFIG_ERRORS,
    DATE_FORMAT,
    ERROR_FORMAT,
    dry_run_dictconfig,
    dry_run_fileconfig,
    merge_logconfig,
    parse_syslog_address,
)

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings
    from gunicorn.instrument.metrics import RequestMetrics

LOG_LEVELS: Mapping[str, int] = MappingProxyType({
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
})

ACCESS_FORMAT = "%(message)s"
SYSLOG_FORMAT = "[%(process)d] %(message)s"
# Handlers this class installs carry a name with this prefix, so setup() can find and replace
# them (and never duplicates a syslog handler) without touching handlers a logconfig added.
OWN_HANDLER_PREFIX = "gunicorn-core:"



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


class _Plan:
    """The handlers and files a setup() will install, built before anything is swapped."""

    __slots__ = ("error_handlers", "access_handlers", "capture_file", "logconfig")

    def __init__(self) -> None:
        self.error_handlers: list[logging.Handler] = []
        self.access_handlers: list[logging.Handler] = []
        self.capture_file: IO[str] | None = None
        self.logconfig: tuple[str, Any] | None = None  # ("dict", config) or ("ini", path)

    def discard(self) -> None:
        for handler in self.error_handlers + self.access_handlers:
            handler.close()
        if self.capture_file is not None:
            self.capture_file.close()


class Logger:
    """gunicorn's logger interface: the error log, the access log, USR1 reopening.

    Args:
        cfg: the :class:`~gunicorn.config.Config`; the Logging settings are read from it.

    Raises:
        ConfigError: from the constructor and :meth:`setup` when a log file cannot be opened, the
            syslog address or facility is wrong, or a logconfig is broken.
    """

    error_fmt = ERROR_FORMAT
    datefmt = DATE_FORMAT
    access_fmt = ACCESS_FORMAT
    syslog_fmt = SYSLOG_FORMAT

    def __init__(self, cfg: CoreSettings) -> None:
        self.error_log = logging.getLogger("gunicorn.error")
        self.access_log = logging.getLogger("gunicorn.access")
        self.logfile: IO[str] | None = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self.access_log_enabled = False
        # Set by attach_metrics() when --metrics-bind is on: access() feeds it every request.
        self.request_metrics: RequestMetrics | None = None
        self._logconfig_applied = False
        self.setup(cfg)

    # -- configuration ------------------------------------------------------------------------

    def setup(self, cfg: CoreSettings) -> None:
        """(Re)apply the logging settings of ``cfg``; on error raise and change nothing."""
        level = self._level(cfg.loglevel)
        plan = self._build(cfg)
        with self.lock:
            # After a logconfig, the handlers on our loggers are the logconfig's: drop them too,
            # or a HUP that removes the logconfig would keep logging through them.
            everything = self._logconfig_applied
            for log, handlers in ((self.error_log, plan.error_handlers),
                                  (self.access_log, plan.access_handlers)):
                self._swap(log, handlers, everything)
                log.propagate = False
                log.disabled = False
            self.error_log.setLevel(level)
            self.access_log.setLevel(logging.INFO)
            if plan.capture_file is not None or self.logfile is not None:
                self._capture(plan.capture_file)
        self.cfg = cfg
        if self.request_metrics is not None:  # a HUP may change the worker class label
            self.request_metrics.configure(cfg.worker_class_str)
        self.access_log_enabled = bool(
            cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )
        self._logconfig_applied = plan.logconfig is not None
        if plan.logconfig is not None:
            kind, value = plan.logconfig
            try:
                if kind == "dict":
                    logging.config.dictConfig(value)
                else:
                    logging.config.fileConfig(value[0], defaults=value[1],
                                              disable_existing_loggers=False)
            except CONFIG_ERRORS as exc:  # the dry run passed, so this is rare
                raise ConfigError("logconfig", f"cannot apply the logging config: {exc}") \
                    from exc

    @staticmethod
    def _level(name: Any) -> int:
        if isinstance(name, int):
            return name
        try:
            return LOG_LEVELS[str(name).lower()]
        except KeyError:
            raise ConfigError("loglevel", f"unknown log level {name!r}") from None

    def _build(self, cfg: CoreSettings) -> _Plan:
        plan = _Plan()
        try:
            plan.error_handlers.append(self._output_handler(
                "errorlog", cfg.errorlog, self._formatter(cfg, self.error_fmt, self.datefmt),
                sys.stderr, cfg))
            if cfg.accesslog is not None:
                plan.access_handlers.append(self._output_handler(
                    "accesslog", cfg.accesslog, self._formatter(cfg, self.access_fmt),
                    sys.stdout, cfg))
            if cfg.syslog:
                plan.error_handlers.append(self._syslog_handler(cfg, "error"))
                if not cfg.disable_redirect_access_to_syslog:
                    plan.access_handlers.append(self._syslog_handler(cfg, "access"))
            if cfg.capture_output and cfg.errorlog != "-":
                plan.capture_file = self._open("errorlog", cfg.errorlog)
            plan.logconfig = self._logconfig(cfg)
        except BaseException:
            plan.discard()
            raise
        return plan

    @staticmethod
    def _formatter(cfg: CoreSettings, fmt: str, datefmt: str | None = None,
                   prefix: str = "") -> logging.Formatter:
        """The formatter of one of our handlers: ``fmt`` for text, one JSON object per line
        for ``log_format = json``."""
        if cfg.log_format == "json":
            return JsonFormatter(prefix=prefix)
        return logging.Formatter(prefix + fmt, datefmt)

    @staticmethod
    def _open(setting: str, path: str) -> IO[str]:
        try:
            return open(path, "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise ConfigError(setting, f"cannot open {path!r}: {exc.strerror}") from exc

    def _output_handler(self, setting: str, output: str, fmt: logging.Formatter,
                        stream: IO[str], cfg: CoreSettings) -> logging.Handler:
        handler: logging.Handler
        if output == "-":
            handler = logging.StreamHandler(stream)
        else:
            try:
                handler = logging.FileHandler(output, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(setting, f"cannot open {output!r}: {exc.strerror}") from exc
            self._chown(output, cfg)
        handler.setFormatter(fmt)
        handler.set_name(f"{OWN_HANDLER_PREFIX}{setting}")
        return handler

    @staticmethod
    def _chown(path: str, cfg: CoreSettings) -> None:
        # Workers drop privileges after fork; they must still be able to reopen the file on USR1.
        uid, gid = cfg.uid, cfg.gid
        if os.geteuid() == 0:
            try:
                os.chown(path, uid, gid)
            except OSError:
                pass  # /dev/null and friends: nothing to hand over

    def _syslog_handler(self, cfg: CoreSettings, name: str) -> logging.Handler:
        prefix = cfg.syslog_prefix or cfg.proc_name or "gunicorn"
        prefix = prefix.replace(":", ".")
        facility_name = str(cfg.syslog_facility).lower()
        facility = logging.handlers.SysLogHandler.facility_names.get(facility_name)
        if facility is None:
            raise ConfigError("syslog_facility", f"unknown syslog facility {facility_name!r}")
        try:
            socktype, address = parse_syslog_address(cfg.syslog_addr)
        except ValueError as exc:
            raise ConfigError("syslog_addr", str(exc)) from exc
        try:
            handler = logging.handlers.SysLogHandler(address=address, facility=facility,
                                                     socktype=socktype)  # type: ignore[arg-type]
        except OSError as exc:
            raise ConfigError("syslog_addr", f"cannot reach {cfg.syslog_addr}: {exc}") from exc
        handler.setFormatter(self._formatter(cfg, self.syslog_fmt,
                                             prefix=f"gunicorn.{prefix}.{name}: "))
        handler.set_name(f"{OWN_HANDLER_PREFIX}syslog-{name}")
        return handler

    @staticmethod
    def _logconfig(cfg: CoreSettings) -> tuple[str, Any] | None:
        if cfg.logconfig_dict:
            setting, loaded = "logconfig_dict", cfg.logconfig_dict
        elif cfg.logconfig_json:
            setting = "logconfig_json"
            try:
                with open(cfg.logconfig_json, encoding="utf-8") as f:
                    loaded = json.load(f)
            except (OSError, ValueError) as exc:
                raise ConfigError(setting, f"cannot load {cfg.logconfig_json!r}: {exc}") from exc
        elif cfg.logconfig:
            path = cfg.logconfig
            if not os.path.exists(path):
                raise ConfigError("logconfig", f"log config {path!r} not found")
            defaults = {"__file__": path, "here": os.path.dirname(os.path.abspath(path))}
            try:
                dry_run_fileconfig(path, defaults)
            except CONFIG_ERRORS as exc:
                raise ConfigError("logconfig", f"broken log config {path!r}: {exc}") from exc
            return "ini", (path, defaults)
        else:
            return None
        if not isinstance(loaded, dict):
            raise ConfigError(setting, "must be a dictionary")
        merged = merge_logconfig(loaded, cfg.log_format)
        try:
            dry_run_dictconfig(merged)
        except CONFIG_ERRORS as exc:
            raise ConfigError(setting, f"broken logging config: {exc}") from exc
        return "dict", merged

    # Our handlers are the whole story for our two loggers (propagate is off in setup): the
    # root logger's handlers (a framework's, a test runner's) must not print every line twice.
    @staticmethod
    def _swap(log: logging.Logger, new: list[logging.Handler], everything: bool) -> None:
        for handler in list(log.handlers):
            if everything or (handler.get_name() or "").startswith(OWN_HANDLER_PREFIX):
                log.removeHandler(handler)
                handler.close()
        for handler in new:
            log.addHandler(handler)

    def _capture(self, new_file: IO[str] | None) -> None:
        """Point fds 1 and 2 at ``new_file`` (capture_output), closing the previous one."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stdio must not stop the redirection
        if new_file is not None:
            os.dup2(new_file.fileno(), 1)
            os.dup2(new_file.fileno(), 2)
        if self.logfile is not None:
            self.logfile.close()
        self.logfile = new_file

    # -- logging ------------------------------------------------------------------------------

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl: int | str, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at ``lvl``: a number or a level name (unknown names log at INFO)."""
        if isinstance(lvl, str):
            lvl = LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def atoms(self, resp: Any, req: Any, environ: Mapping[str, Any],
              request_time: datetime.timedelta | float) -> Mapping[str, Any]:
        """The access-log atoms of one request (subclasses may add their own)."""
        return AccessAtoms(resp, req, environ, request_time)

    def access(self, resp: Any, req: Any, environ: Mapping[str, Any],
               request_time: datetime.timedelta | float) -> None:
        """Write one access-log line (``access_log_format``) if access logging is on.

        ``resp`` has ``status``/``status_code``/``headers``/``sent``; ``req`` has ``method``,
        ``uri``, ``path``, ``query``, ``version`` and ``headers``; ``request_time`` is a
        timedelta or float seconds. Never raises: a broken format is reported in the error log.

        Also the one place every protocol reports a finished request, so request metrics
        (:meth:`attach_metrics`) are recorded here, whether or not the access log is on.
        """
        metrics = self.request_metrics
        if metrics is not None:
            metrics.record(resp, req, environ, request_time)
        if not self.access_log_enabled or not self.access_log.isEnabledFor(logging.INFO):
            return
        atoms = self.atoms(resp, req, environ, request_time)
        if not isinstance(atoms, AccessAtoms):
            atoms = DefaultingAtoms(atoms)
        # The line is formatted by the handlers (record.args is the atoms mapping, which JSON
        # formatters read). Stdlib handlers report a bad format through handleError; a handler
        # that raises instead must still not fail the request.
        try:
            self.access_log.info(self.cfg.access_log_format, atoms)
        except (TypeError, ValueError, KeyError) as exc:
            self.error("cannot write the access log line (access_log_format %r): %s",
                       self.cfg.access_log_format, exc)

    def attach_metrics(self, metrics: RequestMetrics | None) -> None:
        """Record every request (:meth:`access`) into ``metrics`` from now on (None: stop).

        Called by the arbiter before it forks, so every worker inherits it.
        """
        self.request_metrics = metrics

    def now(self) -> str:
        """The current time in Apache's common log format."""
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    # -- files --------------------------------------------------------------------------------

    def reopen_files(self) -> None:
        """Reopen every log file (USR1, after logrotate moved them away)."""
        if self.cfg.capture_output and self.cfg.errorlog != "-":
            with self.lock:
                self._capture(self._open("errorlog", self.cfg.errorlog))
        for handler in self._file_handlers():
            with _locked(handler):
                if handler.stream:
                    handler.stream.close()
                    handler.stream = handler._open()

    def close_on_exec(self) -> None:
        """Mark every log file descriptor close-on-exec (before the arbiter re-execs on USR2)."""
        for handler in self._file_handlers():
            with _locked(handler):
                if handler.stream:
                    set_cloexec(handler.stream.fileno())
        if self.logfile is not None:
            set_cloexec(self.logfile.fileno())

    @staticmethod
    def _file_handlers() -> list[logging.FileHandler]:
        seen: dict[int, logging.FileHandler] = {}
        for log in all_loggers():
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler):
                    seen[id(handler)] = handler
        return list(seen.values())


def records_every_request(log: Any) -> bool:
    """Must ``log.access`` run for every request, even with the access log off? True for a
    logger class overriding ``access()`` (statsd counts requests) and for one recording request
    metrics (``--metrics-bind``); drivers skip the call otherwise while the log is off."""
    return (type(log).access is not Logger.access
            or getattr(log, "request_metrics", None) is not None)


class _locked:
    """``with _locked(handler):`` -- Handler.acquire/release as a context manager."""

    __slots__ = ("_handler",)

    def __init__(self, handler: logging.Handler) -> None:
        self._handler = handler

    def __enter__(self) -> None:
        self._handler.acquire()

    def __exit__(self, *exc: object) -> None:
        self._handler.release()
