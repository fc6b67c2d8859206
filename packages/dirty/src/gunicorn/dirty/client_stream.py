"""Iterators over the chunks of a streaming dirty action (sync and asyncio).

Timeouts mean what a reader expects: ``timeout`` bounds the wait for each *next* chunk (a long
but steady stream never times out), and the optional ``total_timeout`` bounds the whole stream.
Stopping early (``break``, ``close()``, leaving a ``with`` block, a cancelled task, garbage
collection) sends CANCEL, which closes the generator in the dirty worker. Chunks are returned to
the producer as credit only once consumed, so a slow reader slows the producer.

An action that returns a plain value instead of a generator yields that value as the only item.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gunicorn.dirty.call import Chunk, Event, Failure, Result, StreamEnd
from gunicorn.dirty.errors import DirtyTimeoutError

if TYPE_CHECKING:
    from gunicorn.dirty.client import DirtyClient
    from gunicorn.dirty.client_async import AsyncConnection
    from gunicorn.dirty.client_sync import SyncConnection


class _StreamBase:
    def __init__(
        self,
        client: DirtyClient,
        app_path: str,
        action: str,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any] | None,
        timeout: float | None,
        total_timeout: float | None,
    ) -> None:
        self.app_path = app_path
        self.action = action
        self._client = client
        self._args = args
        self._kwargs = kwargs
        self.timeout = timeout or None  # per chunk; 0 / None: wait as long as it takes
        self.total_timeout = total_timeout or None
        self._total_deadline: float | None = None
        self._request_id = 0
        self._finished = False

    def _begin(self) -> None:
        if self.total_timeout is not None:
            self._total_deadline = time.monotonic() + self.total_timeout

    def _starter(self, table: Any) -> tuple[int, bytes]:
        started: tuple[int, bytes] = table.start_call(
            self.app_path, self.action, self._args, self._kwargs, self.total_timeout, stream=True
        )
        return started

    def _deadline(self) -> float | None:
        candidates = [d for d in (self._total_deadline,) if d is not None]
        if self.timeout is not None:
            candidates.append(time.monotonic() + self.timeout)
        return min(candidates) if candidates else None

    def _timeout_error(self) -> DirtyTimeoutError:
        name = f"{self.app_path}.{self.action}"
        if self._total_deadline is not None and time.monotonic() >= self._total_deadline:
            return DirtyTimeoutError(
                f"stream {name} exceeded its total timeout of {self.total_timeout}s",
                timeout=self.total_timeout,
            )
        return DirtyTimeoutError(
            f"no chunk from stream {name} within {self.timeout}s", timeout=self.timeout
        )

    def _outcome(self, event: Event | None) -> Any:
        """The item to hand out, or StopIteration/StopAsyncIteration via the caller."""
        if event is None:
            raise self._timeout_error()
        if isinstance(event, Chunk):
            return event.data
        self._finished = True
        if isinstance(event, Failure):
            raise event.error
        if isinstance(event, Result):
            return event.value
        assert isinstance(event, StreamEnd)
        return _END


_END = object()


class DirtyStream(_StreamBase):
    """Iterator over the chunks of one streaming call; also a context manager.

    The request is sent on the first ``next()``. Raises DirtyTimeoutError, the action's
    DirtyAppError (after the chunks produced before the failure), or DirtyConnectionError.
    """

    _conn: SyncConnection | None = None

    def __iter__(self) -> DirtyStream:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        if self._conn is None:
            self._begin()
            self._conn, self._request_id = self._client._start(self._starter, self._deadline())
        try:
            item = self._outcome(self._conn.wait_event(self._request_id, self._deadline()))
        except BaseException:
            self.close()
            raise
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop early: the dirty worker closes the generator. Idempotent."""
        if not self._finished:
            self._finished = True
            if self._conn is not None:
                self._conn.cancel(self._request_id)

    def __enter__(self) -> DirtyStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._finished and self._conn is not None:
            self._conn.cancel(self._request_id)


class DirtyAsyncStream(_StreamBase):
    """Async iterator over the chunks of one streaming call; also an async context manager.

    Same contract as :class:`DirtyStream`. Cancelling the task that iterates cancels the stream.
    """

    _conn: AsyncConnection | None = None

    def __aiter__(self) -> DirtyAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            if self._conn is None:
                self._begin()
                conn = await self._client._async_connection()
                self._request_id = conn.start(self._starter)
                self._conn = conn
                await conn.drain()
            item = self._outcome(await self._conn.wait_event(self._request_id, self._deadline()))
        except BaseException:
            await self.aclose()
            raise
        if item is _END:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Stop early: the dirty worker closes the generator. Idempotent."""
        self._cancel()

    def _cancel(self) -> None:
        if not self._finished:
            self._finished = True
            if self._conn is not None and not self._conn.loop.is_closed():
                self._conn.cancel(self._request_id)

    async def __aenter__(self) -> DirtyAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._cancel()

    def __del__(self) -> None:
        # Garbage collection may run in any thread: hand the cancel to the connection's loop.
        conn = self._conn
        if not self._finished and conn is not None and not conn.loop.is_closed():
            self._finished = True
            try:
                conn.loop.call_soon_threadsafe(conn.cancel, self._request_id)
            except RuntimeError:
                pass  # the loop closed in between: the connection died with it
