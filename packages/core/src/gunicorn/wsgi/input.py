"""``wsgi.input``: the request body as a file-like object, read lazily.

Body bytes are pulled from a :class:`BodySource` only when the application asks for them, so a
100-continue client is answered the first time the body is read (PEP 3333, RFC 9110 §10.1.1) and
an app that never reads a large upload costs nothing until the driver drains or closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BodySource(Protocol):
    """Where :class:`WSGIInput` gets bytes from (the connection of the current request)."""

    def read_body(self) -> bytes:
        """Return the next chunk of the body (never empty) or ``b""`` once the body ended."""
        ...


class WSGIInput:
    """``read``/``readline``/``readlines``/iteration over the body of one request.

    ``wsgi.input_terminated`` is True: reading past the end returns ``b""`` instead of blocking,
    whatever the framing (Content-Length, chunked or none). :attr:`received` counts the bytes
    pulled from the source (the request metrics read it for chunked bodies).
    """

    __slots__ = ("_source", "_buf", "_pos", "_eof", "received")

    def __init__(self, source: BodySource) -> None:
        self._source = source
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.received = 0

    def _fill(self) -> bool:
        """Append one more chunk to the buffer; False once the body has ended."""
        if self._eof:
            return False
        chunk = self._source.read_body()
        if not chunk:
            self._eof = True
            return False
        self.received += len(chunk)
        if self._pos >= len(self._buf):
            self._buf = chunk
        else:
            self._buf = self._buf[self._pos:] + chunk
        self._pos = 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all of the rest when ``size`` is None or negative)."""
        if size is None or size < 0:
            parts = [self._buf[self._pos:]]
            self._buf, self._pos = b"", 0
            while not self._eof:
                chunk = self._source.read_body()
                if not chunk:
                    self._eof = True
                    break
                self.received += len(chunk)
                parts.append(chunk)
            return b"".join(parts)
        if size == 0:
            return b""
        while len(self._buf) - self._pos < size and self._fill():
            pass
        start = self._pos
        end = min(start + size, len(self._buf))
        self._pos = end
        return self._buf[start:end]

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line including its ``\\n`` (at most ``size`` bytes when ``size`` >= 0)."""
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        # Remember where the newline search stopped so refills keep the scan linear.
        scanned = self._pos
        while True:
            nl = self._buf.find(b"\n", scanned)
            available = len(self._buf) - self._pos
            if nl >= 0:
                end = nl + 1
                break
            if 0 <= limit <= available:
                end = self._pos + limit
                break
            offset = len(self._buf) - self._pos
            if not self._fill():
                end = len(self._buf)
                break
            scanned = offset  # _fill rebased the buffer at self._pos == 0
        if 0 <= limit < end - self._pos:
            end = self._pos + limit
        line = self._buf[self._pos:end]
        self._pos = end
        return line

    def readlines(self, hint: int | None = None) -> list[bytes]:
        """Read lines until EOF, or until about ``hint`` bytes were read when hint > 0."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    @property
    def exhausted(self) -> bool:
        """True when the whole body has been pulled from the source."""
        return self._eof
