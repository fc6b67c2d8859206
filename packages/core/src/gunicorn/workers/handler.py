"""The HTTP/1.1 connection core shared by the sync and gthread drivers.

A driver accepts sockets and decides *when* a connection is served; this module decides *how*:

    accept ──> RequestHandler.connection(sock, peer) ──> Connection
                                                            │
    driver ──> RequestHandler.serve(conn, idle_timeout) ────┤ per request:
                 │                                          │  parse head -> HTTP1Stream ->
                 └── PARK: idle keep-alive, give it back    │  the WSGI exchange -> drain
                     to the poller; CLOSED: socket closed   ▼

Running the application is the protocol-independent :mod:`gunicorn.wsgi.exchange` (HTTP/2
streams use the same ``runner``). Errors: a request the parser rejects gets its HTTPError
status (``error_response``) and the connection closes; an application exception gets a bare
500 (never the exception text) unless the response had started, in which case the connection
just closes. Either way the worker goes on.
"""

from __future__ import annotations

import enum
import select
import time
from typing import Any

from gunicorn import tls
from gunicorn.http.dates import DateCache
from gunicorn.http.errors import HTTPError, IncompleteRequest
from gunicorn.http.events import NEED_DATA, Request
from gunicorn.http.persistence import DRAIN_LIMIT
from gunicorn.http.select import ParserFactory
from gunicorn.http.writer import error_response
from gunicorn.protocols import PREFACE_BUDGET, Handoff, ProtocolSet, Route, Switch
from gunicorn.workers.connection import Connection, ConnectionLost
from gunicorn.wsgi.environ import EnvironBuilder
from gunicorn.wsgi.errorlog import ErrorLogStream
from gunicorn.wsgi.exchange import Exchange, ExchangeRunner
from gunicorn.wsgi.response import HTTP1Stream


class Outcome(enum.Enum):
    """What :meth:`RequestHandler.serve` did with the connection."""

    PARK = "park"  # idle keep-alive connection: wait for its next request elsewhere
    CLOSED = "closed"  # the socket is closed
    DETACHED = "detached"  # a protocol driver (HTTP/2) owns the connection now


class RequestHandler:
    """Serves HTTP/1.1 requests on connections of one worker.

    ``multithread`` sets ``wsgi.multithread``. ``keepalive`` False makes every response close its
    connection (the sync worker). ``io_timeout`` bounds each wait for a slow peer mid-request.
    """

    def __init__(self, worker: Any, *, multithread: bool, keepalive: bool,
                 io_timeout: float | None, protocols: ProtocolSet | None = None,
                 host: Any = None) -> None:
        cfg = self.cfg = worker.cfg
        self.log = worker.log
        self.keepalive = keepalive
        self.io_timeout = io_timeout
        self.parsers = ParserFactory(cfg)
        self.options = self.parsers.options
        self.forwarded = self.parsers.forwarded
        self.environ = EnvironBuilder(cfg, multithread=multithread,
                                      errors=ErrorLogStream(self.log))
        # Runs the application for every request, whatever protocol carries it (HTTP/2 too).
        self.runner = ExchangeRunner(worker, self.environ)
        # Protocols from plugins (gunicorn.protocols) and the driver host they are handed to;
        # None for the sync worker, which offers HTTP/1.1 only, in ALPN too.
        self.protocols = protocols if protocols else None
        self.host = host
        self.ssl_context = (tls.ssl_context(cfg, self.protocols.alpn
                                            if self.protocols is not None else None)
                            if cfg.is_ssl else None)
        self.sendfile = bool(cfg.sendfile)
        self.dates = DateCache()  # races between threads are benign: both values are "now"

    # -- connections --------------------------------------------------------------------------

    def connection(self, sock: Any, peer: Any) -> Connection:
        """Wrap an accepted socket (made non-blocking; TLS-wrapped, not yet handshaken)."""
        sock.setblocking(False)
        is_ssl = self.ssl_context is not None
        if is_ssl:
            sock = tls.wrap(self.ssl_context, sock, self.cfg)  # type: ignore[arg-type]
        parser, refused = self.parsers.new(peer, is_ssl)
        if refused:
            self.log.warning("uwsgi: refused connection from %r (not in uwsgi_allow_ips)", peer)
        return Connection(sock, peer, parser, self.environ.connection_base(sock, peer),
                          is_ssl=is_ssl, io_timeout=self.io_timeout, sendfile=self.sendfile)

    def serve(self, conn: Connection, idle_timeout: float | None, fresh: bool = False) -> Outcome:
        """Serve requests on ``conn`` while it has some to give.

        ``idle_timeout`` is how long to wait for the first byte of the first request: 0 means
        "only what is already readable" (the connection came from a poller), None means forever.
        Further requests are served only if already buffered (pipelining) or readable at once;
        otherwise the connection is returned as PARK. ``fresh``: nothing was read from the
        connection yet (a cleartext protocol preface may be sniffed). DETACHED: a protocol
        driver took the connection over.
        """
        if not conn.handshaken:
            if not self._handshake(conn):
                return Outcome.CLOSED
            if self.protocols is not None:
                switched = self._switch_alpn(conn)
                if switched is not None:
                    return switched
        elif fresh and self.protocols is not None and self.protocols.sniffs(
                is_ssl=conn.is_ssl, trusted=self.forwarded.allows(conn.peer)):
            switched = self._sniff(conn)
            if switched is not None:
                return switched
        probe = True
        while True:
            try:
                req = self._read_head(conn, idle_timeout, probe)
            except HTTPError as exc:
                self._reject(conn, exc)
                return Outcome.CLOSED
            except OSError as exc:  # reset, timeout, TLS failure: the peer is gone
                self.log.debug("closing connection from %r: %s", conn.peer, exc)
                conn.close()
                return Outcome.CLOSED
            if req is None:
                conn.close()
                return Outcome.CLOSED
            if isinstance(req, Outcome):  # PARK: no request under way
                return req
            if req.upgrade is not None and self.protocols is not None \
                    and self._switch_upgrade(conn, req):
                return Outcome.DETACHED
            if not self.handle(conn, req):
                conn.close(linger=not conn.eof and not conn.body_done)
                return Outcome.CLOSED
            probe = False
            idle_timeout = 0

    def _handshake(self, conn: Connection) -> bool:
        try:
            tls.handshake(conn.sock, conn.wait, self.io_timeout)  # type: ignore[arg-type]
        except OSError as exc:  # ssl.SSLError is an OSError
            self.log.debug("TLS handshake with %r failed: %s", conn.peer, exc)
            conn.close()
            return False
        conn.handshaken = True
        return True

    # -- protocol switches (the policy is gunicorn.protocols') ---------------------------------

    def _switch_alpn(self, conn: Connection) -> Outcome | None:
        """After the TLS handshake: hand the connection to the protocol the client chose."""
        protocols = self.protocols
        assert protocols is not None
        chosen = conn.sock.selected_alpn_protocol()  # type: ignore[attr-defined]
        switch = protocols.after_handshake(chosen)
        if switch.route is Route.HTTP1:
            return None
        if switch.route is Route.SWITCH:
            return self._hand_over(conn, switch, Handoff("alpn"))
        self.log.debug("closing %r: no ALPN protocol we serve (%r)", conn.peer, chosen)
        conn.close()
        return Outcome.CLOSED

    def _sniff(self, conn: Connection) -> Outcome | None:
        """First bytes of a trusted cleartext connection: a protocol preface (prior knowledge)
        or HTTP/1.1. The wait for a partial preface has one total budget (not per read), so a
        peer trickling bytes cannot hold a thread longer."""
        protocols = self.protocols
        assert protocols is not None
        buf = b""
        deadline = time.monotonic() + PREFACE_BUDGET
        while True:
            data = conn.recv_nowait()
            if data is None:
                left = deadline - time.monotonic()
                if left > 0 and conn.wait(select.POLLIN, left):
                    continue
                if not buf:
                    return None  # nothing yet: the ordinary path waits or parks
            elif not data:
                conn.eof = True
            else:
                buf += data
            switch = protocols.first_bytes(buf, final=not data)
            if switch.route is not Route.MORE:
                break
        if switch.route is Route.SWITCH:
            return self._hand_over(conn, switch, Handoff("preface", buf))
        if switch.route is Route.REFUSE:
            self.log.debug("closing %r: no protocol preface", conn.peer)
            try:
                if switch.refusal:
                    conn.send(switch.refusal)
            except OSError:
                pass  # the peer is gone: nothing else to tell it
            conn.close(linger=True)
            return Outcome.CLOSED
        conn.parser.feed(buf)
        if conn.eof:
            conn.parser.feed(b"")
        return None

    def _switch_upgrade(self, conn: Connection, req: Request) -> bool:
        """``Upgrade: <token>`` naming a protocol that the policy lets this request switch to."""
        protocols = self.protocols
        assert protocols is not None
        proto = protocols.upgrade(req, is_ssl=conn.is_ssl, trusted=self.forwarded.allows(conn.peer))
        if proto is None:
            return False
        self._hand_over(conn, Switch(Route.SWITCH, proto),
                        Handoff("upgrade", conn.parser.trailing_data(), req))
        return True

    def _hand_over(self, conn: Connection, switch: Switch, handoff: Handoff) -> Outcome:
        proto = switch.protocol
        assert proto is not None and proto.threaded is not None  # ProtocolSet("threaded")
        proto.threaded(self.host, conn, handoff)
        return Outcome.DETACHED

    def _read_head(self, conn: Connection, idle_timeout: float | None,
                   probe: bool) -> Request | Outcome | None:
        """The next request head; PARK when none is under way; None when the peer left."""
        parser = conn.parser
        while True:
            try:
                event = parser.next_event()
            except IncompleteRequest as exc:
                if exc.received == 0:
                    return None  # an idle connection closed: nothing is owed
                raise
            if event is NEED_DATA:
                if conn.eof:
                    return None
                if parser.trailing_data():
                    # Part of a head is here: the whole head has one deadline (header_timeout),
                    # however slowly it trickles in. From a poller (idle_timeout 0) the
                    # connection goes back to it to wait (PARK), so no thread is held.
                    wait = conn.head_wait()
                    if idle_timeout != 0:
                        conn.fill(wait)
                        continue
                elif idle_timeout != 0:
                    try:
                        conn.fill(idle_timeout)
                    except ConnectionLost:  # idle too long: close quietly, like a keep-alive expiry
                        return None
                    continue
                elif not probe and not conn.pending():
                    # Nothing buffered: go back to the poller without a recv that would EAGAIN.
                    return Outcome.PARK
                data = conn.recv_nowait()
                if data is None:
                    return Outcome.PARK
                if not data:
                    conn.eof = True
                parser.feed(data)
                continue
            if type(event) is Request:
                conn.head_deadline = 0.0
                if conn.out:
                    conn.flush()  # a request starts once the responses before it are written
                return event
            raise RuntimeError(f"unexpected {event!r} between requests")  # pragma: no cover

    def _reject(self, conn: Connection, exc: HTTPError) -> None:
        """Answer a request the parser refused, then close."""
        if isinstance(exc, IncompleteRequest) and exc.received == 0:
            conn.close()
            return
        self.log.debug("invalid request from %r: %s (%s)", conn.peer, exc, type(exc).__name__)
        try:
            conn.send(error_response(exc.status, exc.reason))
        except OSError:
            pass  # the peer is gone: nothing else to tell it
        conn.close(linger=True)

    # -- one request --------------------------------------------------------------------------

    def handle(self, conn: Connection, req: Request) -> bool:
        """Run the application for ``req``; True when the connection may serve another request."""
        alive = self.runner.count_request()
        conn.body_done = False
        conn.continue_pending = req.expect_continue
        stream = HTTP1Stream(conn, req, self.keepalive and req.keep_alive and alive
                             and not req.must_close, self.dates)
        # The connection answers 100-continue only while the response head is not out.
        conn.response = exchange = Exchange(stream, req)
        try:
            self.runner.run(exchange, conn.base_environ)
        finally:
            conn.response = None
        keep = stream.keep_alive
        if not conn.body_done:
            try:
                if keep:
                    keep = conn.drain_body(DRAIN_LIMIT)
                else:
                    # Closing: only learn whether unread bytes remain (then the close lingers).
                    conn.skip_buffered_body()
            except (HTTPError, OSError):
                keep = False
        # Not `keep and worker.alive`: a response that promised keep-alive must not be followed
        # by a close the client cannot expect (its next request may already be on the wire); a
        # stopping worker parks the connection and its drain answers with Connection: close.
        return keep

