"""What every ASGI http cycle shares, whatever carries it (HTTP/1.1 here, HTTP/2 in a plugin).

:class:`ResponseCycle` holds the ``send()`` state machine, the ``receive()`` waiter, the
disconnect/grace rule and the ``run(app, scope)`` wrapper; a transport subclasses it and writes
the bytes (``_start``, ``_body``, ``_trailer_message``, ``_pathsend``, ``_early_hints``,
``_complete``, ``_failed``). Send side, as a table (anything else raises
:class:`ProtocolViolation` into the app)::

    START    --http.response.informational (103)--> START
    START    --http.response.start-->               BODY
    BODY     --http.response.body (more_body)-->    BODY
    BODY     --http.response.pathsend-->            DONE
    BODY     --http.response.body (last)-->         DONE, or TRAILERS if start had trailers=True
    TRAILERS --http.response.trailers (more)-->     TRAILERS
    TRAILERS --http.response.trailers (last)-->     DONE
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterator, Mapping
from enum import Enum
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

from gunicorn.asgi.errors import ClientDisconnected, ProtocolViolation
from gunicorn.asgi.scope import request_id_of
from gunicorn.http.events import Request
from gunicorn.wsgi.exchange import RequestInfo

PATHSEND_BLOCK = 65536

# Final statuses only: 1xx go through http.response.informational.
STATUS_LINES: Mapping[int, str] = MappingProxyType(
    {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus if s >= 200})


class SendState(Enum):
    START = 1
    BODY = 2
    TRAILERS = 3
    DONE = 4


def status_line(status: Any) -> str:
    """``"NNN Reason"`` for a final ASGI response status; ProtocolViolation otherwise."""
    # int subclasses (HTTPStatus) are fine, bool is not.
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 999:
        # 1xx go through http.response.informational; 101 belongs to the websocket path.
        raise ProtocolViolation(f"invalid response status {status!r}")
    return STATUS_LINES.get(int(status)) or str(int(status))


def decode_headers(raw: Any) -> tuple[list[tuple[str, str]], bool]:
    """ASGI ``[(bytes, bytes)]`` headers as the framer's ``(str, str)`` pairs (it validates
    names and values), and whether the app asked to close the connection."""
    out = []
    close = False
    try:
        for name, value in raw:
            if type(name) is not bytes or type(value) is not bytes:
                if not isinstance(name, (bytes, bytearray)) or \
                        not isinstance(value, (bytes, bytearray)):
                    raise ProtocolViolation(f"header {name!r}: names and values must be bytes")
                name, value = bytes(name), bytes(value)
            text = name.decode("latin-1")
            out.append((text, value.decode("latin-1")))
            if len(name) == 10 and name.lower() == b"connection" and b"close" in value.lower():
                close = True
    except (TypeError, ValueError):
        raise ProtocolViolation("headers must be an iterable of [name, value] pairs") from None
    return out, close


def body_bytes(body: Any) -> bytes:
    """A body that is not ``bytes`` (callers test ``type(body) is bytes`` first, inline)."""
    if not isinstance(body, (bytearray, memoryview)):
        raise ProtocolViolation(f"body must be bytes, not {type(body).__name__}")
    return bytes(body)


def pathsend_path(message: Mapping[str, Any]) -> str:
    path = message.get("path")
    if not isinstance(path, str):
        raise ProtocolViolation("http.response.pathsend needs a str 'path'")
    return path


def file_blocks(path: str) -> Iterator[bytes]:
    """The file of an ``http.response.pathsend`` in blocks. Local files are read on the loop
    (page-cache reads are short); the transport's write buffer limits the memory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, PATHSEND_BLOCK):
            yield block
    finally:
        os.close(fd)


class DrainWaiter:
    """The ``drain()`` of an asyncio protocol: one future, released by ``resume_writing`` or
    ``connection_lost``."""

    __slots__ = ("_loop", "_future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        future = self._future
        if future is None or future.done():
            future = self._future = self._loop.create_future()
        await future

    def release(self) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)


class ResponseCycle:
    """The transport-independent half of one ASGI http request.

    ``conn`` needs ``ctx`` (``log``, ``grace``, ``task_finished``, ``in_flight``), ``loop``, ``peer``,
    ``write_paused`` and ``drain()``.
    """

    __slots__ = ("conn", "request", "client", "_info", "status", "status_code", "headers",
                 "body_done", "disconnected", "response_complete", "task", "started_at",
                 "_state", "_waiter", "_trailers_declared", "_trailers", "request_id")

    def __init__(self, conn: Any, request: Request, client: Any, started_at: float) -> None:
        self.conn = conn
        self.request = request
        self.client = client
        self._info: RequestInfo | None = None
        self.status = ""
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.body_done = False
        self.disconnected = False
        self.response_complete = False
        self.task: asyncio.Task[Any] | None = None
        self.started_at = started_at
        self._state = SendState.START
        self._waiter: asyncio.Future[None] | None = None
        self._trailers_declared = False
        self._trailers: list[tuple[str, str]] = []
        self.request_id: str | None = None  # read by the access log; set from the scope by run()

    @property
    def info(self) -> RequestInfo:
        """The ``req`` of the access log and the pre/post_request hooks (made on first use)."""
        info = self._info
        if info is None:
            info = self._info = RequestInfo(self.request, self.conn.peer)
        return info

    # -- receive ------------------------------------------------------------------------------

    async def _wait(self) -> None:
        waiter = self._waiter = self.conn.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        """Resume a ``receive()`` waiting for body bytes, a disconnect or the response's end."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def waiting(self) -> bool:
        return self._waiter is not None

    def disconnect(self) -> None:
        """The client went away: ``http.disconnect`` now, cancellation after the grace period."""
        if self.disconnected:
            return
        self.disconnected = True
        self.wake()
        task = self.task
        if task is None or task.done() or self.response_complete:
            return
        grace = self.conn.ctx.grace
        if grace <= 0:
            task.cancel()
        else:
            self.conn.loop.call_later(grace, task.cancel)

    # -- send ---------------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        kind = message["type"]
        state = self._state
        if state is SendState.BODY:
            if kind == "http.response.body":
                # HTTP/1.1 writes synchronously (None); HTTP/2 may wait for flow control.
                pending = self._body(message.get("body", b""), message.get("more_body", False))
                if pending is not None:
                    await pending
            elif kind == "http.response.pathsend":
                await self._pathsend(pathsend_path(message))
                return
            else:
                raise ProtocolViolation(f"{kind!r} while sending the response body")
        elif state is SendState.START:
            if kind == "http.response.start":
                self._start(message)
                return
            if kind == "http.response.informational":
                self._informational(message)
                return
            raise ProtocolViolation(f"expected 'http.response.start', got {kind!r}")
        elif state is SendState.TRAILERS:
            if kind != "http.response.trailers":
                raise ProtocolViolation(f"expected 'http.response.trailers', got {kind!r}")
            self._trailer_message(message)
        else:
            raise ProtocolViolation(f"{kind!r} after the response was complete")
        conn = self.conn
        if conn.write_paused:
            await conn.drain()
            if self.disconnected and not self.response_complete:
                raise ClientDisconnected("the client has disconnected")

    def _informational(self, message: Mapping[str, Any]) -> None:
        status = message.get("status")
        if status != 103 or isinstance(status, bool) or not isinstance(status, int):
            # 100 Continue is the server's business; other 1xx have no ASGI use.
            raise ProtocolViolation(f"informational status must be 103, not {status!r}")
        self._early_hints(decode_headers(message.get("headers", ()))[0])

    # What the transport does.
    async def receive(self) -> dict[str, Any]:
        raise NotImplementedError

    def _start(self, message: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _body(self, body: Any, more_body: Any) -> Awaitable[None] | None:
        raise NotImplementedError

    def _trailer_message(self, message: Mapping[str, Any]) -> None:
        raise NotImplementedError

    async def _pathsend(self, path: str) -> None:
        raise NotImplementedError

    def _early_hints(self, headers: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def _failed(self) -> None:
        """The app ended without a complete response and the client is still there."""
        raise NotImplementedError

    # -- the application ------------------------------------------------------------------------

    async def run(self, app: Any, scope: dict[str, Any]) -> None:
        """Run the application for this request and deal with how it ended.

        A coroutine wrapping the app (rather than a done callback on its task) saves a loop
        iteration per request. Exceptions other than Exception (SystemExit from a QUIT signal
        handler) propagate: they stop the worker.
        """
        exc: BaseException | None = None
        cancelled = False
        self.request_id = request_id_of(scope)
        ctx = self.conn.ctx
        in_flight = ctx.in_flight  # gunicorn_requests_in_flight (no-op when metrics are off)
        in_flight.inc()
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            cancelled = True
        except Exception as error:  # noqa: BLE001 - an application bug must not kill the worker
            exc = error
        finally:
            in_flight.dec()
            ctx.task_finished(self.task)
        if exc is None and not cancelled and (self.response_complete or self.disconnected):
            return
        self._app_ended(exc, cancelled)

    def _app_ended(self, exc: BaseException | None, cancelled: bool) -> None:
        log = self.conn.ctx.log
        request = self.request
        if cancelled and not self.disconnected:
            log.info("ASGI application task for %s %s was cancelled", request.method, request.uri)
        if exc is not None:
            gone = isinstance(exc, ClientDisconnected) or \
                (self.disconnected and isinstance(exc, OSError))
            if gone:
                log.debug("client %r went away during %s", self.client, request.uri)
            else:
                log.error("Exception in ASGI application (%s %s)", request.method, request.uri,
                          exc_info=exc)
        if self.response_complete or self.disconnected:
            return
        if exc is None and not cancelled:
            log.error("ASGI application returned without completing the response to %s %s",
                      request.method, request.uri)
        self._failed()
