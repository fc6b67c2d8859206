"""The request-handling core shared by the sync and gthread drivers.

A driver accepts sockets and decides *when* a connection is served; this module decides *how*:

    accept ──> RequestHandler.connection(sock, peer) ──> Connection
                                                            │
    driver ──> RequestHandler.serve(conn, idle_timeout) ────┤ per request:
                 │                                          │  parse head -> environ -> app ->
                 └── PARK: idle keep-alive, give it back    │  response -> access log -> drain
                     to the poller; CLOSED: socket closed   ▼

Errors: a request the parser rejects gets its HTTPError status (``error_response``) and the
connection closes; an application exception gets a bare 500 (never the exception text) unless the
response had started, in which case the connection just closes. Either way the worker goes on.
"""

from __future__ import annotations

import enum
import select
import time
from typing import Any

from gunicorn import tls
from gunicorn.hooks import call_user_hook
from gunicorn.http.dates import DateCache
from gunicorn.http.errors import HTTPError, IncompleteRequest
from gunicorn.http.events import NEED_DATA, Request
from gunicorn.http.select import ParserFactory
from gunicorn.http.writer import error_response
from gunicorn.protocols import Handoff, ProtocolSet
from gunicorn.workers.connection import Connection, ConnectionLost
from gunicorn.wsgi.environ import EnvironBuilder, PathOutsideScriptName
from gunicorn.wsgi.errorlog import ErrorLogStream
from gunicorn.wsgi.input import WSGIInput
from gunicorn.wsgi.response import Response

# gthread-compatible bound on the unread body drained before reusing a connection.
DRAIN_LIMIT = 64 * 1024
# Total time a trusted cleartext peer gets to complete a protocol preface it started.
PREFACE_BUDGET = 1.0


class InvalidPreface(HTTPError):
    """A trusted cleartext peer sent neither a protocol preface nor (h1 disabled) HTTP/1.1."""

    status = 400
    reason = "Bad Request"


class Outcome(enum.Enum):
    """What :meth:`RequestHandler.serve` did with the connection."""

    PARK = "park"  # idle keep-alive connection: wait for its next request elsewhere
    CLOSED = "closed"  # the socket is closed
    DETACHED = "detached"  # a protocol driver (HTTP/2) owns the connection now


class RequestInfo:
    """The ``req`` given to pre_request/post_request hooks and the access log.

    A thin view of the parser's :class:`~gunicorn.http.events.Request` plus the peer address.
    """

    __slots__ = ("request", "peer_addr")

    def __init__(self, request: Request, peer_addr: Any) -> None:
        self.request = request
        self.peer_addr = peer_addr

    method = property(lambda self: self.request.method)
    uri = property(lambda self: self.request.uri)
    path = property(lambda self: self.request.path)
    query = property(lambda self: self.request.query)
    fragment = property(lambda self: self.request.fragment)
    version = property(lambda self: self.request.version)
    headers = property(lambda self: self.request.headers)
    scheme = property(lambda self: self.request.scheme)
    remote_addr = property(lambda self: self.peer_addr)


class RequestHandler:
    """Serves HTTP/1.1 requests on connections of one worker.

    ``multithread`` sets ``wsgi.multithread``. ``keepalive`` False makes every response close its
    connection (the sync worker). ``io_timeout`` bounds each wait for a slow peer mid-request.
    """

    def __init__(self, worker: Any, *, multithread: bool, keepalive: bool,
                 io_timeout: float | None, protocols: ProtocolSet | None = None,
                 host: Any = None) -> None:
        self.worker = worker
        cfg = self.cfg = worker.cfg
        self.log = worker.log
        self.app = worker.wsgi
        self.keepalive = keepalive
        self.io_timeout = io_timeout
        self.parsers = ParserFactory(cfg)
        self.options = self.parsers.options
        self.forwarded = self.parsers.forwarded
        self.environ = EnvironBuilder(cfg, multithread=multithread,
                                      errors=ErrorLogStream(self.log))
        # Protocols from plugins (gunicorn.protocols) and the driver host they are handed to;
        # None for the sync worker, which offers HTTP/1.1 only, in ALPN too.
        self.protocols = protocols if protocols else None
        self.host = host
        self.ssl_context = (tls.ssl_context(cfg, protocols.alpn if self.protocols else None)
                            if cfg.is_ssl else None)
        self.sendfile = bool(cfg.sendfile)
        self.max_requests = worker.max_requests or 0
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
        elif fresh and self.protocols is not None and self.protocols.prefaces \
                and not conn.is_ssl and self.forwarded.allows(conn.peer):
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
            if req is Outcome.PARK:
                return Outcome.PARK
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

    # -- protocol switches (gunicorn.protocols) -------------------------------------------------

    def _switch_alpn(self, conn: Connection) -> Outcome | None:
        """After the TLS handshake: hand the connection to the protocol the client chose."""
        protocols = self.protocols
        assert protocols is not None
        chosen = conn.sock.selected_alpn_protocol()  # type: ignore[attr-defined]
        proto = protocols.by_alpn.get(chosen) if chosen else None
        if proto is not None and proto.threaded is not None:
            proto.threaded(self.host, conn, Handoff("alpn"))
            return Outcome.DETACHED
        if not protocols.h1:
            self.log.debug("closing %r: no ALPN protocol we serve (%r)", conn.peer, chosen)
            conn.close()
            return Outcome.CLOSED
        return None

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
                break
            if not data:
                conn.eof = True
                break
            buf += data
            proto, partial = protocols.sniff(buf)
            if proto is not None and proto.threaded is not None:
                proto.threaded(self.host, conn, Handoff("preface", buf))
                return Outcome.DETACHED
            if not partial:
                break
        if not protocols.h1:
            self._reject(conn, InvalidPreface("no protocol preface"))
            return Outcome.CLOSED
        conn.parser.feed(buf)
        if conn.eof:
            conn.parser.feed(b"")
        return None

    def _switch_upgrade(self, conn: Connection, req: Request) -> bool:
        """``Upgrade: <token>`` from a trusted cleartext peer, on a request without a body (so
        the whole request is read before the switch, RFC 9110 §7.8)."""
        protocols = self.protocols
        assert protocols is not None
        proto = protocols.for_upgrade(req.upgrade)
        if proto is None or proto.threaded is None or conn.is_ssl or req.chunked \
                or (req.content_length or 0) > 0 or not self.forwarded.allows(conn.peer):
            return False
        if req.header("HTTP2-SETTINGS") is None and proto.name == "h2":
            return False  # RFC 7540 §3.2.1: exactly one HTTP2-Settings field is required
        proto.threaded(self.host, conn, Handoff("upgrade", conn.parser.trailing_data(), req))
        return True

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
        worker = self.worker
        if worker.nr_lock is None:  # one thread: Worker.count_request inlined, no call
            worker.nr += 1
            served = worker.nr
        else:
            served = worker.count_request()
        # `==`, not `>=`: the count is exact, so exactly one thread meets it and says so.
        if self.max_requests and served == self.max_requests and worker.alive:
            self.log.info("Autorestarting worker after current request.")
            worker.alive = False
        keep = (self.keepalive and req.keep_alive and worker.alive and not req.must_close)
        conn.body_done = False
        conn.continue_pending = req.expect_continue
        resp = conn.response = Response(conn, req.method, req.version, keep, self.dates)
        info = RequestInfo(req, conn.peer)
        environ: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            environ = self.environ.build(req, conn.base_environ, WSGIInput(conn),
                                         resp.send_early_hints)
            self.cfg.pre_request(worker, info)
            result = self.app(environ, resp.start_response)
            try:
                resp.send_result(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ConnectionLost as exc:
            self.log.debug("client %r went away: %s", conn.peer, exc)
            keep = False
        except (HTTPError, PathOutsideScriptName) as exc:
            # A bad body met while the app read wsgi.input, an unframeable response header, or a
            # path outside SCRIPT_NAME.
            self.log.error("error handling %s %s: %s", req.method, req.uri, exc)
            keep = self._fail(conn, resp, exc.status, exc.reason)
        except Exception:  # noqa: BLE001 - an application bug must never take the worker down
            self.log.exception("Error handling request %s", req.uri)
            keep = self._fail(conn, resp, 500, "Internal Server Error")
        else:
            keep = resp.keep_alive
            if resp.body_dropped:
                self.log.debug("%s %s: body of a %s response not sent (none allowed)",
                               req.method, req.uri, resp.status_code)
        finally:
            conn.response = None
        self._after(worker, info, environ, resp, time.perf_counter() - start)
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

    def _fail(self, conn: Connection, resp: Response, status: int, reason: str) -> bool:
        """Send an error page if nothing was sent yet; the connection closes either way."""
        if not resp.headers_sent:
            resp.status = f"{status} {reason}"
            resp.status_code = status
            resp.headers = []
            try:
                conn.send(error_response(status, reason))
            except OSError:
                pass  # the client is gone; the error is already logged
        return False

    def _after(self, worker: Any, info: RequestInfo, environ: dict[str, Any], resp: Response,
               elapsed: float) -> None:
        # logger_class and post_request may be user code: a failure must not break the connection.
        log = self.log
        call_user_hook(log, "access log", log.access, resp, info, environ, elapsed)
        call_user_hook(log, "post_request hook", self.cfg.post_request, worker, info, environ, resp)
