"""The stash in Redis: :class:`RedisBackend`, reached straight from each process.

Every HTTP worker, the dirty arbiter and every dirty worker talk to Redis themselves, over a
connection pool of their own (no hop through the dirty arbiter): one round trip per operation,
one ``EVALSHA`` of the scripts in :mod:`.redis_scripts`, planned by :mod:`.redis_ops` (shared by
the sync and the asyncio paths).

Fork safety: connections are made on first use in each process (one per thread for the
blocking API) and belong to the process that made them. A backend used before ``os.fork``
notices the new pid in the child and makes new connections there; the inherited ones are
dropped unused (redis-py only shuts a socket down in the process that opened it, so the
parent's connections stay intact). The asyncio side keeps one
client per event loop, whose tasks share at most ``ASYNC_POOL_SIZE`` connections.

Faults: calls never retry by themselves (a retried ``incr`` could count twice). A kept
connection that Redis closed (a restart) is noticed before a request is written and reopened,
so the first call after Redis is back succeeds. While Redis is down every call fails at once
with :class:`~gunicorn.dirty.errors.StashUnavailableError` (a refused connection), or after the
connect timeout (at most ``CONNECT_TIMEOUT``) for an address that does not answer at all;
``timeout`` bounds the wait for a reply (:class:`~gunicorn.dirty.errors.StashTimeoutError`).
Errors name the server by :attr:`RedisBackend.address`, never by its URL: no credentials.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from types import ModuleType
from typing import Any

from gunicorn.dirty.errors import StashError, StashTimeoutError, StashUnavailableError
from gunicorn.dirty.stash.config import DEFAULT_PREFIX, EXTRA, parse_url, scrub
from gunicorn.dirty.stash.redis_ops import KeyLayout, Step, plan

DEFAULT_TIMEOUT = 30.0
# A Redis host that drops packets would hold a call for the whole timeout on every connect.
CONNECT_TIMEOUT = 5.0
# Connections one event loop may hold at once (a request is one round trip: a few suffice).
ASYNC_POOL_SIZE = 16


def import_redis() -> ModuleType:
    """The redis-py package; StashError naming the extra when it is not installed."""
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise StashError(f"the stash on Redis needs the redis client: pip install '{EXTRA}' "
                         f"({exc})") from exc
    return redis


class RedisBackend:
    """The stash tables in the Redis server at ``url``, under the key prefix ``prefix``.

    ``url`` is ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
    ``unix:///path.sock[?db=N]``; ``prefix`` keeps this stash's keys apart from every other
    user of the server (keys are ``{prefix}:...``); ``timeout`` bounds each call in seconds
    (``None``: 30 s). Thread-safe; usable from any number of event loops. Creating it opens
    nothing: the first call connects. Raises StashError for a malformed ``url``.
    """

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX,
                 timeout: float | None = None) -> None:
        try:
            parsed = parse_url(url)
        except ValueError as exc:
            raise StashError(f"bad stash URL: {exc}") from None
        self._url = url
        self.address = parsed.address
        self.prefix = prefix
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.layout = KeyLayout(prefix)
        self._forget()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.address} prefix={self.prefix!r}>"

    def _forget(self) -> None:
        self._pid = os.getpid()
        self._pool: Any = None
        self._local = threading.local()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def _options(self) -> dict[str, Any]:
        # RESP2: the replies of our scripts are plain arrays, whatever redis-py's default.
        return {"protocol": 2, "socket_timeout": self.timeout,
                "socket_connect_timeout": min(self.timeout, CONNECT_TIMEOUT),
                "health_check_interval": 0}

    # -- sync ---------------------------------------------------------------------------------

    def _connection(self) -> Any:
        """This thread's connection. One per thread rather than a shared pool: no lock and no
        checkout per call, which makes a call about a third cheaper."""
        if self._pid != os.getpid():
            self._forget()  # a forked child: the parent's connections are not ours
        conn = getattr(self._local, "conn", None)
        if conn is None:
            redis = import_redis()
            with self._lock:
                if self._pool is None:
                    from redis.backoff import NoBackoff
                    from redis.retry import Retry

                    # Only a factory of connections configured from the URL (auth, db, TLS).
                    self._pool = redis.ConnectionPool.from_url(
                        self._url, retry=Retry(NoBackoff(), 0), **self._options())
                conn = self._local.conn = self._pool.make_connection()
                self._connections.add(conn)
        return conn

    def call(self, payload: dict[str, Any]) -> Any:
        """Run one stash operation (see :class:`~gunicorn.dirty.stash.backend.StashBackend`)."""
        step: Any = plan(self.layout, payload)
        conn = self._connection()
        while isinstance(step, Step):
            step = step.finish(self._run(conn, step))
        return step

    def _run(self, conn: Any, step: Step) -> Any:
        import redis

        errors = redis.exceptions
        try:
            conn.connect()  # no-op when connected
            if conn.can_read():
                # Readable before we asked anything: closed by the server (a restart, an idle
                # timeout) or a reply left by an interrupted call. Nothing of ours is in
                # flight on it, so a new connection is safe.
                conn.disconnect()
                conn.connect()
            try:
                conn.send_command("EVALSHA", step.script.sha, len(step.keys), *step.keys,
                                  *step.args)
                return conn.read_response()
            except errors.NoScriptError:
                # Not run (Redis restarted, or never saw it): EVAL runs it and caches it.
                conn.send_command("EVAL", step.script.source, len(step.keys), *step.keys,
                                  *step.args)
                return conn.read_response()
        except errors.ResponseError as exc:  # an error reply: the connection is still good
            raise self._translate(exc) from exc
        except errors.RedisError as exc:
            # The reply may still come: never read this connection again.
            conn.disconnect()
            raise self._translate(exc) from exc

    def close(self) -> None:
        """Close this process's sync connections (the next call reconnects)."""
        if self._pid != os.getpid():
            return
        for conn in list(self._connections):
            conn.disconnect()

    # -- asyncio ------------------------------------------------------------------------------

    def _aclient(self) -> Any:
        if self._pid != os.getpid():
            self._forget()
        loop = asyncio.get_running_loop()
        client = self._loops.get(loop)
        if client is None:
            redis = import_redis()
            with self._lock:
                client = self._loops.get(loop)
                if client is None:
                    # A client's open connections refer to their loop, so a finished loop
                    # (asyncio.run returned) would never leave the weak mapping by itself.
                    for done in [other for other in self._loops if other.is_closed()]:
                        del self._loops[done]
                    client = self._loops[loop] = self._new_async(redis)
        return client

    def _new_async(self, redis: ModuleType) -> Any:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Tasks beyond the pool's size wait (up to the timeout) for a connection to come back,
        # rather than each opening one of its own.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self._url, max_connections=ASYNC_POOL_SIZE, timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), **self._options())
        return redis.asyncio.Redis(connection_pool=pool)

    async def acall(self, payload: dict[str, Any]) -> Any:
        """Run one stash operation on the running loop, without blocking it."""
        step: Any = plan(self.layout, payload)
        client = self._aclient()
        while isinstance(step, Step):
            step = step.finish(await self._arun(client, step))
        return step

    async def _arun(self, client: Any, step: Step) -> Any:
        import redis

        try:
            try:
                return await client.evalsha(step.script.sha, len(step.keys), *step.keys,
                                            *step.args)
            except redis.exceptions.NoScriptError:
                return await client.eval(step.script.source, len(step.keys), *step.keys,
                                         *step.args)
        except redis.exceptions.RedisError as exc:
            raise self._translate(exc) from exc

    async def aclose(self) -> None:
        """Close the running loop's connections."""
        with self._lock:
            client = self._loops.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
            await client.connection_pool.disconnect()  # a pool passed in is not closed by it

    # -- errors -------------------------------------------------------------------------------

    def _translate(self, exc: Exception) -> StashError:
        import redis

        reason = scrub(str(exc), self._url) or type(exc).__name__
        if isinstance(exc, redis.exceptions.TimeoutError):
            return StashTimeoutError(f"the stash's Redis at {self.address} did not answer "
                                     f"within {self.timeout:g}s ({reason})", self.address,
                                     self.timeout)
        if isinstance(exc, redis.exceptions.ConnectionError):
            # Refused, reset, unknown host, failed authentication, still loading its data.
            return StashUnavailableError(f"the stash's Redis at {self.address} is "
                                         f"unreachable: {reason}", self.address)
        return StashError(f"the stash's Redis at {self.address} refused the operation: "
                          f"{reason}")
