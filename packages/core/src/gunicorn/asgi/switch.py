"""Protocol switches of the ``asgi`` worker (see :mod:`gunicorn.protocols`).

Only built when ``http_protocols`` names a protocol a plugin provides with an ``asyncio``
driver; otherwise the worker hands every connection straight to
:class:`~gunicorn.asgi.connection.HTTPConnection` and none of this runs. A connection changes
protocol at its start, in one of three ways::

    TLS, ALPN id of a plugin protocol ─────────> its driver (Handoff "alpn")
    cleartext, trusted peer, first bytes ──────> a preface: its driver (Handoff "preface");
                                                 else HTTP/1.1 with the bytes read so far
    HTTP/1.1 request, trusted, no body, Upgrade > its driver (Handoff "upgrade"), through
                                                 :func:`upgrade`, called by HTTPConnection

A driver entry is ``proto.asyncio(ctx, transport, handoff)``: it returns a started
``asyncio.Protocol``, which the transport is then switched to. The connection keeps its
``worker_connections`` slot: the new protocol replaces the old one in ``ctx.connections`` and
calls ``ctx.connection_closed`` when it ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gunicorn.asgi.connection import HTTPConnection
from gunicorn.asgi.context import FIRST_REQUEST_WAIT, WorkerContext
from gunicorn.http.events import Request
from gunicorn.http.writer import error_response
from gunicorn.protocols import ConnectionProtocol, Handoff

# Total time a trusted cleartext peer gets to complete a preface it started (bytes trickled one
# by one do not extend it), as on the threaded workers.
PREFACE_BUDGET = 1.0


class ConnectionStart(asyncio.Protocol):
    """The first moments of a connection on a worker offering plugin protocols: ALPN or the
    preface decides who serves it, then the transport is handed over for good."""

    __slots__ = ("ctx", "transport", "made", "deadline", "_buf", "_timer")

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.transport: Any = None
        self.made = False
        self.deadline = 0.0
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self.made = True
        self.transport = transport
        ctx = self.ctx
        pset = ctx.protocols
        assert pset is not None
        ctx.connections.add(self)
        if ctx.is_ssl:
            ssl_object = transport.get_extra_info("ssl_object")
            chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            proto = pset.by_alpn.get(chosen) if chosen else None
            if proto is not None:
                self._switch(proto, Handoff("alpn"))
            elif pset.h1:
                self._http1()
            else:
                ctx.log.debug("closing %r: no ALPN protocol we serve (%r)",
                              transport.get_extra_info("peername"), chosen)
                transport.close()
            return
        if not pset.prefaces or not ctx.forwarded.allows(transport.get_extra_info("peername")):
            self._http1()  # untrusted peers get HTTP/1.1 byte for byte, no sniffing
            return
        self.deadline = ctx.loop.time() + max(ctx.keepalive, FIRST_REQUEST_WAIT)

    def data_received(self, data: bytes) -> None:
        ctx = self.ctx
        assert ctx.protocols is not None
        buf = self._buf = self._buf + data
        proto, partial = ctx.protocols.sniff(buf)
        if proto is not None:
            self._switch(proto, Handoff("preface", buf))
        elif not partial:
            self._fallback()
        elif self._timer is None:
            self.deadline = 0.0
            self._timer = ctx.loop.call_later(PREFACE_BUDGET, self._fallback)

    def eof_received(self) -> bool | None:
        return None  # as on HTTP/1.1, a half-close counts as gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.ctx.connection_closed(self)

    # -- what the worker calls on every connection ----------------------------------------------

    def expire(self) -> None:
        """Nothing arrived within the first-request wait."""
        self.deadline = 0.0
        self.transport.close()

    def shutdown(self) -> None:
        if not self._buf:
            self.transport.close()  # idle: nothing promised yet

    def abort(self) -> None:
        self.transport.abort()

    # -- decisions ------------------------------------------------------------------------------

    def _fallback(self) -> None:
        """The bytes are no preface (or it did not complete in time): HTTP/1.1, or 400."""
        self._cancel_timer()
        ctx = self.ctx
        assert ctx.protocols is not None
        if self.transport.is_closing():
            return
        if not ctx.protocols.h1:
            self.transport.write(error_response(400, "Bad Request", date=ctx.dates.get()))
            self.transport.close()
            return
        self._http1(self._buf)

    def _http1(self, data: bytes = b"") -> None:
        conn = HTTPConnection(self.ctx)
        self.ctx.connections.discard(self)
        self.transport.set_protocol(conn)
        conn.connection_made(self.transport)
        if data:
            conn.data_received(data)

    def _switch(self, proto: ConnectionProtocol, handoff: Handoff) -> None:
        self._cancel_timer()
        self.ctx.connections.discard(self)
        take_over(self.ctx, self.transport, proto, handoff)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def take_over(ctx: WorkerContext, transport: Any, proto: ConnectionProtocol,
              handoff: Handoff) -> None:
    """Hand ``transport`` to ``proto``'s asyncio driver (the caller left ctx.connections)."""
    assert proto.asyncio is not None
    transport.set_protocol(proto.asyncio(ctx, transport, handoff))


def upgrade(conn: HTTPConnection, request: Request) -> bool:
    """``Upgrade: <token>`` for a plugin protocol from a trusted cleartext peer on a request
    without a body (so the request is complete before the switch, RFC 9110 §7.8). True when
    the connection was handed over (``conn`` must then do nothing more)."""
    ctx = conn.ctx
    pset = ctx.protocols
    proto = pset.for_upgrade(request.upgrade) if pset is not None else None
    if proto is None or ctx.is_ssl or request.chunked or (request.content_length or 0) > 0 \
            or not ctx.forwarded.allows(conn.peer):
        return False
    if proto.name == "h2" and request.header("HTTP2-SETTINGS") is None:
        return False  # RFC 7540 §3.2.1: exactly one HTTP2-Settings field is required
    transport = conn.transport
    ctx.connections.discard(conn)
    conn.deadline = 0.0
    if conn.read_paused:
        conn.read_paused = False
        transport.resume_reading()
    take_over(ctx, transport, proto, Handoff("upgrade", conn.parser.trailing_data(), request))
    return True
