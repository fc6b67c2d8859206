"""One HTTP/1.1 request/response cycle: the ``receive()`` the application awaits, and the
bytes behind the ``send()`` state machine of :class:`gunicorn.asgi.messages.ResponseCycle`.

The head from ``http.response.start`` is held back until the first body message (or the end of
the current loop iteration) so that a head and a small body leave in one ``transport.write``.

Receive side: ``http.request`` messages carry whatever body bytes the parser has; when there are
none, ``receive()`` waits for the connection to feed more (reading is paused while the app does
not consume, see :mod:`gunicorn.asgi.connection`). Once the body is complete, ``receive()``
blocks until the response is complete or the client leaves, then returns ``http.disconnect``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gunicorn.asgi.errors import ClientDisconnected
from gunicorn.asgi.messages import (
    STATUS_LINES,
    ResponseCycle,
    SendState,
    body_bytes,
    decode_headers,
    file_blocks,
    status_line,
)
from gunicorn.http.errors import RequestError
from gunicorn.http.events import Request
from gunicorn.http.writer import ResponseFramer
from gunicorn.instrument.request_id import with_header

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

__all__ = ["CONTINUE", "RequestCycle", "decode_headers", "status_line"]

# The former private names (tests/core/test_asgi_units.py imports them).
_status_line = status_line
_decode_headers = decode_headers


class RequestCycle(ResponseCycle):
    """The state of one request on an :class:`~gunicorn.asgi.connection.HTTPConnection`.

    Doubles as the ``resp`` of the access log and the ``post_request`` hook (``status``,
    ``status_code``, ``headers``, ``sent``); ``info`` is their ``req``. ``body_received``
    counts the request body bytes handed to the application (metrics of chunked bodies).
    """

    __slots__ = ("keep_alive", "framer", "continue_pending", "error_bytes", "_head",
                 "body_received")

    def __init__(self, conn: Any, request: Request, client: Any, keep_alive: bool) -> None:
        ResponseCycle.__init__(self, conn, request, client, time.perf_counter())
        self.keep_alive = keep_alive
        self.framer: ResponseFramer | None = None
        self.continue_pending = request.expect_continue
        self.error_bytes = 0
        self._head: bytes | None = None
        self.body_received = 0

    # -- what the access log reads ------------------------------------------------------------

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
                self.body_received += len(body)
                return {"type": "http.request", "body": body, "more_body": not done}
            await self._wait()

    # -- send ---------------------------------------------------------------------------------

    def _start(self, message: Mapping[str, Any]) -> None:
        code = message["status"]
        status = STATUS_LINES.get(code) if type(code) is int else None
        if status is None:
            status = status_line(code)
        headers, close = decode_headers(message.get("headers", ()))
        echo = self.conn.ctx.echo_header  # request_id_response_header
        if echo is not None:
            headers = with_header(headers, echo, self.request_id)
        framer = ResponseFramer(self.request.method, self.request.version,
                                self.keep_alive and not close and not self.conn.ctx.stopping)
        # Validates the status and every header (InvalidResponseHeader before anything is sent).
        self._head = framer.start(status, headers, date=self.conn.ctx.dates.get())
        self.framer = framer
        self.status = status
        self.status_code = framer.status_code
        self.headers = headers
        self._state = SendState.BODY
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
            body = body_bytes(body)
        out = framer.body(body) if body else b""
        if more_body:
            self._write(out)
            return
        if self._trailers_declared:
            self._state = SendState.TRAILERS
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

    def _early_hints(self, headers: list[tuple[str, str]]) -> None:
        # Validates the headers; empty for HTTP/1.0 clients (RFC 9110 §15.2).
        data = ResponseFramer(self.request.method, self.request.version, False).informational(
            "103 Early Hints", headers)
        if data:
            self.conn.transport.write(data)

    async def _pathsend(self, path: str) -> None:
        framer = self.framer
        assert framer is not None
        conn = self.conn
        for block in file_blocks(path):
            self._write(framer.body(block))
            if conn.write_paused:
                await conn.drain()
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")
        self._write(framer.end())
        self._complete()

    def _complete(self) -> None:
        self._state = SendState.DONE
        self.response_complete = True
        if self._waiter is not None:
            self.wake()
        self.conn.response_complete(self)

    # -- how the application ended -------------------------------------------------------------

    def _failed(self) -> None:
        self.conn.response_failed(self)

    def discard_head(self) -> bool:
        """Drop a held, unwritten head (to send an error page instead); False if it is out."""
        if self.framer is not None and self._head is None:
            return False
        self._head = None
        return True
