"""Values computed from several settings, as properties of :class:`~gunicorn.config.Config`.

A property here shadows the setting of the same name on purpose, following gunicorn:
``cfg.worker_class`` is the resolved class while ``cfg.get("worker_class")`` is what the user
wrote; likewise ``cfg.proc_name``, ``cfg.sendfile``, ``cfg.env`` and ``cfg.logger_class``.

Every failure is a :class:`~gunicorn.errors.ConfigError` naming the setting at fault, so the CLI
can report it on one line before anything forks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gunicorn.config.address import BindAddress, parse_address
from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.workers import ResolvedWorker

DEFAULT_LOGGER = "gunicorn.glogging.Logger"
STATSD_LOGGER = "gunicorn.instrument.statsd.Statsd"


class DerivedValues:
    """Mixin for Config. ``self.get(name)`` reads a validated value."""

    def get(self, name: str) -> Any:  # provided by Config
        raise NotImplementedError

    def is_set(self, name: str) -> bool:  # provided by Config
        raise NotImplementedError

    # -- listening ----------------------------------------------------------------------------

    @property
    def address(self) -> list[BindAddress]:
        """The ``bind`` addresses, parsed (they were checked when set, so this cannot fail)."""
        return [parse_address(item) for item in self.get("bind")]

    @property
    def reuse_port(self) -> bool:
        return bool(self.get("reuse_port"))

    # -- processes ----------------------------------------------------------------------------

    @property
    def uid(self) -> int:
        """The numeric user id of ``user`` (the effective uid when unset)."""
        return _resolve_id("user", self.get("user"), os.geteuid)

    @property
    def gid(self) -> int:
        """The numeric group id of ``group`` (the effective gid when unset)."""
        return _resolve_id("group", self.get("group"), os.getegid)

    @property
    def proc_name(self) -> str:
        return str(self.get("proc_name") or self.get("default_proc_name"))

    @property
    def env(self) -> dict[str, str]:
        """``raw_env`` as a dict; later entries win."""
        result: dict[str, str] = {}
        for item in self.get("raw_env"):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError("raw_env", f"{item!r} is not of the form KEY=VALUE")
            result[key.strip()] = value
        return result

    @property
    def sendfile(self) -> bool:
        # None means "not configured": sendfile is on unless explicitly turned off.
        return self.get("sendfile") is not False

    # -- TLS ----------------------------------------------------------------------------------

    @property
    def is_ssl(self) -> bool:
        return bool(self.get("certfile") or self.get("keyfile"))

    @property
    def ssl_options(self) -> dict[str, Any]:
        """The SSL settings as keyword arguments for building a context."""
        names = ("keyfile", "certfile", "ca_certs", "cert_reqs", "ssl_version", "ciphers",
                 "suppress_ragged_eofs", "do_handshake_on_connect")
        return {name: self.get(name) for name in names}

    # -- classes ------------------------------------------------------------------------------

    @property
    def worker_class_str(self) -> str:
        value = self.get("worker_class")
        if isinstance(value, type):
            return f"{value.__module__}.{value.__qualname__}"
        return _threaded_name(value, self.get("threads"))

    @property
    def worker_class(self) -> type:
        """The worker class; ``sync`` with ``threads > 1`` becomes ``gthread``, as in gunicorn."""
        return self._resolved_worker().cls

    @property
    def worker_class_note(self) -> str | None:
        """One line to log when ``-k`` named an alias (a uvicorn worker that is not installed)."""
        return self._resolved_worker().note

    def _resolved_worker(self) -> ResolvedWorker:
        from gunicorn.workers import resolve_worker

        value = self.get("worker_class")
        if not isinstance(value, type):
            value = _threaded_name(value, self.get("threads"))
        try:
            return resolve_worker(value)
        except (ValueError, ImportError) as exc:
            raise ConfigError("worker_class", str(exc)) from exc

    @property
    def logger_class(self) -> type:
        """The logger class; the StatsD logger when ``statsd_host`` is set and the default kept."""
        from gunicorn.config.validators import import_dotted

        path = self.get("logger_class")
        if path == DEFAULT_LOGGER and self.get("statsd_host"):
            path = STATSD_LOGGER
        try:
            cls = import_dotted(path)
        except ValueError as exc:
            raise ConfigError("logger_class", str(exc)) from exc
        if not isinstance(cls, type):
            raise ConfigError("logger_class", f"{path!r} is not a class")
        return cls


def _threaded_name(name: str, threads: int) -> str:
    if name in ("sync", "egg:gunicorn#sync") and threads > 1:
        return "gthread"
    return name


def _resolve_id(setting: str, value: int | str | None, default: Any) -> int:
    if value is None:
        return int(default())
    if isinstance(value, int):
        return value
    import grp
    import pwd

    try:
        if setting == "user":
            return pwd.getpwnam(value).pw_uid
        return grp.getgrnam(value).gr_gid
    except KeyError:
        raise ConfigError(setting, f"no such {setting} {value!r}") from None
