"""ASGI on one HTTP/2 stream: the ``receive``/``send`` of its application.

The asyncio driver (:mod:`gunicorn.http2.aio`) makes one :class:`Stream` per request and runs
``Stream.run(app, scope)`` as a task. The ``send()`` state machine is
:class:`gunicorn.asgi.messages.ResponseCycle`'s; here is what each step puts on the stream::

    START    --http.response.informational (103)--> START      HEADERS :status 103
    START    --http.response.start-->               BODY       head held until a body message
    BODY     --http.response.body (more_body)-->    BODY       DATA within the peer's windows
    BODY     --http.response.pathsend-->            DONE       the file as DATA frames
    BODY     --http.response.body (last)-->         DONE       END_STREAM on the last frame,
                                                    or TRAILERS if start had trailers=True
    TRAILERS --http.response.trailers (more)-->     TRAILERS
    TRAILERS --http.response.trailers (last)-->     DONE       HEADERS carrying END_STREAM

Status and headers are validated by the HTTP/1.1 rules (:func:`gunicorn.asgi.messages.status_line`,
:func:`~gunicorn.asgi.messages.decode_headers`, :func:`gunicorn.http.writer.check_head`) and
turned into HTTP/2 fields by :mod:`gunicorn.http2.fields`, as for WSGI. Receive side:
``http.request`` messages carry the DATA received so far; taking them returns the credit to
the peer. After the body (or once the peer reset the stream), ``receive()`` waits for the end of
the response or of the client and returns ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from typing import Any, Protocol

from gunicorn.asgi.errors import ClientDisconnected, ProtocolViolation
from gunicorn.asgi.messages import (
    ResponseCycle,
    SendState,
    body_bytes,
    decode_headers,
    file_blocks,
    status_line,
)
from gunicorn.http.events import Request
from gunicorn.http2.errors import HTTP2Error, StreamClosed
from gunicorn.http2.fields import informational_head, response_head, trailer_fields
from gunicorn.http2.session import Session

# Larger bodies are handed to the session in slices of this size, each followed by a write, so
# that the frames waiting in memory stay bounded while the peer is slow to read.
SEND_SLICE = 65536
_DISCONNECT: Mapping[str, str] = {"type": "http.disconnect"}


class StreamHost(Protocol):
    """What a stream needs from its connection (:class:`gunicorn.http2.aio.H2Protocol`)."""

    ctx: Any
    loop: asyncio.AbstractEventLoop
    session: Session
    peer: Any
    client: Any
    write_paused: bool

    def hold(self, stream: Stream) -> None: ...
    def want_flush(self) -> None: ...
    def flush_now(self) -> None: ...
    def block(self, stream: Stream) -> None: ...
    def unblock(self, stream: Stream) -> None: ...
    async def drain(self) -> None: ...
    def stream_done(self, stream: Stream) -> None: ...


class Stream(ResponseCycle):
    """One request: the ASGI ``receive``/``send`` of its application, and what the access log
    and ``post_request`` read (``request``, ``client``, ``info``, ``status``, ``status_code``,
    ``headers``, ``sent``)."""

    __slots__ = ("sid", "ended", "chunks", "sent", "_head", "_length", "_no_body",
                 "_send_waiter")

    def __init__(self, conn: StreamHost, sid: int, request: Request, ended: bool) -> None:
        ResponseCycle.__init__(self, conn, request, conn.client, time.perf_counter())
        self.sid = sid
        self.ended = ended                    # the request body is complete
        self.chunks: collections.deque[bytes] = collections.deque()
        # body_done (inherited): the app received the last http.request
        self.sent = 0
        self._head: tuple[int, list[tuple[str, str]]] | None = None
        self._length: int | None = None
        self._no_body = False
        self._send_waiter: asyncio.Future[None] | None = None

    # -- receive ------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected or self.response_complete:
                return dict(_DISCONNECT)
            if not self.body_done:
                chunks = self.chunks
                if chunks:
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    conn = self.conn
                    conn.session.consumed(self.sid, len(data))  # credit as the app reads
                    conn.want_flush()
                    self.body_done = done = self.ended
                    return {"type": "http.request", "body": data, "more_body": not done}
                if self.ended:
                    self.body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            # Nothing to hand out yet: wait for body bytes, the end of the response, or the
            # client leaving.
            await self._wait()

    def wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def disconnect(self) -> None:
        """The peer reset the stream or the connection ended: ``http.disconnect`` now,
        cancellation after ``asgi_disconnect_grace_period``."""
        ResponseCycle.disconnect(self)
        self.wake_sender()

    def shutdown(self) -> None:
        """Graceful stop: an http response just finishes (a WebSocket stream closes)."""

    # -- send ---------------------------------------------------------------------------------

    def _start(self, message: Mapping[str, Any]) -> None:
        code = message["status"]
        status = status_line(code)
        headers, _ = decode_headers(message.get("headers", ()))
        # The HTTP/1.1 rules validate status and fields (InvalidResponseHeader before anything
        # is sent, so the app's error still becomes a clean 500).
        code, fields, length = response_head(status, headers)
        self._no_body = self.request.method == "HEAD" or code in (204, 304)
        self._length = None if self._no_body else length
        self._head = (code, fields)
        self.status, self.status_code, self.headers = status, code, headers
        self._trailers_declared = bool(message.get("trailers", False))
        self._state = SendState.BODY
        self.conn.hold(self)  # sent with the first body message, or at the end of this turn

    def release_head(self, end: bool = False) -> None:
        head = self._head
        if head is None or self.disconnected:
            return
        self._head = None
        conn = self.conn
        conn.session.send_head(self.sid, head[0], head[1], conn.ctx.dates.get(), end)

    def _early_hints(self, headers: list[tuple[str, str]]) -> None:
        code, fields = informational_head("103 Early Hints", headers)
        self._call(self.conn.session.send_informational, self.sid, code, fields)
        self.conn.want_flush()

    async def _body(self, body: Any, more: bool) -> None:
        if type(body) is not bytes:
            body = body_bytes(body)
        if body:
            if self._no_body:
                body = b""
            elif self._length is not None and len(body) > self._length - self.sent:
                body = body[:self._length - self.sent]
        short = not more and self._length is not None and self.sent + len(body) < self._length
        end = not more and not short and not self._trailers_declared
        if self._head is not None:
            self._call(self.release_head, end and not body)
            if end and not body:
                self._complete()
                self.conn.want_flush()
                return
        if body or end:
            await self._send_data(body, end)
        if not more:
            if short:
                # Never END_STREAM on a truncated body: Session.finish resets the stream.
                self.conn.ctx.log.error("%s %s: body shorter than its Content-Length",
                                        self.request.method, self.request.uri)
            if self._trailers_declared:
                self._state = SendState.TRAILERS
                if short:
                    self.response_complete = True
                    self.wake()
            else:
                self._complete()
        self.conn.want_flush()

    async def _send_data(self, data: bytes, end: bool) -> None:
        conn = self.conn
        session = conn.session
        view = memoryview(data)
        while True:
            piece = view[:SEND_SLICE]
            last = len(view) <= SEND_SLICE
            taken = self._call(session.send_body, self.sid, piece, end and last)
            self.sent += taken
            view = view[taken:]
            if not view:
                break
            conn.flush_now()
            if taken < len(piece):  # the peer's window is spent: wait for WINDOW_UPDATE
                waiter = self._send_waiter = conn.loop.create_future()
                conn.block(self)
                try:
                    await waiter
                finally:
                    self._send_waiter = None
                    conn.unblock(self)
            if conn.write_paused:
                await conn.drain()
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")
        if conn.write_paused:
            conn.flush_now()
            await conn.drain()
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")

    async def _pathsend(self, path: str) -> None:
        for block in file_blocks(path):
            await self._body(block, True)
        await self._body(b"", False)

    def _trailer_message(self, message: Mapping[str, Any]) -> None:
        headers, _ = decode_headers(message.get("headers", ()))
        try:
            # Connection-specific names are dropped (RFC 9113 §8.2.2), as in the head.
            self._trailers.extend(trailer_fields(headers))
        except HTTP2Error as exc:
            raise ProtocolViolation(str(exc)) from exc
        if message.get("more_trailers", False):
            return
        if not self.response_complete:  # a short body is reset, not ended with trailers
            self._call(self.conn.session.end, self.sid, self._trailers or None)
            self._complete()
        self._state = SendState.DONE
        self.conn.want_flush()

    def _call(self, method: Any, *args: Any) -> Any:
        """A session call on behalf of the app: a gone stream is the app's ClientDisconnected."""
        try:
            return method(*args)
        except StreamClosed as exc:
            raise ClientDisconnected(str(exc)) from exc

    def _complete(self) -> None:
        self._state = SendState.DONE
        self.response_complete = True
        self.wake()

    # -- the application ----------------------------------------------------------------------

    async def run(self, app: Any, scope: dict[str, Any]) -> None:
        """Run the application for this stream, then free the stream however it ended."""
        try:
            if self.disconnected:
                # Reset (or the connection lost) before the task's first step: the
                # application never sees it.
                self.conn.ctx.task_finished(self.task)
                return
            await ResponseCycle.run(self, app, scope)
        finally:
            self.conn.stream_done(self)

    def _failed(self) -> None:
        if self._state is SendState.START or self._head is not None:
            self._head = None  # a held head is replaced by the error page
            self._error_page(500, "Internal Server Error")
        # Otherwise the head is out: Session.finish resets the stream.

    def _error_page(self, status: int, reason: str) -> None:
        body = f"{status} {reason}\n".encode("latin-1")
        session = self.conn.session
        try:
            session.send_head(self.sid, status, [("content-type", "text/plain"),
                                                 ("content-length", str(len(body)))],
                              self.conn.ctx.dates.get(), False)
            session.send_body(self.sid, body, True)
        except StreamClosed:
            return
        self.status, self.status_code, self.headers = f"{status} {reason}", status, []
        self.sent = len(body)
        self._complete()
