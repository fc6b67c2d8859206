"""The HTTP/1.1 side of a WSGI exchange: :class:`HTTP1Stream` frames what
:class:`~gunicorn.wsgi.exchange.Exchange` sends into HTTP/1.1 bytes on a connection.

Framing (Server/Date/Connection, hop-by-hop headers dropped, Content-Length / chunked /
close-delimited) is the HTTP engine's :class:`~gunicorn.http.writer.ResponseFramer`; this
module holds the framed head until the exchange sends the first body bytes (one ``send`` for a
head and a small body), and decides whether the connection may serve another request
(:attr:`HTTP1Stream.keep_alive`). The same stream serves uwsgi requests: only the request side
of that protocol differs.
"""

from __future__ import annotations

from typing import Any, Protocol

from gunicorn.http.dates import DateCache
from gunicorn.http.events import Request
from gunicorn.http.writer import ResponseFramer, accepts_trailers, error_response


class Transport(Protocol):
    """The connection as an HTTP/1.1 stream sees it (:class:`gunicorn.workers.connection.
    Connection`); its I/O raises :class:`~gunicorn.wsgi.exchange.ClientGone` (a subclass)."""

    peer: Any
    can_sendfile: bool

    def read_body(self) -> bytes:
        """The next chunk of the request body, ``b""`` at its end."""
        ...

    def send(self, data: bytes) -> None:
        """Write all of ``data``."""
        ...

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send ``count`` bytes of ``fd`` from ``offset``; return the number sent."""
        ...


class HTTP1Stream:
    """One request on an HTTP/1.1 connection, as an :class:`~gunicorn.wsgi.exchange.
    ExchangeStream`. ``keep_alive`` is the wish of both sides (the request's and the worker's);
    :attr:`keep_alive` after the exchange is the final decision."""

    __slots__ = ("_conn", "_request", "_keep_alive", "_dates", "_head", "_closing", "framer",
                 "peer", "can_sendfile")

    def __init__(self, conn: Transport, request: Request, keep_alive: bool,
                 dates: DateCache) -> None:
        self._conn = conn
        self._request = request
        self._keep_alive = keep_alive
        self._dates = dates
        self._head: bytes | None = None  # framed head not sent yet
        self._closing = False
        self.framer: ResponseFramer | None = None
        self.peer = conn.peer
        self.can_sendfile = conn.can_sendfile

    @property
    def keep_alive(self) -> bool:
        """May the connection serve another request once this response is out?"""
        framer = self.framer
        return framer is not None and not self._closing and framer.keep_alive

    # -- ExchangeStream -------------------------------------------------------------------------

    def read_body(self) -> bytes:
        return self._conn.read_body()

    def start(self, status: str, headers: list[tuple[str, str]]) -> tuple[int, int | None]:
        request = self._request
        framer = ResponseFramer(request.method, request.version, self._keep_alive)
        self._head = framer.start(status, headers, date=self._dates.get())
        self.framer = framer
        return framer.status_code or 0, framer.content_length

    def send(self, data: bytes, end: bool) -> None:
        framer = self.framer
        assert framer is not None
        out = framer.body(data) if data else b""
        if end:
            out += framer.end()
        head = self._head
        if head is not None:
            self._head = None
            out = head + out
        if out:
            self._conn.send(out)

    def send_informational(self, status: str, headers: list[tuple[str, str]]) -> None:
        # Validates the headers; empty for HTTP/1.0 clients (RFC 9110 §15.2).
        request = self._request
        data = ResponseFramer(request.method, request.version, False).informational(
            status, headers)
        if data:
            self._conn.send(data)

    def end(self, trailers: list[tuple[str, str]]) -> None:
        framer = self.framer
        assert framer is not None
        # RFC 9110 §6.5: trailers only on a chunked body, to a client that said "TE: trailers";
        # otherwise they are dropped (the body itself is complete).
        wanted = framer.chunked and accepts_trailers(self._request.header("TE"))
        self.send(b"", False)
        out = framer.end(trailers if wanted else None)
        if out:
            self._conn.send(out)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        head = self._head
        if head is not None:
            self._head = None
            self._conn.send(head)
        return self._conn.sendfile(fd, offset, count) if count else 0

    def send_error(self, status: int, reason: str) -> int:
        self._head = None
        self._closing = True  # the error page says Connection: close
        data = error_response(status, reason, date=self._dates.get())
        self._conn.send(data)
        return len(data) - data.index(b"\r\n\r\n") - 4

    def abort(self) -> None:
        # What was sent stands; the client sees the connection close before the body's end.
        self._closing = True

    def finished(self) -> None:
        pass  # the driver drains the unread body (or closes) once the request is logged
