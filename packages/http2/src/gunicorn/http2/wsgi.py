"""WSGI on one HTTP/2 stream of the threaded driver (:mod:`gunicorn.http2.threaded`).

A :class:`Stream` is the core's :class:`~gunicorn.wsgi.exchange.ExchangeStream` for one
request: the application runs on a pool thread through the core's
:class:`~gunicorn.wsgi.exchange.ExchangeRunner`, exactly as an HTTP/1.1 request does (the same
PEP 3333 rules, error pages, hooks and access log). What is HTTP/2 here:

* the body arrives as DATA the poller thread queues (``chunks``); the driver starts the
  application once the body is complete or fills the stream's window (see the driver), so a
  client that announces a body and sends none holds no thread; credit goes back to the peer as
  the application reads;
* the held head leaves as HEADERS, the body as DATA within the peer's flow-control windows.
  Output the windows do not allow yet is *kept* (``out``, within the connection's budget) and
  sent by the poller thread when WINDOW_UPDATE arrives; ``send`` then returns True, so the
  exchange stops pulling chunks from an iterable body and the pool thread is free until the
  window opens (the driver resumes the :class:`~gunicorn.wsgi.exchange.PausedExchange`). Past
  the budget (or from the legacy ``write()``), the thread waits for credit, bounded by the I/O
  timeout; no chunked coding, no sendfile;
* trailers (``gunicorn.http2.send_trailers``) are a HEADERS frame carrying END_STREAM;
* an aborted response (cut short, or failed after its head) is never ended: finishing the stream
  resets it (:meth:`gunicorn.http2.session.Session.finish`).

Every method that touches the session holds the driver's lock; a stream the peer reset, or a
connection that closed, raises :class:`~gunicorn.http2.errors.StreamClosed` (a ClientGone).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from gunicorn.http.events import Request
from gunicorn.http2.errors import StreamClosed
from gunicorn.http2.fields import Fields, informational_head, response_head, trailer_fields
from gunicorn.http2.session import RequestReady
from gunicorn.wsgi.exchange import Exchange, PausedExchange

if TYPE_CHECKING:
    from gunicorn.http2.threaded import H2Driver


class Stream:
    """One request: its body as it arrives, the WSGI exchange run on a pool thread, and the
    output its peer's windows did not allow yet."""

    __slots__ = ("driver", "sid", "request", "ended", "gone", "chunks", "buffered", "trailers",
                 "weight", "depends_on", "peer", "started", "out", "out_end", "reserved",
                 "paused", "finishing", "aborted", "idle_since", "_head")

    can_sendfile = False  # frames must carry the bytes

    def __init__(self, driver: H2Driver, ev: RequestReady, now: float) -> None:
        self.driver = driver
        self.sid = ev.stream_id
        self.request: Request = ev.request
        self.ended = ev.ended  # the request body is complete
        self.gone = False  # reset by the peer, or the connection ended
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0  # bytes in chunks
        self.trailers: list[tuple[str, str]] = []  # of the request
        self.weight = ev.weight
        self.depends_on = ev.depends_on
        self.peer: Any = driver.conn.peer
        self.started = False  # a pool thread took the job (the app runs or ran)
        # Kept output, oldest first: (bytes not sent yet, END_STREAM after them), then the
        # trailers to end with (None: none wait), and the budget bytes they hold.
        self.out: collections.deque[tuple[memoryview, bool]] = collections.deque()
        self.out_end: Fields | None = None
        self.reserved = 0
        self.paused: PausedExchange | None = None  # resumed when ``out`` drains
        self.finishing = False  # the exchange is over; ``out`` still drains
        self.aborted = False
        self.idle_since = now  # last body progress while waiting to start
        self._head: tuple[int, Fields] | None = None  # the response head, held

    # -- the application (a pool thread) --------------------------------------------------------

    def run(self) -> None:
        driver = self.driver
        if not driver.begin(self):
            return  # reset while it waited for a thread: the application never sees it
        runner = driver.runner
        runner.count_request()  # HTTP/2 keep-alive is the connection's: GOAWAY on stop
        exchange = Exchange(self, self.request)
        extra = {"HTTP_VERSION": "2", "gunicorn.http2.send_trailers": exchange.set_trailers,
                 "gunicorn.http2.priority_weight": self.weight,
                 "gunicorn.http2.priority_depends_on": self.depends_on}
        try:
            paused = runner.run(exchange, driver.conn.base_environ, extra)
            if paused is not None:
                driver.pause(self, paused)
        finally:
            driver.maybe_close()

    def resume(self, paused: PausedExchange) -> None:
        """A pool thread goes on with the paused body once the window opened (or the stream
        is gone: the iterable is then closed and the exchange logged)."""
        driver = self.driver
        try:
            again = paused.resume()
            if again is not None:
                driver.pause(self, again)
        finally:
            driver.maybe_close()

    # -- ExchangeStream -------------------------------------------------------------------------

    def read_body(self) -> bytes:
        driver = self.driver
        with driver.cond:
            while not self.chunks and not self.ended and not self.gone:
                if not driver.cond.wait(driver.io_timeout):
                    raise StreamClosed(f"no request body from {self.peer!r} in time")
            if self.chunks:
                data = self.chunks.popleft()
                self.buffered -= len(data)
                driver.session.consumed(self.sid, len(data))
            elif self.gone:
                raise StreamClosed("the client reset the stream")
            else:
                return b""
        driver.flush(True)
        return data

    def start(self, status: str, headers: list[tuple[str, str]]) -> tuple[int, int | None]:
        code, fields, length = response_head(status, headers)
        self._head = (code, fields)
        return code, length

    def send_informational(self, status: str, headers: list[tuple[str, str]]) -> None:
        code, fields = informational_head(status, headers)
        driver = self.driver
        with driver.lock:
            self._check()
            driver.session.send_informational(self.sid, code, fields)
        driver.flush(True)

    def send(self, data: bytes, end: bool) -> bool:
        driver = self.driver
        session = driver.session
        head, self._head = self._head, None
        # What goes out as DATA: nothing for a lone head (or a head carrying END_STREAM), an
        # empty frame to end a body whose head is already out.
        rest: memoryview | None = memoryview(data) if data or (end and head is None) else None
        with driver.lock:
            self._check()
            if head is not None:
                # Head and the first DATA frames leave in one write when the window allows.
                session.send_head(self.sid, head[0], head[1], driver.dates.get(),
                                  end and not data)
            if rest is not None and not self.out:
                sent = session.send_body(self.sid, rest, end)
                rest = rest[sent:] if sent < len(rest) else None
            kept = rest is not None and driver.keep(self, data, rest, end)
        driver.flush(True)
        if rest is not None and not kept:
            self._send_waiting(rest, end)
        return kept

    def _send_waiting(self, view: memoryview, end: bool) -> None:
        """The output did not fit the budget: wait on this thread for the peer's credit."""
        driver = self.driver
        session = driver.session
        cond = driver.cond
        while True:
            with cond:
                while True:
                    self._check()
                    if not self.out and session.window(self.sid) > 0:
                        break
                    if not cond.wait(driver.io_timeout):
                        raise StreamClosed(f"{self.peer!r} gave no flow-control credit")
                sent = session.send_body(self.sid, view, end)
            driver.flush(True)
            view = view[sent:]
            if not view:
                return

    def end(self, trailers: list[tuple[str, str]]) -> None:
        fields = trailer_fields(trailers)
        driver = self.driver
        with driver.lock:
            self._check()
            if self.out:
                self.out_end = fields  # after the kept output
                return
            driver.session.end(self.sid, fields or None)
        driver.flush(True)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        raise NotImplementedError("HTTP/2 streams do not sendfile")  # can_sendfile is False

    def send_error(self, status: int, reason: str) -> int:
        body = f"{status} {reason}\n".encode("latin-1")
        self._head = (status, [("content-type", "text/plain"), ("content-length", str(len(body)))])
        self.send(body, True)
        return len(body)

    def abort(self) -> None:
        self._head = None  # never END_STREAM: finishing the stream resets it
        self.aborted = True

    def finished(self) -> None:
        self.driver.stream_finished(self)

    def _check(self) -> None:
        if self.gone or self.driver.closed:
            raise StreamClosed(f"stream {self.sid} is gone")
