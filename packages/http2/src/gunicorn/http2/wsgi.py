"""WSGI on one HTTP/2 stream of the threaded driver (:mod:`gunicorn.http2.threaded`).

A :class:`Stream` is the core's :class:`~gunicorn.wsgi.exchange.ExchangeStream` for one
request: the application runs on a pool thread through the core's
:class:`~gunicorn.wsgi.exchange.ExchangeRunner`, exactly as an HTTP/1.1 request does (the same
PEP 3333 rules, error pages, hooks and access log). What is HTTP/2 here:

* the body arrives as DATA the poller thread queues (``chunks``); credit goes back to the peer
  as the application reads it;
* the held head leaves as HEADERS, the body as DATA within the peer's flow-control windows
  (waiting on the driver's condition for WINDOW_UPDATE, bounded by the I/O timeout); no
  chunked coding, no sendfile;
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
from gunicorn.wsgi.exchange import Exchange

if TYPE_CHECKING:
    from gunicorn.http2.threaded import H2Driver


class Stream:
    """One request: its body as it arrives, and the WSGI exchange run on a pool thread."""

    __slots__ = ("driver", "sid", "request", "ended", "gone", "chunks", "trailers", "weight",
                 "depends_on", "peer", "_head")

    can_sendfile = False  # frames must carry the bytes

    def __init__(self, driver: H2Driver, ev: RequestReady) -> None:
        self.driver = driver
        self.sid = ev.stream_id
        self.request: Request = ev.request
        self.ended = ev.ended  # the request body is complete
        self.gone = False  # reset by the peer, or the connection ended
        self.chunks: collections.deque[bytes] = collections.deque()
        self.trailers: list[tuple[str, str]] = []  # of the request
        self.weight = ev.weight
        self.depends_on = ev.depends_on
        self.peer: Any = driver.conn.peer
        self._head: tuple[int, Fields] | None = None  # the response head, held

    # -- the application (a pool thread) --------------------------------------------------------

    def run(self) -> None:
        driver = self.driver
        runner = driver.runner
        runner.count_request()  # HTTP/2 keep-alive is the connection's: GOAWAY on stop
        exchange = Exchange(self, self.request)
        extra = {"HTTP_VERSION": "2", "gunicorn.http2.send_trailers": exchange.set_trailers,
                 "gunicorn.http2.priority_weight": self.weight,
                 "gunicorn.http2.priority_depends_on": self.depends_on}
        try:
            runner.run(exchange, driver.conn.base_environ, extra)
        finally:
            driver.maybe_close(wait=True)

    # -- ExchangeStream -------------------------------------------------------------------------

    def read_body(self) -> bytes:
        driver = self.driver
        with driver.cond:
            while not self.chunks and not self.ended and not self.gone:
                if not driver.cond.wait(driver.io_timeout):
                    raise StreamClosed(f"no request body from {self.peer!r} in time")
            if self.chunks:
                data = self.chunks.popleft()
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

    def send(self, data: bytes, end: bool) -> None:
        driver = self.driver
        session = driver.session
        cond = driver.cond
        head, self._head = self._head, None
        view = memoryview(data)
        with cond:
            self._check()
            if head is not None:
                session.send_head(self.sid, head[0], head[1], driver.dates.get(),
                                  end and not data)
            # Head and the first DATA frames leave in one write when the window allows.
            sent = session.send_body(self.sid, view, end) if data or head is None else 0
        driver.flush(True)
        view = view[sent:]
        while view:
            with cond:
                while True:
                    self._check()
                    if session.window(self.sid) > 0:
                        break
                    if not cond.wait(driver.io_timeout):
                        raise StreamClosed(f"{self.peer!r} gave no flow-control credit")
                sent = session.send_body(self.sid, view, end)
            driver.flush(True)
            view = view[sent:]

    def end(self, trailers: list[tuple[str, str]]) -> None:
        fields = trailer_fields(trailers)
        driver = self.driver
        with driver.lock:
            self._check()
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

    def finished(self) -> None:
        self.driver.stream_finished(self)

    def _check(self) -> None:
        if self.gone or self.driver.closed:
            raise StreamClosed(f"stream {self.sid} is gone")
