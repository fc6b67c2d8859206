"""One WSGI request/response exchange (PEP 3333), whatever protocol carries it.

HTTP/1.1 (the sync and gthread workers, and uwsgi behind a front end), HTTP/2 (gthread) and any
later driver run an application the same way; only the *stream* that carries the request
differs, behind the :class:`ExchangeStream` protocol::

    driver ──> runner.count_request()                     max_requests; False: stop keeping alive
       │       exchange = Exchange(stream, request)        stream: this connection's framing
       └─────> runner.run(exchange, base_environ, extra)
                 environ ─> pre_request ─> app(environ, exchange.start_response)
                 ─> the body (a list in one send, an iterable chunk by chunk, sendfile) ─> close()
                 errors: a bare 4xx/500 page if nothing was sent, else the response is aborted
                 ─> stream.finished() ─> access log + post_request
               (or a PausedExchange: the stream keeps output its peer cannot take yet;
                paused.resume() goes on with the iterable once it can, on any thread)

The response rules live here, once, in :class:`Exchange`:

* ``start_response`` may be called again only with ``exc_info``; once the head is on the wire
  that call re-raises the application's exception (PEP 3333);
* the head is held until the first non-empty body chunk (or the end of the body), so a head and
  a small body leave together;
* HEAD requests and 1xx, 204 and 304 responses carry no body (RFC 9110 §6.4.1); what the
  application wrote is dropped (``body_dropped``, logged at debug);
* a body longer than its Content-Length is cut; a shorter one is *aborted* (the HTTP/1.1
  connection closes, the HTTP/2 stream is reset) so the client cannot take it for complete;
* ``write()`` or returning before ``start_response`` raises :class:`ResponseNotStarted`;
* ``wsgi.early_hints`` sends a 103 before the final head, and nothing once it is out;
* a :class:`~gunicorn.wsgi.filewrapper.FileWrapper` of a real file goes through ``sendfile``
  when the stream can and the length is known;
* a stream whose ``send`` returns True kept output its peer cannot take yet (HTTP/2 flow
  control): chunks of an iterable body are then no longer pulled, and ``runner.run`` returns a
  :class:`PausedExchange` that the driver resumes when the stream can take more, so no thread
  waits for a slow peer between chunks.

Framing is the stream's: HTTP/1.1 bytes (:class:`gunicorn.wsgi.response.HTTP1Stream`) or
HTTP/2 frames (``gunicorn.http2.wsgi``). :class:`RequestInfo` is the ``req`` that the
pre_request/post_request hooks and the access log get, for ASGI requests too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from gunicorn.glogging import records_every_request
from gunicorn.hooks import call_user_hook
from gunicorn.http.errors import HTTPError
from gunicorn.http.events import Request
from gunicorn.http.writer import field_lines
from gunicorn.instrument.live import worker_gauges
from gunicorn.instrument.request_id import ENVIRON_KEY as REQUEST_ID_KEY
from gunicorn.instrument.request_id import response_header, with_header
from gunicorn.wsgi.environ import EnvironBuilder, PathOutsideScriptName
from gunicorn.wsgi.filewrapper import FileWrapper
from gunicorn.wsgi.input import WSGIInput

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Fields = list[tuple[str, str]]


class ClientGone(OSError):
    """The peer of an exchange went away (closed, reset, stopped reading or sending in time):
    the response cannot be delivered. Streams raise it (or a subclass) from any I/O."""


class ResponseNotStarted(RuntimeError):
    """The application returned (or wrote) without calling start_response first."""


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


class ExchangeStream(Protocol):
    """What an :class:`Exchange` needs from the connection or stream carrying one request.

    The stream holds the protocol's framing; the exchange decides what is sent and when. Any
    I/O method raises :class:`ClientGone` when the peer is gone. The exchange calls ``start``
    before any ``send``, and ``send`` (or ``sendfile``) before ``end``.
    """

    peer: Any  # the socket peer address (for logs and RequestInfo)
    can_sendfile: bool  # ``sendfile`` may be used (plain sockets; never HTTP/2 or TLS)

    def read_body(self) -> bytes:
        """The next chunk of the request body (never empty), ``b""`` once it ended."""
        ...

    def start(self, status: str, headers: Fields) -> tuple[int, int | None]:
        """Validate and encode a final response head and hold it (a second call replaces it).

        Returns the status code and the Content-Length (None when absent, or when the status
        may not have one). Raises InvalidResponseHeader with nothing sent.
        """
        ...

    def send(self, data: bytes, end: bool) -> bool | None:
        """Send the held head (if not sent yet) and ``data``; ``end``: the body is complete.

        Returns True when part of it was kept for later because the peer cannot take it yet
        (the stream sends it on its own once it can): the exchange then pulls no more chunks
        from an iterable body until resumed. None or False: all of it is on its way.
        """
        ...

    def send_informational(self, status: str, headers: Fields) -> None:
        """Send an interim response (``103 Early Hints``) now, before the final head."""
        ...

    def end(self, trailers: Fields) -> None:
        """Complete the body with trailer fields (already validated), as the protocol can."""
        ...

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send the held head, then ``count`` bytes of ``fd`` from ``offset`` as the whole body;
        return the number of body bytes sent (fewer: the file was shorter)."""
        ...

    def send_error(self, status: int, reason: str) -> int:
        """Drop a held head and send a bare error page instead (never exception text); return
        its body size. Only called while nothing was sent."""
        ...

    def abort(self) -> None:
        """The response cannot be completed (cut short, or failed after its head went out):
        end it so the client sees it incomplete (close the connection, reset the stream)."""
        ...

    def finished(self) -> None:
        """The application is done with the stream (called once, even on an error)."""
        ...


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")


class Exchange:
    """The response to one request: ``start_response`` is the callable given to the app.

    Doubles as the ``resp`` of the access log and the post_request hook: ``status``,
    ``status_code``, ``headers`` and ``sent`` (body bytes sent, an error page's included).
    ``echo``: a ``(name, value)`` header added to the application's response head (the
    request id, with ``request_id_response_header``) unless it set that header itself.
    """

    __slots__ = ("stream", "request", "status", "status_code", "headers", "sent", "_started",
                 "_held", "_length", "_no_body", "_trailers", "body_dropped", "truncated",
                 "echo")

    def __init__(self, stream: ExchangeStream, request: Request) -> None:
        self.stream = stream
        self.request = request
        self.status = ""
        self.status_code = 0
        self.headers: Fields = []
        self.sent = 0
        self._started = False  # start_response was called
        self._held = False  # ... and its head is not on the wire yet
        self._length: int | None = None  # Content-Length of a body that may be sent
        self._no_body = False
        self._trailers: Fields | None = None
        self.body_dropped = False  # the app wrote a body the method or status forbids
        self.truncated = False  # the body was shorter than its Content-Length
        self.echo: tuple[str, str] | None = None

    @property
    def headers_sent(self) -> bool:
        return self._started and not self._held

    # -- PEP 3333 -------------------------------------------------------------------------------

    def start_response(self, status: str, headers: Fields,
                       exc_info: ExcInfo | None = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._started and not self._held:
                    # PEP 3333: too late to change the status, let the server abort the response.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self._started:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"status must be a str, not {type(status).__name__}")
        if not isinstance(headers, list):
            raise TypeError(f"headers must be a list, not {type(headers).__name__}")
        if self.echo is not None:
            headers = with_header(headers, *self.echo)
        # Validates status and headers (InvalidResponseHeader, so the runner can still 500).
        code, length = self.stream.start(status, headers)
        no_body = self._no_body = (self.request.method == "HEAD" or code < 200 or code == 204
                                   or code == 304)
        self._length = None if no_body else length
        self.status = status
        self.status_code = code
        self.headers = headers
        self._started = self._held = True
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable."""
        self._write(data)

    def _write(self, data: bytes) -> bool | None:
        """One chunk of the body; True: the stream kept part of it for later (see
        :meth:`ExchangeStream.send`)."""
        if not self._started:
            raise ResponseNotStarted("write() before start_response()")
        if type(data) is not bytes:
            data = _as_bytes(data)
        if data:
            return self._send(data, False)
        return None

    def send_early_hints(self, headers: Fields) -> None:
        """``wsgi.early_hints``: a 103 before the final response (RFC 8297), never after."""
        if self._started and not self._held:
            return  # too late: the final response is on its way
        self.stream.send_informational("103 Early Hints", headers)

    def set_trailers(self, trailers: Iterable[tuple[str, str]]) -> None:
        """Trailer fields sent after the body (where the protocol has them: HTTP/2's
        ``gunicorn.http2.send_trailers``). Raises InvalidResponseHeader for a bad field."""
        self._trailers = [(name, value) for name, _, value in field_lines(list(trailers))]

    # -- sending the iterable -------------------------------------------------------------------

    def send_result(self, result: Iterable[bytes]) -> Iterator[bytes] | None:
        """Send everything the application returned, then end the body.

        A list goes in one ``send`` together with the head; a FileWrapper through sendfile if
        it can; any other iterable chunk by chunk. Closing ``result`` is the caller's job.
        Returns None when the body is complete, or the iterator to go on with
        (:meth:`send_chunks`) when the stream asked to pause.
        """
        if type(result) is list:
            if not self._started:
                raise ResponseNotStarted("the application returned without calling start_response")
            body = result[0] if len(result) == 1 else b"".join(result)  # TypeError for a str
            if type(body) is not bytes:
                body = _as_bytes(body)
            self._send(body, True)
            return None
        if type(result) is FileWrapper and self._sendfile(result):
            return None
        return self.send_chunks(iter(result))

    def send_chunks(self, chunks: Iterator[bytes]) -> Iterator[bytes] | None:
        """Send the chunks of an iterable body, then end it; return ``chunks`` instead, not
        exhausted, as soon as the stream kept output for later (resume with this method)."""
        write = self._write
        for chunk in chunks:
            if write(chunk):
                return chunks
        self.finish()
        return None

    def finish(self) -> None:
        """End the body (the head goes out now if no chunk took it)."""
        if not self._started:
            raise ResponseNotStarted("the application returned without calling start_response")
        self._send(b"", True)

    def _send(self, data: bytes, end: bool) -> bool | None:
        if data:
            if self._no_body:
                self.body_dropped = True
                data = b""
            elif self._length is not None and len(data) > self._length - self.sent:
                data = data[:self._length - self.sent]
        held = self._held
        if not data and not end and not held:
            return None
        self._held = False
        self.sent += len(data)
        stream = self.stream
        if end:
            length = self._length
            if length is not None and self.sent < length:
                self.truncated = True
                if data or held:
                    stream.send(data, False)
                stream.abort()
                return None
            if self._trailers is not None:
                if data or held:
                    stream.send(data, False)
                stream.end(self._trailers)
                return None
        return stream.send(data, end)

    def _sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a file with ``os.sendfile``; False when the generic path must be used."""
        length = self._length
        if not self._started or length is None or not self.stream.can_sendfile:
            return False
        fd = wrapper.fileno()
        if fd is None:
            return False
        try:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            available = os.fstat(fd).st_size - offset
        except OSError:
            return False
        self._held = False
        sent = self.stream.sendfile(fd, offset, min(length, max(available, 0)))
        self.sent += sent
        if sent < length:
            self.truncated = True
            self.stream.abort()
        return True

    # -- failures -------------------------------------------------------------------------------

    def fail(self, status: int, reason: str) -> None:
        """The application failed: a bare error page if nothing was sent yet, else abort."""
        if self._started and not self._held:
            self.stream.abort()
            return
        self._started, self._held = True, False
        self.status, self.status_code, self.headers = f"{status} {reason}", status, []
        try:
            self.sent = self.stream.send_error(status, reason)
        except OSError:
            pass  # the client is gone; the error is already logged


class ExchangeRunner:
    """Runs the application of one worker for each exchange its drivers hand it.

    ``environ`` builds the PEP 3333 environ (per worker). Thread-safe: the state of a request
    lives in its :class:`Exchange`, and the request counter goes through the worker's lock.
    """

    __slots__ = ("worker", "cfg", "log", "app", "environ", "max_requests", "pre_request",
                 "post_request", "custom_access", "in_flight", "echo_header")

    def __init__(self, worker: Any, environ: EnvironBuilder) -> None:
        cfg = self.cfg = worker.cfg
        self.worker = worker
        self.log = worker.log
        self.app = worker.wsgi
        self.environ = environ
        self.max_requests = worker.max_requests or 0
        # The default hooks do nothing: skip building their arguments on every request.
        self.pre_request = None if is_default_setting(cfg, "pre_request") else cfg.pre_request
        self.post_request = None if is_default_setting(cfg, "post_request") else cfg.post_request
        self.custom_access = records_every_request(self.log)
        # gunicorn_requests_in_flight (a no-op object when metrics are off).
        self.in_flight = worker_gauges(self.log).in_flight
        self.echo_header = response_header(cfg)

    def count_request(self) -> bool:
        """Count one request; False once the worker is stopping (max_requests or a signal)."""
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
        return bool(worker.alive)

    def run(self, exchange: Exchange, base_environ: dict[str, Any],
            extra: dict[str, Any] | None = None) -> PausedExchange | None:
        """Serve ``exchange``: environ (``base_environ`` of the connection, then ``extra``),
        pre_request, the application, its body, its ``close()``; then the access log and
        post_request. Only BaseExceptions (SystemExit from a QUIT) propagate.

        Returns None, or a :class:`PausedExchange` when the stream asked to pause an iterable
        body (:meth:`ExchangeStream.send` returned True): the rest (the body, ``close()``,
        ``finished()``, the log) happens in its ``resume()``.
        """
        stream = exchange.stream
        request = exchange.request
        logs = self._logs()
        pre_request = self.pre_request
        info = RequestInfo(request, stream.peer) if logs or pre_request is not None else None
        environ: dict[str, Any] = {}
        start = time.perf_counter()
        result: Any = None
        rest: Iterator[bytes] | None = None
        in_flight = self.in_flight
        in_flight.inc()
        try:
            try:
                environ = self.environ.build(request, base_environ, WSGIInput(stream),
                                             exchange.send_early_hints)
                if extra:
                    environ.update(extra)
                if self.echo_header is not None:
                    request_id = environ.get(REQUEST_ID_KEY)
                    if request_id is not None:
                        exchange.echo = (self.echo_header, request_id)
                if pre_request is not None:
                    pre_request(self.worker, info)
                result = self.app(environ, exchange.start_response)
                rest = self._body(exchange, result, None)
            except Exception as exc:  # noqa: BLE001 - an application bug must never take the worker down
                self._failed(exchange, exc)
        finally:
            if rest is None:
                in_flight.dec()
                stream.finished()
        if rest is not None:
            return PausedExchange(self, exchange, result, rest, environ, info, start)
        if logs:
            self._log(exchange, info, environ, start)
        return None

    def resume(self, paused: PausedExchange) -> PausedExchange | None:
        """Go on with a paused exchange (see :meth:`run`); returns it again if it paused
        again, else None (the exchange is over)."""
        exchange = paused.exchange
        rest: Iterator[bytes] | None = None
        try:
            try:
                rest = self._body(exchange, paused.result, paused.chunks)
            except Exception as exc:  # noqa: BLE001 - an application bug must never take the worker down
                self._failed(exchange, exc)
        finally:
            if rest is None:
                self.in_flight.dec()
                exchange.stream.finished()
        if rest is not None:
            return paused
        if self._logs():
            self._log(exchange, paused.info, paused.environ, paused.start)
        return None

    def _logs(self) -> bool:
        """Is there anything to do for a finished request (access log, post_request)?"""
        return (self.post_request is not None or self.custom_access
                or getattr(self.log, "access_log_enabled", True))

    def _body(self, exchange: Exchange, result: Any,
              chunks: Iterator[bytes] | None) -> Iterator[bytes] | None:
        """Send the application's ``result`` (or go on with its paused ``chunks``); close it
        unless the stream paused it. Returns the chunks left when paused, else None."""
        rest: Iterator[bytes] | None = None
        try:
            rest = exchange.send_result(result) if chunks is None else \
                exchange.send_chunks(chunks)
        finally:
            if rest is None:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        if rest is None and (exchange.body_dropped or exchange.truncated):
            self._report(exchange)
        return rest

    def _failed(self, exchange: Exchange, exc: Exception) -> None:
        """The application (or its body) raised ``exc``; called in its except clause."""
        stream = exchange.stream
        request = exchange.request
        log = self.log
        if isinstance(exc, ClientGone):
            log.debug("client %r went away: %s", stream.peer, exc)
            stream.abort()
        elif isinstance(exc, (HTTPError, PathOutsideScriptName)):
            # A bad body met while the app read wsgi.input, an unframeable response header,
            # or a path outside SCRIPT_NAME.
            log.error("error handling %s %s: %s", request.method, request.uri, exc)
            exchange.fail(exc.status, exc.reason)
        else:
            log.exception("Error handling request %s", request.uri)
            exchange.fail(500, "Internal Server Error")

    def _report(self, exchange: Exchange) -> None:
        request = exchange.request
        if exchange.body_dropped:
            self.log.debug("%s %s: body of a %s response not sent (none allowed)",
                           request.method, request.uri, exchange.status_code)
        if exchange.truncated:
            self.log.error("%s %s: body shorter than its Content-Length",
                           request.method, request.uri)

    def _log(self, exchange: Exchange, info: RequestInfo | None, environ: dict[str, Any],
             start: float) -> None:
        log = self.log
        # logger_class and post_request may be user code: a failure must not break the stream.
        elapsed = time.perf_counter() - start
        call_user_hook(log, "access log", log.access, exchange, info, environ, elapsed)
        if self.post_request is not None:
            call_user_hook(log, "post_request hook", self.post_request, self.worker, info,
                           environ, exchange)


class PausedExchange:
    """An exchange whose iterable body was paused by its stream (see ExchangeRunner.run).

    ``resume()`` goes on with it on any thread; it returns the same object when the stream
    paused it again, None once the exchange is over. A paused exchange must be resumed even
    when its peer is gone, so that the iterable is closed and the exchange logged.
    """

    __slots__ = ("runner", "exchange", "result", "chunks", "environ", "info", "start")

    def __init__(self, runner: ExchangeRunner, exchange: Exchange, result: Any,
                 chunks: Iterator[bytes], environ: dict[str, Any], info: RequestInfo | None,
                 start: float) -> None:
        self.runner = runner
        self.exchange = exchange
        self.result = result
        self.chunks = chunks
        self.environ = environ
        self.info = info
        self.start = start

    def resume(self) -> PausedExchange | None:
        return self.runner.resume(self)


def is_default_setting(cfg: CoreSettings, name: str) -> bool:
    """Is setting ``name`` of ``cfg`` still its registry default (a hook that does nothing)?"""
    try:
        return getattr(cfg, name) is cfg.registry.get(name).default
    except (AttributeError, KeyError):
        return False
