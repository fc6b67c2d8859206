"""WebSockets over HTTP/2 (RFC 8441) on the asgi worker: one extended CONNECT stream carries
the core's :class:`~gunicorn.asgi.websocket.WebSocketSession`, the same session as on HTTP/1.1
(codec, permessage-deflate, message size limit, pings, write timeout, connection slots)::

    client                                          server
                                        <-- SETTINGS  ENABLE_CONNECT_PROTOCOL = 1  (§3)
    HEADERS  :method CONNECT  :protocol websocket                                  (§4)
             :scheme https  :path /chat  :authority example.com
             sec-websocket-version 13   [sec-websocket-protocol, -extensions]
                                        --> websocket scope, http_version "2"
                                        <-- HEADERS :status 200 [sec-websocket-protocol ...]
    DATA  RFC 6455 frames (masked)      <-> DATA  RFC 6455 frames                  (§5)
    DATA  Close frame                   <-> DATA  Close frame, then END_STREAM
    END_STREAM                                    (§5: END_STREAM is TCP's FIN)
        or RST_STREAM CANCEL            <-> RST_STREAM CANCEL  (§5: an abrupt end; 1006)

:class:`WebSocketStream` is the session's carrier
(:class:`~gunicorn.asgi.ws_transport.WebSocketTransport`):

* handshake answers are HEADERS frames: ``200`` for ``websocket.accept`` (no
  Sec-WebSocket-Accept on HTTP/2, §5), a refusal or the application's denial response with
  its body as DATA; the stream then ends;
* ``write()``: frames leave as DATA within the peer's stream and connection windows and its
  maximum frame size; what the windows (or a socket the client does not read) do not take waits
  here, is :meth:`~WebSocketStream.get_write_buffer_size`, and goes out on WINDOW_UPDATE; above
  ``HIGH_WATER`` waiting bytes the session is paused, which holds the application's ``send()``
  and starts the write timeout;
* reading: DATA goes to the session as it arrives and its credit (WINDOW_UPDATE) goes back once
  the session took it; while the session pauses reading, DATA waits here uncredited, so the
  client stops at the stream window;
* END_STREAM from the client is the session's ``eof_received``; RST_STREAM (or the end of the
  connection) its ``connection_lost``; ``close()`` sends END_STREAM after the waiting output,
  ``abort()`` RST_STREAM CANCEL.

:class:`~gunicorn.http2.aio.H2Protocol` drives it like an http stream (``chunks``/``ended``
then ``wake()``, ``disconnect()``, ``wake_sender()``, ``shutdown()``); the stream hands itself
back with ``stream_done`` once the session is over and the stream has ended or was reset.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gunicorn.asgi.errors import ClientDisconnected, ProtocolViolation
from gunicorn.asgi.scope import request_id_of
from gunicorn.asgi.ws_errors import HandshakeRefused
from gunicorn.asgi.ws_handshake import (
    accept_fields,
    check_opening,
    denial_body,
    denial_head,
    extension_offers,
)
from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.events import Request
from gunicorn.http2.asgi import SEND_SLICE
from gunicorn.http2.errors import StreamClosed
from gunicorn.http2.fields import Fields, response_head
from gunicorn.wsgi.exchange import RequestInfo
from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from gunicorn.asgi.websocket import WebSocketSession
    from gunicorn.http2.aio import H2Protocol
    from gunicorn.http2.session import RequestReady

__all__ = ["WebSocketStream", "websockets_available"]

# Waiting output above which the session's send() waits, and below which it resumes: asyncio's
# defaults for a transport, so both carriers hold an application back alike.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
PROTOCOL = "websocket"  # RFC 8441 §4: the :protocol of a WebSocket


def websockets_available() -> bool:
    """True when this worker can serve the ``websocket`` scope, so that announcing
    SETTINGS_ENABLE_CONNECT_PROTOCOL is honest: wsproto (the core's ``asgi`` extra) imports."""
    try:
        import gunicorn.asgi.websocket  # noqa: F401 - imports wsproto
    except ImportError:
        return False
    return True


class WebSocketStream:
    """One WebSocket on one HTTP/2 stream (see the module docstring).

    Also what the access log and ``post_request`` read (``request``, ``client``, ``info``,
    ``status``, ``status_code``, ``headers``, ``sent``, ``request_id``), as for an http stream.
    """

    __slots__ = ("conn", "sid", "request", "client", "chunks", "ended", "status", "status_code",
                 "headers", "sent", "started_at", "request_id", "info", "_session", "_out",
                 "_out_size", "_offset", "_no_body", "_reading_paused", "_writing_paused",
                 "_wake_handle", "_eof_seen", "_end_wanted", "_ended_local", "_closing",
                 "_gone", "_lost_scheduled", "_session_over", "_released")

    def __init__(self, conn: H2Protocol, sid: int, request: Request) -> None:
        self.conn = conn
        self.sid = sid
        self.request = request
        self.client = conn.client
        self.chunks: collections.deque[bytes] = collections.deque()  # DATA not yet handed on
        self.ended = False            # END_STREAM from the client
        self.status = ""
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = 0
        self.started_at = time.perf_counter()
        self.request_id: str | None = None
        self.info = RequestInfo(request, conn.peer)  # one per WebSocket: made at once
        self._session: WebSocketSession | None = None
        self._out: collections.deque[bytes] = collections.deque()
        self._out_size = 0
        self._offset = 0              # bytes of _out[0] already sent
        self._no_body = False
        self._reading_paused = False
        self._writing_paused = False  # we paused the session's writing
        self._wake_handle: Any = None
        self._eof_seen = False        # END_STREAM handed to the session
        self._end_wanted = False      # END_STREAM once the waiting output is out
        self._ended_local = False     # END_STREAM sent
        self._closing = False
        self._gone = False            # reset (by either side) or the connection ended
        self._lost_scheduled = False
        self._session_over = False
        self._released = False

    @classmethod
    def start(cls, conn: H2Protocol, ev: RequestReady) -> WebSocketStream:
        """Serve the extended CONNECT of ``ev`` with the worker's application."""
        from gunicorn.asgi.websocket import WebSocketSession  # wsproto: the asgi extra

        ctx = conn.ctx
        stream = cls(conn, ev.stream_id, ev.request)
        scope = ctx.scopes.websocket(ev.request, conn.client, conn.server)
        scope["http_version"] = "2"
        stream.request_id = request_id_of(scope)
        session = stream._session = WebSocketSession(
            transport=stream, scope=scope, app=ctx.app, cfg=ctx.cfg, log=ctx.log,
            loop=conn.loop, on_close=stream._session_closed, limits=ctx.websockets)
        ctx.count_request()
        ctx.add_task(conn.loop.create_task(session.run()))
        # A CONNECT that ends its stream at once leaves no stream for frames:
        # check_handshake refuses it (400).
        stream.ended = ev.ended
        if ctx.stopping:
            session.shutdown()
        return stream

    # -- the opening handshake (WebSocketTransport) ------------------------------------------------

    def check_handshake(self) -> None:
        protocol = self.request.upgrade or ""
        if protocol.lower() != PROTOCOL:
            raise HandshakeRefused(501, "Not Implemented",
                                   f"extended CONNECT for {protocol[:32]!r}")
        if self.ended and not self._eof_seen:
            raise HandshakeRefused(400, "Bad Request", "extended CONNECT with END_STREAM")
        check_opening(self.request)

    def extension_offers(self) -> list[str]:
        return extension_offers(self.request)

    def send_accept(self, subprotocol: Any, offered: Iterable[str], headers: Any,
                    extensions: str | None) -> int:
        # RFC 8441 §5: a 2xx answers the CONNECT; Sec-WebSocket-Accept is not used.
        fields = accept_fields(subprotocol, offered, headers, extensions)
        self._head(*self._checked_head("200 OK", fields))
        return 200

    def send_refusal(self, status: int, reason: str,
                     headers: Iterable[tuple[str, str]] = ()) -> None:
        body = f"{status} {reason}\n".encode("latin-1")
        fields = [(name.lower(), value) for name, value in headers]
        fields += [("content-type", "text/plain; charset=utf-8"),
                   ("content-length", str(len(body)))]
        try:
            self._head(status, fields)
        except ClientDisconnected:
            return
        self.write(body)

    def send_denial_start(self, message: dict[str, Any]) -> int:
        code, fields = self._checked_head(*denial_head(message))
        self._no_body = code in (204, 304)
        self._head(code, fields)
        return code

    def send_denial_body(self, message: dict[str, Any]) -> bool:
        body, last = denial_body(message)
        if body and not self._no_body:
            self.write(body)
        return last

    @staticmethod
    def _checked_head(status: str, headers: Fields) -> tuple[int, Fields]:
        try:
            code, fields, _ = response_head(status, headers)
        except InvalidResponseHeader as exc:
            raise ProtocolViolation(str(exc)) from None
        return code, fields

    def _head(self, code: int, fields: Fields) -> None:
        conn = self.conn
        try:
            conn.session.send_head(self.sid, code, fields, conn.ctx.dates.get(), False)
        except StreamClosed as exc:
            self._stream_closed()
            raise ClientDisconnected(str(exc)) from exc
        self.status, self.status_code, self.headers = str(code), code, fields
        conn.want_flush()

    # -- the byte stream (WebSocketTransport) ------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data or self._end_wanted or self._gone:
            return
        self._out.append(data)
        self._out_size += len(data)
        self._push()
        if not self._writing_paused and self._out_size > HIGH_WATER and not self._gone:
            self._writing_paused = True
            self._session_or_fail().pause_writing()

    def write_eof(self) -> None:
        if not self._end_wanted and not self._gone:
            self._end_wanted = True
            if not self._out:
                self._end()

    def can_write_eof(self) -> bool:
        return True  # END_STREAM half-closes the stream; the client may go on sending

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._gone or self._ended_local:
            self._schedule_lost()
            return
        self._end_wanted = True
        if not self._out:
            self._end()  # otherwise _push ends the stream once the output is out

    def abort(self) -> None:
        self._closing = True
        if not self._gone:
            # RFC 8441 §5: an abrupt end (TCP's RST) is RST_STREAM with CANCEL.
            self.conn.session.reset(self.sid, ErrorCodes.CANCEL)
            self.conn.want_flush()
            self._stream_closed()

    def is_closing(self) -> bool:
        return self._closing or self._gone

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            # Later, as asyncio resumes a transport: the session may be in the middle of
            # handing its own early bytes to the codec.
            if self._wake_handle is None and (self.chunks or self.ended):
                self._wake_handle = self.conn.loop.call_soon(self._resume)

    def get_write_buffer_size(self) -> int:
        return self._out_size

    # -- what the connection calls --------------------------------------------------------------

    def wake(self) -> None:
        """DATA or END_STREAM arrived: hand them to the session and give the credit back."""
        if self._reading_paused:
            return
        session = self._session_or_fail()
        h2 = self.conn.session
        chunks = self.chunks
        while chunks and not self._reading_paused:
            data = chunks.popleft()
            session.data_received(data)
            h2.consumed(self.sid, len(data))
        if self.ended and not chunks and not self._eof_seen:
            self._eof_seen = True
            session.eof_received()
        self.conn.want_flush()

    def wake_sender(self) -> None:
        """The windows grew or the socket drained: send what waits."""
        if not self._gone:
            self._push()

    def disconnect(self) -> None:
        """The client reset the stream, or the connection ended."""
        self._stream_closed()

    def shutdown(self) -> None:
        """Graceful stop: the session closes with 1001 (going away)."""
        self._session_or_fail().shutdown()

    # -- internals --------------------------------------------------------------------------------

    def _session_or_fail(self) -> WebSocketSession:
        session = self._session
        assert session is not None, "started by WebSocketStream.start"
        return session

    def _resume(self) -> None:
        self._wake_handle = None
        if not self._released:
            self.wake()

    def _push(self) -> None:
        """Hand waiting output to the HTTP/2 session as far as the windows allow, in slices
        that are written out one by one (a large message never sits whole in frames)."""
        conn = self.conn
        session = conn.session
        out = self._out
        while out and not conn.write_paused:
            head = out[0]
            offset = self._offset
            piece = memoryview(head)[offset:offset + SEND_SLICE]
            try:
                taken = session.send_body(self.sid, piece, False)
            except StreamClosed:
                self._stream_closed()
                return
            self.sent += taken
            self._out_size -= taken
            offset += taken
            if offset == len(head):
                out.popleft()
                offset = 0
            self._offset = offset
            if taken < len(piece):
                break  # a window is spent: WINDOW_UPDATE wakes us
            if out:
                conn.flush_now()  # may pause writing: the loop condition looks again
        if out:
            conn.block(self)
        elif self._end_wanted and not self._ended_local:
            self._end()
        conn.want_flush()
        if self._writing_paused and self._out_size <= LOW_WATER:
            self._writing_paused = False
            self._session_or_fail().resume_writing()

    def _end(self) -> None:
        try:
            self.conn.session.end(self.sid)
        except StreamClosed:
            self._stream_closed()
            return
        self._ended_local = True
        self.conn.want_flush()
        if self._closing:
            self._schedule_lost()
        self._maybe_release()

    def _stream_closed(self) -> None:
        """Nothing more can be sent or received on the stream."""
        if self._gone:
            return
        self._gone = True
        self._out.clear()
        self._out_size = 0
        self.conn.unblock(self)
        self._schedule_lost()
        self._maybe_release()

    def _schedule_lost(self) -> None:
        # As asyncio reports connection_lost: from the loop, never inside the session's call.
        if not self._lost_scheduled:
            self._lost_scheduled = True
            self.conn.loop.call_soon(self._session_or_fail().connection_lost, None)

    def _session_closed(self) -> None:
        """``on_close`` of the session: its run() is over."""
        self._session_over = True
        if not self._closing and not self._gone:
            self.close()
        self._maybe_release()

    def _maybe_release(self) -> None:
        """The stream is done once the session is over and the stream ended or was reset:
        the connection frees it (a client that did not end its side gets RST_STREAM
        NO_ERROR) and logs it."""
        if self._released or not self._session_over:
            return
        if self._gone or (self._ended_local and not self._out):
            self._released = True
            self.conn.stream_done(self)  # type: ignore[arg-type]
