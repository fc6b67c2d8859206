"""Where stash operations run: the :class:`StashBackend` interface and its default choice.

A backend takes the request maps built by :mod:`.payloads` (``{"op": "put", "table": ...}``)
and returns exactly what :meth:`StashStore.apply <gunicorn.dirty.stash.store.StashStore.apply>`
returns for them, raising the same errors; :class:`~gunicorn.dirty.stash.client.StashClient`
and the dict-like tables are written once against it. Two backends exist:

* :class:`ArbiterBackend`: the tables in the dirty arbiter's memory, one STASH frame per call
  on the calling thread's (or loop's) cached dirty client; the default;
* :class:`~gunicorn.dirty.stash.redis_backend.RedisBackend`: the tables in a Redis server
  shared by every host, reached straight from each process (``dirty_stash_url``).

:func:`default_backend` picks one from the environment the master gives every HTTP worker,
the dirty arbiter and every dirty worker: Redis when ``GUNICORN_DIRTY_STASH_URL`` is set.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from gunicorn.dirty.client import DirtyClient, get_dirty_client, get_dirty_client_async
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.stash.config import DEFAULT_PREFIX, PREFIX_ENV, URL_ENV

_STASH = MessageType.STASH


@runtime_checkable
class StashBackend(Protocol):
    """A place that holds stash tables. ``payload`` is a request map from :mod:`.payloads`;
    the result and the errors are those of ``StashStore.apply`` for it, plus the backend's
    connection errors (:class:`~gunicorn.dirty.errors.DirtyConnectionError` and
    :class:`~gunicorn.dirty.errors.DirtyTimeoutError` or their stash subclasses)."""

    def call(self, payload: dict[str, Any]) -> Any:
        """Run one operation, blocking."""
        ...

    async def acall(self, payload: dict[str, Any]) -> Any:
        """Run one operation on the running event loop without blocking it."""
        ...

    def close(self) -> None:
        """Close the connections this process opened (the next call reopens them)."""
        ...

    async def aclose(self) -> None:
        """Close the running loop's connections."""
        ...


class ArbiterBackend:
    """The tables held by the dirty arbiter, at ``socket_path``.

    With ``socket_path=None`` it owns nothing: each call takes the per-thread
    (``get_dirty_client``) or per-loop (``get_dirty_client_async``) cached client for
    ``$GUNICORN_DIRTY_SOCKET``, so it may be shared by threads and survives ``os.fork``. With a
    path it opens its own connection on first use. ``timeout`` bounds each call (``None``: the
    dirty client's 30 s).
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._own: DirtyClient | None = None

    def __repr__(self) -> str:
        return f"<ArbiterBackend {self.socket_path or '$GUNICORN_DIRTY_SOCKET'}>"

    def _owned(self) -> DirtyClient:
        if self._own is None:
            self._own = DirtyClient(self.socket_path, timeout=self.timeout or 30.0)
        return self._own

    def call(self, payload: dict[str, Any]) -> Any:
        client = get_dirty_client() if self.socket_path is None else self._owned()
        return client.request(_STASH, payload, self.timeout)

    async def acall(self, payload: dict[str, Any]) -> Any:
        if self.socket_path is None:
            client = await get_dirty_client_async()
        else:
            client = self._owned()
        return await client.request_async(_STASH, payload, self.timeout)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None

    async def aclose(self) -> None:
        if self._own is not None:
            own, self._own = self._own, None
            await own.close_async()


class _Defaults:
    """The backends ``StashClient()`` uses, by timeout, for the configuration in the environment.

    Process-wide by definition (the module functions promise one stash per process). A Redis
    backend re-creates its connections itself after ``fork``; a stale entry is harmless, so no
    lock is needed (two threads racing here build two backends, one of which is dropped before
    it ever connects).
    """

    def __init__(self) -> None:
        self.backends: dict[tuple[str | None, str, float | None], StashBackend] = {}

    def get(self, timeout: float | None) -> StashBackend:
        url = os.environ.get(URL_ENV) or None
        prefix = os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX
        key = (url, prefix, timeout)
        backend = self.backends.get(key)
        if backend is None:
            if url is None:
                backend = ArbiterBackend(None, timeout)
            else:
                from gunicorn.dirty.stash.redis_backend import RedisBackend

                backend = RedisBackend(url, prefix, timeout)
            backend = self.backends.setdefault(key, backend)
        return backend


_DEFAULTS = _Defaults()


def default_backend(timeout: float | None = None) -> StashBackend:
    """The backend of this process's configuration: Redis at ``$GUNICORN_DIRTY_STASH_URL``
    (keys under ``$GUNICORN_DIRTY_STASH_PREFIX``) when set, else the dirty arbiter at
    ``$GUNICORN_DIRTY_SOCKET``. Shared: never close it."""
    return _DEFAULTS.get(timeout)
