"""One client connection of the ``asgi`` worker: an ``asyncio.Protocol`` around the sans-IO
:class:`~gunicorn.http.parser.RequestParser`.

States (anything else is a bug)::

    IDLE --Request--> ACTIVE --response complete--> IDLE (keep-alive; next pipelined request)
      |                 |  \\--body not consumed--> DRAINING --EndOfMessage--> IDLE
      |                 \\--keep-alive refused, error--> CLOSING (write_eof, linger) --> CLOSED
      \\--websocket upgrade--> UPGRADED (bytes go to the WebSocketSession) --> CLOSED

Flow control (:class:`~gunicorn.asgi.flow.ReadFlow`): while a request body is not consumed by
the application, bytes keep landing in the parser's buffer; past ``READ_HIGH_WATER`` unread bytes
reading is paused and resumes as soon as ``receive()`` has taken everything buffered. The same
bound holds pipelined requests back while a response is being produced. In the other direction ``pause_writing`` makes ``send()`` await
``drain()`` after its write, so a client that stops reading suspends the application.

Deadlines (``deadline``, checked by the worker's periodic sweep, not by a timer per request):
keep-alive idleness, the first request of a new connection, a slow request head
(``header_timeout``), the linger after a closing response, and output the client does not take
(``write_timeout`` without a byte taken, while the application waits in ``drain()`` or a closing
transport still holds output; checked every ``WRITE_CHECK`` seconds).
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import Any

from gunicorn.asgi.context import AccessRecord, WorkerContext
from gunicorn.asgi.cycle import RequestCycle
from gunicorn.asgi.flow import ReadFlow
from gunicorn.asgi.messages import DrainWaiter
from gunicorn.asgi.scope import Address, request_id_of, socket_address
from gunicorn.hooks import call_user_hook
from gunicorn.http.errors import IncompleteRequest, RequestError
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.persistence import DRAIN_LIMIT, FIRST_REQUEST_WAIT
from gunicorn.http.writer import error_response
from gunicorn.protocols import Handoff, hand_over

# One http.request message carries at most this much body (more stays for the next receive()).
RECEIVE_MAX = 1 << 20
# How long a closing connection keeps reading (and discarding) after its last response, so that
# the kernel does not answer unread request bytes with a RST that destroys the response.
LINGER = 1.0
# How often output waiting for a slow reader is looked at (progress restarts write_timeout).
WRITE_CHECK = 1.0


class _State(Enum):
    IDLE = 1
    ACTIVE = 2
    DRAINING = 3
    UPGRADED = 4
    CLOSING = 5
    CLOSED = 6


class HTTPConnection(asyncio.Protocol):
    """Serves the HTTP/1.1 requests of one client, one :class:`RequestCycle` at a time."""

    __slots__ = ("ctx", "loop", "transport", "parser", "peer", "client", "server", "state",
                 "cycle", "deadline", "made", "session", "write_paused", "flow",
                 "_drained", "_head_started", "_drain_waiter", "_upgraded_at",
                 "_upgrade_request", "_upgrade_id", "_out_mark", "_out_moved")

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.loop = ctx.loop
        self.transport: Any = None
        self.parser: RequestParser | Any = None
        self.peer: Any = None
        self.client: Address = None
        self.server: Address = None
        self.state = _State.IDLE
        self.cycle: RequestCycle | None = None
        self.deadline = 0.0
        self.made = False
        self.session: Any = None
        self.write_paused = False
        self.flow = ReadFlow()
        self._drained = 0
        self._head_started = False
        self._drain_waiter = DrainWaiter(ctx.loop)
        self._upgraded_at = 0.0
        self._upgrade_request: Request | None = None
        self._upgrade_id: str | None = None  # the websocket's request id, for its access line
        self._out_mark = 0  # output the transport held when last looked at, and when it moved
        self._out_moved = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.made = True
        self.transport = self.flow.transport = transport
        ctx = self.ctx
        peer = self.peer = transport.get_extra_info("peername")
        self.client = socket_address(peer)
        self.server = socket_address(transport.get_extra_info("sockname"))
        self.parser, refused = ctx.parsers.new(peer, ctx.is_ssl)
        if refused:
            ctx.log.warning("uwsgi: refused connection from %r (not in uwsgi_allow_ips)", peer)
        ctx.connections.add(self)
        # Accepted just before a graceful stop (e.g. a TLS handshake that finished since): its
        # request is still served if it comes at once.
        wait = LINGER if ctx.stopping else max(ctx.keepalive, FIRST_REQUEST_WAIT)
        self.deadline = self.loop.time() + wait

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is _State.ACTIVE:
            self.parser.feed(data)
            cycle = self.cycle
            if cycle is not None and cycle.waiting and not cycle.body_done:
                cycle.wake()
            else:
                self.flow.buffered(len(data))
        elif state is _State.IDLE:
            self.parser.feed(data)
            self._next_request()
            if self.state is _State.IDLE and not self._head_started:
                # Part of a head is here: the whole head gets header_timeout, however it
                # trickles in.
                self._head_started = True
                limit = self.ctx.header_timeout
                self.deadline = self.loop.time() + limit if limit > 0 else 0.0
        elif state is _State.UPGRADED:
            self.session.data_received(data)
        elif state is _State.DRAINING:
            self.parser.feed(data)
            self._drain_body()
        # CLOSING: lingering, the bytes are discarded.

    def eof_received(self) -> bool | None:
        if self.state is _State.UPGRADED:
            self.session.eof_received()
            # Keep the transport for the session's closing frames (TLS cannot half-close).
            return not self.ctx.is_ssl
        # A client that half-closes is treated as gone (as uvicorn does): the transport closes
        # and a running application sees http.disconnect.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        previous = self.state
        self.state = _State.CLOSED
        self.deadline = 0.0
        if previous is _State.UPGRADED:
            self.session.connection_lost(exc)
        self.ctx.keepalive_count.busy(self)
        cycle = self.cycle
        if cycle is not None:
            cycle.disconnect()
        self._drain_waiter.release()
        self.ctx.connection_closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.state is _State.UPGRADED:
            self.session.pause_writing()
        elif self.state is _State.ACTIVE:
            self._watch_output()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.state is _State.UPGRADED:
            self.session.resume_writing()
        elif self.state is _State.ACTIVE:
            self.deadline = 0.0
        self._drain_waiter.release()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its low-water mark (or closed)."""
        if self.write_paused and self.state is not _State.CLOSED:
            await self._drain_waiter.wait()

    # -- requests -------------------------------------------------------------------------------

    def _next_request(self) -> None:
        try:
            event = self.parser.next_event()
        except RequestError as exc:
            self._reject(exc)
            return
        if event is NEED_DATA:
            return
        if type(event) is not Request:  # pragma: no cover - the parser guarantees the order
            raise RuntimeError(f"unexpected {event!r} between requests")
        self._start_cycle(event)

    def _start_cycle(self, request: Request) -> None:
        ctx = self.ctx
        ctx.keepalive_count.busy(self)
        self.deadline = 0.0
        self._head_started = False
        if request.upgrade is not None and self._upgrade(request):
            return
        alive = ctx.count_request()
        keep = request.keep_alive and not request.must_close and alive and ctx.keepalive > 0
        cycle = self.cycle = RequestCycle(self, request, self.client, keep)
        self.state = _State.ACTIVE
        if ctx.pre_request is not None:
            call_user_hook(ctx.log, "pre_request hook", ctx.pre_request, ctx.worker, cycle.info)
        task = cycle.task = self.loop.create_task(
            cycle.run(ctx.app, ctx.scopes.http(request, self.client, self.server)))
        ctx.tasks.add(task)

    def read_body(self) -> tuple[bytes, bool]:
        """Body bytes the parser has now, and whether the body is complete. Raises
        RequestError for a malformed body."""
        parser = self.parser
        chunks: list[bytes] = []
        size = 0
        while True:
            event = parser.next_event()
            cls = type(event)
            if cls is Data:
                data = event.data  # type: ignore[union-attr]
                if data:
                    chunks.append(data)
                    size += len(data)
                    if size >= RECEIVE_MAX:
                        return b"".join(chunks), False
                continue
            done = cls is EndOfMessage
            if not done:
                self.flow.consumed()
            if not chunks:
                return b"", done
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), done

    def response_complete(self, cycle: RequestCycle) -> None:
        """The last byte of ``cycle``'s response is written: log it and go on."""
        ctx = self.ctx
        if ctx.logs_requests:
            ctx.log_access(cycle, time.perf_counter() - cycle.started_at)
        if self.state is not _State.ACTIVE or self.cycle is not cycle:
            return
        framer = cycle.framer
        if framer is None or not framer.keep_alive:
            self._close(linger=not cycle.body_done)
            return
        if not cycle.body_done:
            if cycle.continue_pending:
                # The client still waits for 100 Continue: its body will never come.
                self._close()
                return
            self.state = _State.DRAINING
            self._drained = 0
            self._drain_body()
            return
        self._idle()

    def _drain_body(self) -> None:
        """Discard what is left of the request body the application did not read."""
        parser = self.parser
        try:
            while True:
                event = parser.next_event()
                cls = type(event)
                if cls is Data:
                    self._drained += len(event.data)  # type: ignore[union-attr]
                    if self._drained > DRAIN_LIMIT:
                        self._close(linger=True)
                        return
                elif cls is EndOfMessage:
                    self._idle()
                    return
                else:
                    self.flow.resume()
                    return
        except RequestError:
            self._close()

    def _idle(self) -> None:
        self.cycle = None
        self.state = _State.IDLE
        self.flow.consumed()
        if self.ctx.stopping:
            self._stop_idle()
            return
        self.ctx.keepalive_count.idle(self)
        self.deadline = self.loop.time() + self.ctx.keepalive
        if self.parser.trailing_data():  # a pipelined request (cheap when the buffer is empty)
            self._next_request()

    def _stop_idle(self) -> None:
        # A pipelined request already here was promised keep-alive: serve it (its response says
        # Connection: close). Otherwise close now.
        try:
            event = self.parser.next_event()
        except RequestError:
            event = NEED_DATA
        if type(event) is Request:
            self._start_cycle(event)
        else:
            self._close()

    # -- failures -------------------------------------------------------------------------------

    def _reject(self, exc: RequestError) -> None:
        """Answer a request head the parser refused, then close."""
        if isinstance(exc, IncompleteRequest) and exc.received == 0:
            self._close()
            return
        self.ctx.log.debug("invalid request from %r: %s (%s)", self.peer, exc,
                           type(exc).__name__)
        self.transport.write(error_response(exc.status, exc.reason,
                                            date=self.ctx.dates.get()))
        self._close(linger=True)

    def body_error(self, cycle: RequestCycle, exc: RequestError) -> None:
        """The body the application is reading is malformed: answer it if we still can."""
        self.ctx.log.debug("invalid request body from %r: %s (%s)", self.peer, exc,
                           type(exc).__name__)
        if self.state is _State.ACTIVE and self.cycle is cycle:
            self._send_error(cycle, exc.status, exc.reason)
            self._close(linger=True)
        cycle.disconnect()

    def response_failed(self, cycle: RequestCycle) -> None:
        """The application ended without completing its response: 500, or close if the head
        is already out (the client sees a truncated body)."""
        if self.state is not _State.ACTIVE or self.cycle is not cycle:
            return
        self._send_error(cycle, 500, "Internal Server Error")
        self._close(linger=not cycle.body_done)

    def _send_error(self, cycle: RequestCycle, status: int, reason: str) -> None:
        if cycle.discard_head():
            data = error_response(status, reason, date=self.ctx.dates.get())
            cycle.status = f"{status} {reason}"
            cycle.status_code = status
            cycle.headers = []
            cycle.error_bytes = len(data) - data.index(b"\r\n\r\n") - 4
            self.transport.write(data)
        cycle.response_complete = True
        self.ctx.log_access(cycle, time.perf_counter() - cycle.started_at)

    # -- closing --------------------------------------------------------------------------------

    def _close(self, linger: bool = False) -> None:
        if self.state is _State.CLOSING or self.state is _State.CLOSED:
            return
        self.state = _State.CLOSING
        transport = self.transport
        if linger and transport.can_write_eof():
            transport.write_eof()
            self._watch_output()
            self.deadline = self.loop.time() + LINGER
            self.flow.resume()
        else:
            transport.close()  # asyncio writes what it still holds first
            self._watch_output()

    def _watch_output(self) -> None:
        """Output is waiting for the client: it gets write_timeout to take a byte of it."""
        limit = self.ctx.write_timeout
        if limit > 0 and self.transport.get_write_buffer_size():
            now = self.loop.time()
            self._out_mark = self.transport.get_write_buffer_size()
            self._out_moved = now
            self.deadline = now + min(limit, WRITE_CHECK)

    def _output_moving(self, now: float) -> bool:
        """Waiting output was taken since the last look, or has write_timeout left: look again
        later (True); False once the client took nothing for write_timeout."""
        limit = self.ctx.write_timeout
        size = self.transport.get_write_buffer_size()
        if limit <= 0 or not size:
            return False
        if size < self._out_mark:
            self._out_mark = size
            self._out_moved = now
        left = self._out_moved + limit - now
        if left <= 0:
            return False
        self.deadline = now + min(left, WRITE_CHECK)
        return True

    def expire(self) -> None:
        """The deadline passed (keep-alive expiry, slow head, end of a linger, output the
        client does not take)."""
        self.deadline = 0.0
        state = self.state
        if state is _State.IDLE:
            self._close()
            return
        if state is not _State.CLOSING and state is not _State.ACTIVE:
            return
        if self._output_moving(self.loop.time()):
            return
        if self.transport.get_write_buffer_size():
            self.ctx.log.debug("dropping %r: it took no response byte for %ss", self.peer,
                               self.ctx.write_timeout)
        elif state is _State.ACTIVE:
            return  # the output was taken meanwhile: nothing is late
        self.transport.abort()  # ACTIVE: the application sees http.disconnect

    def shutdown(self) -> None:
        """Graceful stop: close if idle, finish the current response first otherwise."""
        state = self.state
        if state is _State.IDLE:
            self._stop_idle()
        elif state is _State.UPGRADED:
            self.session.shutdown()

    def abort(self) -> None:
        """End of the graceful timeout: drop the connection now."""
        if self.state is not _State.CLOSED:
            self.transport.abort()

    def detach(self) -> Any:
        """Give the transport up to another protocol (an ``Upgrade`` switch) and return it:
        this connection leaves the worker's set (the new protocol takes its slot over), has no
        deadline, and reading is on again for the new owner."""
        self.ctx.connections.discard(self)
        self.state = _State.CLOSED  # the transport has a new protocol now
        self.deadline = 0.0
        self.flow.resume()
        return self.transport

    # -- websocket ------------------------------------------------------------------------------

    def _upgrade(self, request: Request) -> bool:
        """Hand the connection to a websocket session (or a plugin protocol such as h2c); False
        to serve the request as HTTP."""
        ctx = self.ctx
        if ctx.protocols is not None:
            proto = ctx.protocols.upgrade(request, is_ssl=ctx.is_ssl,
                                          trusted=ctx.forwarded.allows(self.peer))
            if proto is not None:
                handoff = Handoff("upgrade", self.parser.trailing_data(), request)
                hand_over(self.detach(), proto, ctx, handoff)
                return True
        try:
            # Lazy: wsproto is an optional dependency (the asgi extra).
            from gunicorn.asgi.websocket import WebSocketSession, is_websocket_upgrade
            from gunicorn.asgi.ws_transport import HTTP1Transport
        except ImportError as exc:
            ctx.log.debug("websocket upgrade served as plain HTTP: %s", exc)
            return False
        if not is_websocket_upgrade(request):
            return False
        ctx.count_request()
        scope = ctx.scopes.websocket(request, self.client, self.server)
        session = self.session = WebSocketSession(
            transport=HTTP1Transport(self.transport, request), scope=scope, app=ctx.app,
            cfg=ctx.cfg, log=ctx.log, loop=self.loop, on_close=self._session_closed,
            limits=ctx.websockets)
        self.state = _State.UPGRADED
        self._upgraded_at = time.perf_counter()
        self._upgrade_request = request
        self._upgrade_id = request_id_of(scope)
        self.flow.resume()
        leftover = self.parser.trailing_data()
        if leftover:
            session.data_received(leftover)
        if self.write_paused:
            session.pause_writing()
        task = self.loop.create_task(session.run())
        ctx.add_task(task)
        if ctx.stopping:
            session.shutdown()
        return True

    def _session_closed(self) -> None:
        request = self._upgrade_request
        status = getattr(self.session, "status", None)
        if request is not None and status:
            record = AccessRecord(request, self.client, self.peer, status, self._upgrade_id)
            self.ctx.log_access(record, time.perf_counter() - self._upgraded_at)
        if self.state is _State.UPGRADED and not self.transport.is_closing():
            self.transport.close()
