"""asyncio driver: one Unix-socket connection to the dirty arbiter shared by many tasks.

An :class:`asyncio.Protocol` feeds every received byte straight into the connection's
:class:`gunicorn.dirty.call.CallTable` (no reader task hop) and wakes the tasks whose calls got
events, so any number of tasks multiplex their calls over one connection.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from gunicorn.dirty.call import CallKind, CallTable, Event
from gunicorn.dirty.client_sync import connect_error, remaining
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import DirtyConnectionError, DirtyError


class AsyncConnection(asyncio.Protocol):
    """One connection bound to the event loop that opened it."""

    def __init__(self, path: str, max_frame_size: int) -> None:
        self.path = path
        self.pid = os.getpid()
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._table = CallTable(max_frame_size=max_frame_size)
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future[bool]] = {}
        self._writable: asyncio.Future[None] | None = None  # set while the transport is paused

    @classmethod
    async def open(cls, path: str, timeout: float | None, max_frame_size: int) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_unix_connection(lambda: cls(path, max_frame_size), path),
                timeout or None,
            )
        except asyncio.TimeoutError as exc:
            raise connect_error(path, TimeoutError("connect timed out")) from exc
        except OSError as exc:
            raise connect_error(path, exc) from exc
        return conn

    def usable(self) -> bool:
        return (
            not self.closed
            and self.pid == os.getpid()
            and self.loop is asyncio.get_running_loop()
        )

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not derive from asyncio.Transport.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        touched = self._table.receive_data(data)
        if self._table.broken is not None:
            self._fail(self._table.broken)
            return
        self._flush()
        self._wake(touched)

    def eof_received(self) -> bool:
        return False  # close our side too: the arbiter went away

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f": {exc}" if exc is not None else ""
        message = f"connection to the dirty arbiter lost{detail}"
        self._fail(DirtyConnectionError(message, socket_path=self.path))

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None:
            if not self._writable.done():
                self._writable.set_result(None)
            self._writable = None

    # -- calls -----------------------------------------------------------------------------

    def begin(self, kind: CallKind, type_: MessageType, payload: Any) -> int:
        """Register a call whose first frame is ``type_``/``payload`` and write it (as
        :meth:`start`); returns the id."""
        return self.start(lambda table: table.start(kind, type_, payload))

    def start(self, starter: Callable[[CallTable], tuple[int, bytes]]) -> int:
        """Register a call with ``starter(table)``, write its first frame; returns the id.
        Await :meth:`drain` next (inside the block that cancels the call on failure)."""
        request_id, data = starter(self._table)
        assert self._transport is not None
        self._transport.write(data)
        return request_id

    async def drain(self) -> None:
        if self._writable is not None:
            # The arbiter reads slower than we write (a large payload): wait like drain() would.
            await asyncio.shield(self._writable)

    async def wait_event(self, request_id: int, deadline: float | None) -> Event | None:
        """The next event of the call, or ``None`` once ``deadline`` passed without one.

        Cancellation of the awaiting task propagates; the caller then cancels the call.
        """
        while True:
            event = self._table.next_event(request_id)
            if event is not None:
                self._flush()  # credit returned for a consumed chunk
                return event
            left = remaining(deadline)
            if left == 0.0:
                return None
            # A bare future and call_later rather than wait_for(): on 3.11, wait_for() swallows a
            # cancellation that races with the reply, and the caller must see every cancel.
            waiter: asyncio.Future[bool] = self.loop.create_future()
            self._waiters[request_id] = waiter
            timer = None if left is None else self.loop.call_later(left, _expire, waiter)
            try:
                woken = await waiter
            finally:
                self._waiters.pop(request_id, None)
                if timer is not None:
                    timer.cancel()
            if not woken:
                event = self._table.next_event(request_id)
                self._flush()
                return event

    def cancel(self, request_id: int) -> None:
        self._table.cancel(request_id)
        self._flush()

    def close(self) -> None:
        if self._transport is not None and self.pid == os.getpid() and not self.loop.is_closed():
            self._transport.close()
        self._fail(DirtyConnectionError("client closed", socket_path=self.path))

    # -- internals -------------------------------------------------------------------------

    def _flush(self) -> None:
        outgoing = self._table.data_to_send()
        if outgoing and self._transport is not None and not self.closed:
            self._transport.write(outgoing)

    def _wake(self, request_ids: set[int]) -> None:
        for request_id in request_ids:
            waiter = self._waiters.get(request_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(True)

    def _fail(self, error: Exception) -> None:
        if self.closed:
            return
        self.closed = True
        touched = self._table.connection_lost(
            error if isinstance(error, DirtyError) else DirtyConnectionError(str(error))
        )
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self.resume_writing()
        self._wake(touched | set(self._waiters))


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
