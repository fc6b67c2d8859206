"""One HTTP request/response cycle: the ``receive()`` and ``send()`` the application awaits.

Send side, as a table (anything else raises :class:`ProtocolViolation` into the app)::

    START    --http.response.informational (103)--> START
    START    --http.response.start-->               BODY
    BODY     --http.response.body (more_body)-->    BODY
    BODY     --http.response.pathsend-->            DONE
    BODY     --http.response.body (last)-->         DONE, or TRAILERS if start had trailers=True
    TRAILERS --http.response.trailers (more)-->     TRAILERS
    TRAILERS --http.response.trailers (last)-->     DONE

The head from ``http.response.start`` is held back until the first body message (or the end of
the current loop iteration) so that a head and a small body leave in one ``transport.write``.

Receive side: ``http.request`` messages carry whatever body bytes the parser has; when there are
none, ``receive()`` waits for the connection to feed more (reading is paused while the app does
not consume, see :mod:`gunicorn.asgi.connection`). Once the body is complete, ``receive()``
blocks until the response is complete or the client leaves, then returns ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from enum import Enum
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

from gunicorn.asgi.errors import ClientDisconnected, ProtocolViolation
from gunicorn.http.errors import RequestError
from gunicorn.http.events import Request
from gunicorn.http.writer import ResponseFramer
from gunicorn.workers.handler import RequestInfo

PATHSEND_BLOCK = 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Final statuses only: 1xx go through http.response.informational.
_STATUS_LINES: Mapping[int, str] = MappingProxyType(
    {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus if s >= 200})


class _Send(Enum):
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
    return _STATUS_LINES.get(int(status)) or str(int(status))


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


# The former private names (tests/core/test_asgi_units.py imports them).
_status_line = status_line
_decode_headers = decode_headers


class RequestCycle:
    """The state of one request on an :class:`~gunicorn.asgi.connection.HTTPConnection`.

    Doubles as the ``resp`` of the access log and the ``post_request`` hook (``status``,
    ``status_code``, ``headers``, ``sent``); ``info`` is their ``req``.
    """

    __slots__ = ("conn", "request", "_info", "client", "keep_alive", "framer", "status",
                 "status_code", "headers", "body_done", "continue_pending", "disconnected",
                 "response_complete", "task", "started_at", "error_bytes", "_state", "_head",
                 "_waiter", "_trailers_declared", "_trailers")

    def __init__(self, conn: Any, request: Request, client: Any, keep_alive: bool) -> None:
        self.conn = conn
        self.request = request
        self.client = client
        self._info: RequestInfo | None = None
        self.keep_alive = keep_alive
        self.framer: ResponseFramer | None = None
        self.status = ""
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.body_done = False
        self.continue_pending = request.expect_continue
        self.disconnected = False
        self.response_complete = False
        self.task: asyncio.Task[Any] | None = None
        self.started_at = time.perf_counter()
        self.error_bytes = 0
        self._state = _Send.START
        self._head: bytes | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._trailers_declared = False
        self._trailers: list[tuple[str, str]] = []

    # -- what the access log reads ------------------------------------------------------------

    @property
    def info(self) -> RequestInfo:
        """The ``req`` of the access log and the pre/post_request hooks (made on first use)."""
        info = self._info
        if info is None:
            info = self._info = RequestInfo(self.request, self.conn.peer)
        return info

    @property
    def sent(self) -> int:
        framer = self.framer
        return (framer.body_bytes if framer is not None else 0) + self.error_bytes

    # -- receive ------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            if self.body_done:
                await self._wait()
                continue
            if self.continue_pending:
                self.continue_pending = False
                if self.framer is None:
                    # RFC 9110 §10.1.1: the client waits for this before sending the body.
                    self.conn.transport.write(CONTINUE)
            try:
                body, done = self.conn.read_body()
            except RequestError as exc:
                self.conn.body_error(self, exc)
                continue
            if body or done:
                self.body_done = done
                return {"type": "http.request", "body": body, "more_body": not done}
            await self._wait()

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

    # -- send ---------------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        kind = message["type"]
        state = self._state
        if state is _Send.BODY:
            if kind == "http.response.body":
                self._body(message.get("body", b""), message.get("more_body", False))
            elif kind == "http.response.pathsend":
                await self._pathsend(message)
                return
            else:
                raise ProtocolViolation(f"{kind!r} while sending the response body")
        elif state is _Send.START:
            if kind == "http.response.start":
                self._start(message)
                return
            if kind == "http.response.informational":
                self._informational(message)
                return
            raise ProtocolViolation(f"expected 'http.response.start', got {kind!r}")
        elif state is _Send.TRAILERS:
            if kind != "http.response.trailers":
                raise ProtocolViolation(f"expected 'http.response.trailers', got {kind!r}")
            self._trailer_message(message)
        else:
            raise ProtocolViolation(f"{kind!r} after the response was complete")
        if self.conn.write_paused:
            await self.conn.drain()
            if self.disconnected and not self.response_complete:
                raise ClientDisconnected("the client has disconnected")

    def _start(self, message: Mapping[str, Any]) -> None:
        code = message["status"]
        status = _STATUS_LINES.get(code) if type(code) is int else None
        if status is None:
            status = status_line(code)
        headers, close = decode_headers(message.get("headers", ()))
        framer = ResponseFramer(self.request.method, self.request.version,
                                self.keep_alive and not close and not self.conn.ctx.stopping)
        # Validates the status and every header (InvalidResponseHeader before anything is sent).
        self._head = framer.start(status, headers, date=self.conn.ctx.dates.get())
        self.framer = framer
        self.status = status
        self.status_code = framer.status_code
        self.headers = headers
        self._state = _Send.BODY
        if message.get("trailers", False):
            self._trailers_declared = True
        # The head waits for the first body message; if none comes in this loop iteration
        # (a streaming app that computes before its first chunk), send it on its own.
        self.conn.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        head = self._head
        if head is not None and not self.disconnected:
            self._head = None
            self.conn.transport.write(head)

    def _write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        if data:
            self.conn.transport.write(data)

    def _body(self, body: Any, more_body: Any) -> None:
        framer = self.framer
        assert framer is not None
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise ProtocolViolation(f"body must be bytes, not {type(body).__name__}")
            body = bytes(body)
        out = framer.body(body) if body else b""
        if more_body:
            self._write(out)
            return
        if self._trailers_declared:
            self._state = _Send.TRAILERS
            self._write(out)
            return
        end = framer.end()
        self._write(out + end if end else out)
        self._complete()

    def _trailer_message(self, message: Mapping[str, Any]) -> None:
        headers, _ = decode_headers(message.get("headers", ()))
        self._trailers.extend(headers)
        if message.get("more_trailers", False):
            return
        framer = self.framer
        assert framer is not None
        # RFC 9110 §6.5: trailers only on a chunked body, and only to a client that said
        # "TE: trailers"; otherwise they are dropped (the body itself is still complete).
        te = self.request.header("TE") or ""
        wanted = framer.chunked and "trailers" in (t.strip().lower() for t in te.split(","))
        self._write(framer.end(self._trailers if wanted else None))
        self._complete()

    def _informational(self, message: Mapping[str, Any]) -> None:
        status = message.get("status")
        if status != 103 or isinstance(status, bool) or not isinstance(status, int):
            # 100 Continue is the server's business; other 1xx have no ASGI use.
            raise ProtocolViolation(f"informational status must be 103, not {status!r}")
        headers, _ = decode_headers(message.get("headers", ()))
        # Validates the headers; empty for HTTP/1.0 clients (RFC 9110 §15.2).
        data = ResponseFramer(self.request.method, self.request.version, False).informational(
            "103 Early Hints", headers)
        if data:
            self.conn.transport.write(data)

    async def _pathsend(self, message: Mapping[str, Any]) -> None:
        path = message.get("path")
        if not isinstance(path, str):
            raise ProtocolViolation("http.response.pathsend needs a str 'path'")
        framer = self.framer
        assert framer is not None
        conn = self.conn
        # Local files are read in blocks on the loop (page-cache reads are short); the transport's
        # write buffer limits the memory, as for any streamed body.
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                block = os.read(fd, PATHSEND_BLOCK)
                if not block:
                    break
                self._write(framer.body(block))
                if conn.write_paused:
                    await conn.drain()
                if self.disconnected:
                    raise ClientDisconnected("the client has disconnected")
        finally:
            os.close(fd)
        self._write(framer.end())
        self._complete()

    def _complete(self) -> None:
        self._state = _Send.DONE
        self.response_complete = True
        if self._waiter is not None:
            self.wake()
        self.conn.response_complete(self)

    # -- end of the application -----------------------------------------------------------------

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

    async def run(self, app: Any, scope: dict[str, Any]) -> None:
        """Run the application for this request and deal with how it ended.

        A coroutine wrapping the app (rather than a done callback on its task) saves a loop
        iteration per request. Exceptions other than Exception (SystemExit from a QUIT signal
        handler) propagate: they stop the worker.
        """
        exc: BaseException | None = None
        cancelled = False
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            cancelled = True
        except Exception as error:  # noqa: BLE001 - an application bug must not kill the worker
            exc = error
        finally:
            ctx = self.conn.ctx
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
            if isinstance(exc, ClientDisconnected) or (self.disconnected and isinstance(exc, OSError)):
                log.debug("client %r went away during %s", self.client, request.uri)
            else:
                log.error("Exception in ASGI application (%s %s)", request.method, request.uri,
                          exc_info=exc)
        if self.response_complete or self.disconnected:
            return
        if exc is None and not cancelled:
            log.error("ASGI application returned without completing the response to %s %s",
                      request.method, request.uri)
        self.conn.response_failed(self)

    def discard_head(self) -> bool:
        """Drop a held, unwritten head (to send an error page instead); False if it is out."""
        if self.framer is not None and self._head is None:
            return False
        self._head = None
        return True
