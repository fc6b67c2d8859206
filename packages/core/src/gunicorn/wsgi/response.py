"""``start_response``, ``write()`` and sending the application's iterable (PEP 3333).

Framing (Content-Length / chunked / close, hop-by-hop headers, HEAD/1xx/204/304 without a body)
is the HTTP engine's :class:`~gunicorn.http.writer.ResponseFramer`; this module adds the WSGI
rules on top:

* headers are held back until the first non-empty body chunk (or the end), so the head and a small
  body leave in one ``send``;
* ``start_response`` may be called again only with ``exc_info``, and once the head is on the wire
  that call re-raises the application's exception;
* a :class:`~gunicorn.wsgi.filewrapper.FileWrapper` of a real file goes through ``sendfile`` when
  the transport allows it and the length is known.

The object doubles as the ``resp`` given to the access log and the ``post_request`` hook:
``status``, ``status_code``, ``headers`` and ``sent``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

from gunicorn.http.dates import DateCache
from gunicorn.http.writer import ResponseFramer
from gunicorn.wsgi.filewrapper import FileWrapper

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_NO_BODY_STATUS = (204, 304)


class Transport(Protocol):
    """The connection as the response sees it."""

    can_sendfile: bool

    def send(self, data: bytes) -> None:
        """Write all of ``data`` (raises OSError when the peer is gone)."""
        ...

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send ``count`` bytes of ``fd`` from ``offset``; return the number sent."""
        ...


class ResponseNotStarted(RuntimeError):
    """The application returned (or wrote) without calling start_response first."""


class Response:
    """The response to one request; ``start_response`` is the callable given to the app."""

    __slots__ = ("_transport", "_dates", "method", "version", "_keep_alive", "_framer", "_head",
                 "status", "status_code", "headers", "_extra_sent", "_length", "_closing")

    def __init__(self, transport: Transport, method: str, version: tuple[int, int],
                 keep_alive: bool, dates: DateCache) -> None:
        self._transport = transport
        self._dates = dates
        self.method = method
        self.version = version
        self._keep_alive = keep_alive
        self._framer: Any = None
        self._head: bytes | None = None  # framed head not sent yet
        self.status = ""
        self.status_code = 0
        self.headers: list[tuple[str, str]] = []
        self._extra_sent = 0  # bytes sent around the framer (sendfile)
        self._length: int | None = None
        self._closing = False

    # -- what the access log reads ------------------------------------------------------------

    @property
    def sent(self) -> int:
        """Body bytes written so far."""
        framed = self._framer.body_bytes if self._framer is not None else 0
        return framed + self._extra_sent

    @property
    def headers_sent(self) -> bool:
        return self._framer is not None and self._head is None

    @property
    def started(self) -> bool:
        return self._framer is not None

    @property
    def body_dropped(self) -> bool:
        """The app wrote a body the method or status forbids (it was not sent)."""
        return self._framer is not None and self._framer.body_dropped

    @property
    def keep_alive(self) -> bool:
        """The final decision: may the connection serve another request?"""
        if self._framer is None or self._closing:
            return False
        return bool(self._framer.keep_alive)

    # -- PEP 3333 -----------------------------------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: ExcInfo | None = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: too late to change the status, let the server abort the response.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self._framer is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"status must be a str, not {type(status).__name__}")
        if not isinstance(headers, list):
            raise TypeError(f"headers must be a list, not {type(headers).__name__}")
        framer = ResponseFramer(self.method, self.version, self._keep_alive)
        # Validates status and headers (InvalidResponseHeader, so the handler can still 500).
        self._head = framer.start(status, headers, date=self._dates.get())
        self._framer = framer
        self.status = status
        self.status_code = framer.status_code
        self.headers = headers
        self._length = None
        for name, value in headers:
            if len(name) == 14 and name.lower() == "content-length":
                self._length = int(value) if value.isdigit() else None
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable; also used for each chunk of the iterable."""
        framer = self._framer
        if framer is None:
            raise ResponseNotStarted("write() before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if not data:
            return
        self._send_with_head(framer.body(data))

    def _send_with_head(self, out: bytes) -> None:
        """Send ``out``, preceded by the response head if it has not gone out yet (one write)."""
        head = self._head
        if head is not None:
            self._head = None
            out = head + out
        if out:
            self._transport.send(out)

    def send_early_hints(self, headers: list[tuple[str, str]]) -> None:
        """``wsgi.early_hints``: send a 103 before the response starts (RFC 8297)."""
        if self.headers_sent:
            return  # too late: the final response is on its way
        # Empty for HTTP/1.0 clients, which may not understand 1xx responses (RFC 9110 §15.2).
        data = ResponseFramer(self.method, self.version, False).informational(
            "103 Early Hints", headers)
        if data:
            self._transport.send(data)

    # -- sending the iterable -----------------------------------------------------------------

    def send_result(self, result: Iterable[bytes]) -> None:
        """Send everything the application returned, then end the message.

        A list is framed and sent in one write together with the head; any other iterable is
        streamed chunk by chunk. Closing ``result`` is the caller's job (it must happen even when
        this raises).
        """
        if type(result) is list:
            framer = self._framer
            if framer is None:
                raise ResponseNotStarted("the application returned without calling start_response")
            if len(result) == 1:
                body = result[0]
            else:
                body = b"".join(result)  # TypeError for a str chunk, as with write()
            if type(body) is not bytes:
                body = self._check_chunk(body)
            self._send_with_head(framer.body(body) + framer.end() if body else framer.end())
            return
        if type(result) is FileWrapper and self._try_sendfile(result):
            return
        for chunk in result:
            self.write(chunk)
        self.finish()

    @staticmethod
    def _check_chunk(body: Any) -> bytes:
        if isinstance(body, (bytearray, memoryview)):
            return bytes(body)
        raise TypeError(f"response body chunks must be bytes, not {type(body).__name__}")

    def finish(self) -> None:
        """End the message (sends the head if no body chunk did)."""
        framer = self._framer
        if framer is None:
            raise ResponseNotStarted("the application returned without calling start_response")
        self._send_with_head(framer.end())

    def _try_sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a file with ``os.sendfile``; False when the generic path must be used."""
        if self._framer is None or not self._transport.can_sendfile or self._length is None:
            return False
        code = self.status_code
        if self.method == "HEAD" or code < 200 or code in _NO_BODY_STATUS:
            return False
        fd = wrapper.fileno()
        if fd is None:
            return False
        try:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            available = os.fstat(fd).st_size - offset
        except OSError:
            return False
        count = min(self._length, max(available, 0))
        self._send_with_head(b"")
        sent = self._transport.sendfile(fd, offset, count) if count else 0
        self._extra_sent += sent
        if sent < self._length:
            # The file was shorter than the Content-Length promised: the peer cannot frame the
            # next response, so the connection must close.
            self._closing = True
        return True
