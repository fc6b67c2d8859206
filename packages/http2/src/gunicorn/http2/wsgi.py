"""WSGI on one HTTP/2 stream: ``start_response``, streamed body, early hints, trailers.

The status and headers are validated by the core's
:class:`~gunicorn.http.writer.ResponseFramer` (the same rules as HTTP/1.1 responses), then
turned into an HTTP/2 field block: names lower-cased, hop-by-hop fields and the application's
Server/Date dropped (the session adds ours). As on HTTP/1.1 the head waits for the first body
chunk, so a small response leaves as one HEADERS + DATA write. There is no chunked coding and
no sendfile (frames must carry the bytes); HEAD, 1xx, 204 and 304 carry no body; a body longer
than its Content-Length is cut, a shorter one resets the stream (the client must not take a
truncated body for a complete one).

The object also serves as ``resp`` for the access log and ``post_request``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from gunicorn.http.writer import ResponseFramer
from gunicorn.http2.errors import InvalidTrailers

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                         "upgrade", "te", "trailers", "server", "date"})
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_RE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")
_HTTP11 = (1, 1)


class StreamPort(Protocol):
    """What the response needs from the driver's stream."""

    def send_informational(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    def send(self, head: tuple[int, list[tuple[str, str]]] | None, data: bytes,
             end: bool) -> None: ...
    def end(self, trailers: list[tuple[str, str]] | None) -> None: ...


def h2_fields(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int | None]:
    """Lower-cased fields without hop-by-hop ones, and the Content-Length if any."""
    out = []
    length = None
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            continue
        value = value.strip(" \t")
        if lower == "content-length":
            if length is not None:
                continue  # the framer already refused conflicting values
            length = int(value)
        out.append((lower, value))
    return out, length


def check_trailers(trailers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Validate trailer fields (tokens, field values, no pseudo-headers); lower-case them."""
    out = []
    for item in trailers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidTrailers(f"trailer is not a (name, value) pair: {item!r}") from None
        if not isinstance(name, str) or _TOKEN_RE.fullmatch(name) is None:
            raise InvalidTrailers(f"invalid trailer name {name!r}")
        if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
            raise InvalidTrailers(f"invalid value for trailer {name!r}")
        out.append((name.lower(), value.strip(" \t")))
    return out


class H2Response:
    """The response of one stream; ``start_response`` is what the application gets."""

    __slots__ = ("_port", "method", "status", "status_code", "headers", "sent", "_fields",
                 "_length", "_no_body", "_head_pending", "_started", "_trailers", "body_dropped",
                 "truncated")

    def __init__(self, port: StreamPort, method: str) -> None:
        self._port = port
        self.method = method
        self.status = ""
        self.status_code = 0
        self.headers: list[tuple[str, str]] = []
        self.sent = 0
        self._fields: list[tuple[str, str]] = []
        self._length: int | None = None
        self._no_body = False
        self._head_pending = False
        self._started = False
        self._trailers: list[tuple[str, str]] | None = None
        self.body_dropped = False
        self.truncated = False

    @property
    def headers_sent(self) -> bool:
        return self._started and not self._head_pending

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._started:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(headers, list):
            raise TypeError(f"headers must be a list, not {type(headers).__name__}")
        framer = ResponseFramer(self.method, _HTTP11, False)
        framer.start(status, headers, date="")  # validation only (InvalidResponseHeader)
        code = framer.status_code or 0
        fields, length = h2_fields(headers)
        if code < 200 or code == 204:
            fields = [f for f in fields if f[0] != "content-length"]
            length = None
        self._fields = fields
        self._length = length
        self._no_body = self.method == "HEAD" or code < 200 or code in (204, 304)
        self.status, self.status_code, self.headers = status, code, headers
        self._started = self._head_pending = True
        return self.write

    def send_early_hints(self, headers: list[tuple[str, str]]) -> None:
        """``wsgi.early_hints``: a 103 HEADERS frame before the final response (RFC 8297)."""
        if self.headers_sent:
            return
        ResponseFramer("GET", _HTTP11, False).informational("103 Early Hints", headers)
        self._port.send_informational(103, h2_fields(headers)[0])

    def set_trailers(self, trailers: list[tuple[str, str]]) -> None:
        """``gunicorn.http2.send_trailers``: fields sent after the body, at the end."""
        # Connection-specific names are dropped (RFC 9113 §8.2.2), as in the head: the session
        # no longer has h2 normalise outbound fields.
        self._trailers = h2_fields(check_trailers(trailers))[0]

    def write(self, data: bytes) -> None:
        if not self._started:
            raise AssertionError("write() before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if data:
            self._send(data, False)

    def _send(self, data: bytes, end: bool) -> None:
        if data:
            if self._no_body:
                self.body_dropped = True
                data = b""
            elif self._length is not None:
                room = self._length - self.sent
                if len(data) > room:
                    data = data[:room]
        head = None
        if self._head_pending:
            self._head_pending = False
            head = (self.status_code, self._fields)
        if end and self._trailers:
            # The trailers carry END_STREAM, so the head and DATA frames must not.
            if head is not None or data:
                self.sent += len(data)
                self._port.send(head, data, False)
            self._port.end(self._trailers)
            return
        if head is None and not data and not end:
            return
        self.sent += len(data)
        self._port.send(head, data, end)

    def send_result(self, result: Iterable[bytes]) -> None:
        """Send the application's iterable and end the stream."""
        if not self._started:
            raise AssertionError("the application returned without calling start_response")
        if type(result) is list:
            body = b"".join(result)
            self.finish(body)
            return
        for chunk in result:
            self.write(chunk)
        self.finish(b"")

    def finish(self, last: bytes = b"") -> None:
        if not self._started:
            raise AssertionError("the application returned without calling start_response")
        if self._length is not None and not self._no_body and \
                self.sent + len(last[:self._length - self.sent]) < self._length:
            self.truncated = True  # the driver resets the stream instead of ending it
            if last:
                self._send(last, False)
            return
        self._send(last, True)
