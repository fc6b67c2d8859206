"""Protocol switches of the ``asgi`` worker (see :mod:`gunicorn.protocols`).

Only built when ``http_protocols`` names a protocol a plugin provides with an ``asyncio``
driver; otherwise the worker hands every connection straight to
:class:`~gunicorn.asgi.connection.HTTPConnection` and none of this runs. A connection changes
protocol at its start, in one of three ways::

    TLS, ALPN id of a plugin protocol ─────────> its driver (Handoff "alpn")
    cleartext, trusted peer, first bytes ──────> a preface: its driver (Handoff "preface");
                                                 else HTTP/1.1 with the bytes read so far
                                                 (no h1 offered: the refusal, then close)
    HTTP/1.1 request, trusted, no body, Upgrade > its driver (Handoff "upgrade"): decided by
                                                 HTTPConnection, which ``detach()``es itself

A driver entry is ``proto.asyncio(ctx, transport, handoff)``: it returns a started
``asyncio.Protocol``, which the transport is then switched to
(:func:`gunicorn.protocols.hand_over`). The connection keeps its
``worker_connections`` slot: the new protocol replaces the old one in ``ctx.connections`` and
calls ``ctx.connection_closed`` when it ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gunicorn.asgi.connection import HTTPConnection
from gunicorn.asgi.context import WorkerContext
from gunicorn.http.persistence import FIRST_REQUEST_WAIT
from gunicorn.protocols import PREFACE_BUDGET, Handoff, Route, Switch, hand_over


class ConnectionStart(asyncio.Protocol):
    """The first moments of a connection on a worker offering plugin protocols: ALPN or the
    preface decides who serves it (the policy is :class:`gunicorn.protocols.ProtocolSet`'s),
    then the transport is handed over for good."""

    __slots__ = ("ctx", "transport", "made", "deadline", "_buf", "_timer")

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.transport: Any = None
        self.made = False
        self.deadline = 0.0
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.made = True
        self.transport = transport
        ctx = self.ctx
        pset = ctx.protocols
        assert pset is not None
        ctx.connections.add(self)
        if ctx.is_ssl:
            ssl_object = transport.get_extra_info("ssl_object")
            chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            switch = pset.after_handshake(chosen)
            if switch.route is Route.SWITCH:
                self._switch(switch, Handoff("alpn"))
            elif switch.route is Route.HTTP1:
                self._http1()
            else:
                ctx.log.debug("closing %r: no ALPN protocol we serve (%r)",
                              transport.get_extra_info("peername"), chosen)
                transport.close()
            return
        if not pset.sniffs(is_ssl=False,
                           trusted=ctx.forwarded.allows(transport.get_extra_info("peername"))):
            self._http1()  # untrusted peers get HTTP/1.1 byte for byte, no sniffing
            return
        self.deadline = ctx.loop.time() + max(ctx.keepalive, FIRST_REQUEST_WAIT)

    def data_received(self, data: bytes) -> None:
        ctx = self.ctx
        assert ctx.protocols is not None
        buf = self._buf = self._buf + data
        switch = ctx.protocols.first_bytes(buf, final=False)
        if switch.route is Route.SWITCH:
            self._switch(switch, Handoff("preface", buf))
        elif switch.route is not Route.MORE:
            self._settle(switch)
        elif self._timer is None:
            self.deadline = 0.0
            self._timer = ctx.loop.call_later(PREFACE_BUDGET, self._budget_spent)

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

    def _budget_spent(self) -> None:
        """A preface began but did not complete in time: it is no preface."""
        self._timer = None
        assert self.ctx.protocols is not None
        self._settle(self.ctx.protocols.first_bytes(self._buf, final=True))

    def _settle(self, switch: Switch) -> None:
        """The bytes are no preface: HTTP/1.1 with them, or the refusal and a close."""
        self._cancel_timer()
        transport = self.transport
        if transport.is_closing():
            return
        if switch.route is Route.HTTP1:
            self._http1(self._buf)
            return
        self.ctx.log.debug("closing %r: no protocol preface", transport.get_extra_info("peername"))
        if switch.refusal:
            transport.write(switch.refusal)
        transport.close()

    def _http1(self, data: bytes = b"") -> None:
        conn = HTTPConnection(self.ctx)
        self.ctx.connections.discard(self)
        self.transport.set_protocol(conn)
        conn.connection_made(self.transport)
        if data:
            conn.data_received(data)

    def _switch(self, switch: Switch, handoff: Handoff) -> None:
        self._cancel_timer()
        self.ctx.connections.discard(self)
        assert switch.protocol is not None
        hand_over(self.transport, switch.protocol, self.ctx, handoff)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
