"""The stash's settings ``dirty_stash_url`` and ``dirty_stash_prefix``: checked, shown without
secrets, and handed to the processes that use the stash.

Accepted URLs (the forms redis-py's ``from_url`` reads)::

    redis://[[user]:password@]host[:port][/db]      plain TCP (port 6379, db 0 by default)
    rediss://[[user]:password@]host[:port][/db]     TLS (query options such as ssl_ca_certs=)
    unix://[[user]:password@]/path/to/redis.sock[?db=N]

A URL may hold a password, so nothing here ever puts the URL itself in a message:
:func:`redact_url` masks the password (and a ``password=`` query option), and :func:`address`
gives the bare ``scheme://host:port/db`` used to name the server in errors. This module is
imported when the settings are registered, before anything forks: it imports neither redis
nor msgpack.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.dirty.typed_settings import DirtySettings

# How the master hands the stash's location to HTTP workers, the dirty arbiter and dirty
# workers (see DirtyPlugin.worker_environ); a standalone script may set them too.
URL_ENV = "GUNICORN_DIRTY_STASH_URL"
PREFIX_ENV = "GUNICORN_DIRTY_STASH_PREFIX"
DEFAULT_PREFIX = "gunicorn"
SCHEMES = ("redis", "rediss", "unix")
MASK = "***"
EXTRA = "gunicorn-dirty[redis]"


@dataclass(frozen=True, slots=True)
class StashURL:
    """A checked stash URL: ``scheme``, ``host``/``port`` (TCP) or ``path`` (Unix), ``db``."""

    scheme: str
    host: str | None
    port: int | None
    path: str | None
    db: int

    @property
    def address(self) -> str:
        """Where the server is, without credentials or options: fit for logs and errors."""
        if self.scheme == "unix":
            return f"unix://{self.path}?db={self.db}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.db}"


def parse_url(text: str) -> StashURL:
    """Check a stash URL; ValueError (whose message never holds the password) when it is bad."""
    shown = redact_url(text)
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"not a valid URL: {shown}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, not {shown}")
    options = dict(parse_qsl(parts.query))
    if scheme == "unix":
        if not parts.path.startswith("/"):
            raise ValueError(f"a unix:// URL needs an absolute socket path: {shown}")
        return StashURL(scheme, None, None, parts.path, _db(options.get("db", "0"), shown))
    if not parts.hostname:
        raise ValueError(f"the URL names no host: {shown}")
    db_text = parts.path.lstrip("/") or options.get("db", "0")
    return StashURL(scheme, parts.hostname, port or 6379, None, _db(db_text, shown))


def _db(text: str, shown: str) -> int:
    if not text.isdigit():
        raise ValueError(f"the database must be a number (/0, ?db=0): {shown}")
    return int(text)


def redact_url(text: str) -> str:
    """``text`` with its password (userinfo or ``password=`` option) replaced by ``***``.

    A lone userinfo (``redis://secret@host``) is masked whole: some clients read it as a
    password. A URL too malformed to take apart is shown as its scheme only.
    """
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return text.split(":", 1)[0][:10] + "://" + MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    query = "&".join(
        f"{name}={MASK if name.lower() == 'password' else value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    # Not urlunsplit: it drops the empty authority of unix:///path.
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else netloc + parts.path
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def secrets(text: str) -> list[str]:
    """The secret parts of URL ``text`` (to scrub from third-party error messages)."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return [text]
    found = [parts.password or ""]
    if parts.username and parts.password is None:
        found.append(parts.username)
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    return [s for s in found if s]


def scrub(message: str, url: str) -> str:
    """``message`` with every secret of ``url`` masked (for errors from the Redis client)."""
    for secret in secrets(url):
        message = message.replace(secret, MASK)
    return message


# -- setting validators ---------------------------------------------------------------------

def validate_url(value: object) -> str | None:
    """The ``dirty_stash_url`` validator: None/empty unsets; otherwise a checked URL."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a URL string, not {type(value).__name__}")
    if not value.strip():
        return None
    parse_url(value)
    return value.strip()


def redact_setting(value: object) -> object:
    """How ``--print-config`` and ``show config`` show ``dirty_stash_url``."""
    return redact_url(value) if isinstance(value, str) else value


def validate_prefix(value: object) -> str | None:
    """The ``dirty_stash_prefix`` validator: printable text without ``{`` or ``}``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    if not value:
        return None
    if "{" in value or "}" in value or not value.isprintable() or len(value) > 200:
        # The prefix becomes a Redis hash tag, {prefix}: a brace inside would end it early
        # and let two prefixes share keys.
        raise ValueError(f"must be printable, at most 200 characters, without {{ or }}: "
                         f"{value!r:.60}")
    return value


# -- the configuration as a whole -----------------------------------------------------------

def check_settings(cfg: DirtySettings) -> None:
    """ConfigError (exit 2, before anything forks) for a stash setup that cannot work."""
    if not cfg.dirty_stash_url:
        return
    if cfg.dirty_stash_file:
        raise ConfigError("dirty_stash_file", "cannot be used with dirty_stash_url: a stash in "
                          "Redis is persisted by Redis itself (RDB or AOF), not by gunicorn")
    try:
        # find_spec, not import: the master must not load redis (and asyncio, ssl) before
        # workers fork and perhaps monkey-patch.
        found = importlib.util.find_spec("redis") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError("dirty_stash_url", f"the stash on Redis needs the redis client: "
                          f"pip install '{EXTRA}'")


def stash_prefix(cfg: DirtySettings) -> str:
    """The key prefix: ``dirty_stash_prefix``, else the process name (``proc_name``)."""
    return cfg.dirty_stash_prefix or cfg.proc_name or DEFAULT_PREFIX


def stash_environ(cfg: DirtySettings) -> dict[str, str]:
    """What every HTTP worker, the dirty arbiter and every dirty worker needs to find the
    stash in Redis (nothing for the in-arbiter store)."""
    if not cfg.dirty_stash_url:
        return {}
    return {URL_ENV: cfg.dirty_stash_url, PREFIX_ENV: stash_prefix(cfg)}
