"""Request body readers: length-delimited and chunked (RFC 9112 §6.2, §7.1).

::

    chunked-body = *chunk last-chunk trailer-section CRLF
    chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    chunk-size   = 1*HEXDIG
    chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    last-chunk   = 1*("0") [ chunk-ext ] CRLF

    "5;name=v\\r\\n" "hello" "\\r\\n" "0\\r\\n" "Trailer: x\\r\\n" "\\r\\n"

Both readers work on the parser's buffer (a ``bytearray`` they consume from the front) and
return ``Data``, ``EndOfMessage`` or ``NEED_DATA``. Body bytes are handed out as soon as they
arrive; ``max_data`` bounds the size of one ``Data``.
"""

from __future__ import annotations

import re
from enum import Enum

from gunicorn.http import errors
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, Headers, NeedData
from gunicorn.http.fields import parse_field_lines
from gunicorn.http.options import ParserOptions

BodyEvent = Data | EndOfMessage | NeedData

_CHUNK_LINE_RE = re.compile(rb"([0-9A-Fa-f]+)(?:[ \t]*;([^\x00-\x08\x0a-\x1f\x7f]*))?")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]+")
# 16 hex digits already exceed any body anyone will send; beyond that is an attack on int().
_MAX_SIZE_DIGITS = 16
# RFC 9110 §6.5.1: these must not be sent as trailers, since a recipient could merge trailers
# into the header section and change framing, routing or authentication after the fact.
FORBIDDEN_TRAILERS = frozenset({"HOST", "CONTENT-LENGTH", "TRANSFER-ENCODING", "TRAILER",
                                "AUTHORIZATION", "TE"})
# A chunk-size line has no standard limit; this bounds what we buffer while waiting for its CRLF.
_MAX_CHUNK_LINE = 8192


def _incomplete(buf: bytearray) -> errors.IncompleteRequest:
    return errors.IncompleteRequest(len(buf) + 1, "connection closed inside a request body")



def _take(buf: bytearray, limit: int, max_data: int | None) -> bytes:
    """Remove and return up to ``limit`` (and ``max_data``, when positive) bytes from ``buf``."""
    available = len(buf)
    size = limit if available > limit else available
    if max_data is not None and size > max_data > 0:
        size = max_data
    if size == available:  # the common case: hand over the whole buffer without shifting it
        data = bytes(buf)
        buf.clear()
    else:
        data = bytes(buf[:size])
        del buf[:size]
    return data

class LengthReader:
    """Body framed by Content-Length (or empty)."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def next_event(self, buf: bytearray, eof: bool, max_data: int | None) -> BodyEvent:
        remaining = self.remaining
        if remaining == 0:
            return EndOfMessage([])
        available = len(buf)
        if available == 0:
            if eof:
                raise _incomplete(buf)
            return NEED_DATA
        data = _take(buf, remaining, max_data)
        self.remaining = remaining - len(data)
        return Data(data)


class _Chunk(Enum):
    SIZE = 1
    DATA = 2
    DATA_END = 3
    TRAILERS = 4
    DONE = 5


class ChunkedReader:
    """Body framed by the chunked transfer coding, with its trailer section."""

    __slots__ = ("_options", "_state", "_remaining", "_scan")

    def __init__(self, options: ParserOptions) -> None:
        self._options = options
        self._state = _Chunk.SIZE
        self._remaining = 0
        self._scan = 0  # where to resume looking for a line end, so feeds stay linear

    def next_event(self, buf: bytearray, eof: bool, max_data: int | None) -> BodyEvent:
        while True:
            state = self._state
            if state is _Chunk.DATA:
                return self._data(buf, eof, max_data)
            if state is _Chunk.SIZE:
                if not self._size_line(buf):
                    break
            elif state is _Chunk.DATA_END:
                if len(buf) < 2:
                    if buf and buf[0] != 13:  # neither empty nor a lone CR
                        raise errors.ChunkMissingTerminator("chunk data not followed by CRLF")
                    break
                if buf[0] != 13 or buf[1] != 10:
                    raise errors.ChunkMissingTerminator("chunk data not followed by CRLF")
                del buf[:2]
                self._state = _Chunk.SIZE
            elif state is _Chunk.TRAILERS:
                trailers = self._trailers(buf)
                if trailers is None:
                    break
                self._state = _Chunk.DONE
                return EndOfMessage(trailers)
            else:
                raise RuntimeError("chunked body already complete")
        if eof:
            raise _incomplete(buf)
        return NEED_DATA

    def _data(self, buf: bytearray, eof: bool, max_data: int | None) -> BodyEvent:
        available = len(buf)
        if available == 0:
            if eof:
                raise _incomplete(buf)
            return NEED_DATA
        data = _take(buf, self._remaining, max_data)
        self._remaining -= len(data)
        if self._remaining == 0:
            self._state = _Chunk.DATA_END
        return Data(data)

    def _size_line(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n", self._scan)
        if end == -1:
            if len(buf) > _MAX_CHUNK_LINE:
                raise errors.InvalidChunkSize("chunk size line too long")
            self._scan = max(0, len(buf) - 1)
            return False
        line = bytes(buf[:end])
        del buf[:end + 2]
        self._scan = 0
        match = _CHUNK_LINE_RE.fullmatch(line)
        if match is None:
            digits = _CHUNK_SIZE_RE.match(line)
            if digits is not None and line[digits.end():].lstrip(b" \t")[:1] == b";":
                raise errors.InvalidChunkExtension("control character in a chunk extension")
            raise errors.InvalidChunkSize(f"invalid chunk size line {line[:32]!r}")
        hex_digits = match.group(1).lstrip(b"0")
        if len(hex_digits) > _MAX_SIZE_DIGITS:
            raise errors.InvalidChunkSize("chunk size too large")
        size = int(hex_digits, 16) if hex_digits else 0
        if size == 0:
            self._state = _Chunk.TRAILERS
        else:
            self._remaining = size
            self._state = _Chunk.DATA
        return True

    def _trailers(self, buf: bytearray) -> Headers | None:
        if buf[:2] == b"\r\n":
            del buf[:2]
            return []
        if len(buf) < 2:
            return None
        options = self._options
        end = buf.find(b"\r\n\r\n", self._scan)
        field_size = options.limit_request_field_size
        if end == -1:
            cap = options.limit_request_fields * (field_size + 2) + 4
            if len(buf) > cap:
                raise errors.LimitRequestHeaders("trailer section too large")
            self._scan = max(0, len(buf) - 3)
            return None
        lines = bytes(buf[:end]).split(b"\r\n")
        del buf[:end + 4]
        self._scan = 0
        if len(lines) > options.limit_request_fields:
            raise errors.LimitRequestHeaders("too many trailer fields")
        # As in the head: the limit counts the field line with its CRLF.
        if max(map(len, lines)) > options.field_line_limit:
            raise errors.LimitRequestHeaders("trailer field too long")
        # Trailers never come from a trusted hop, so forwarder names get no exemption and
        # scheme headers are not interpreted (RFC 9110 §6.5.2).
        trailers = parse_field_lines(lines, options, forwarder_trusted=False)
        for name, _ in trailers:
            if name in FORBIDDEN_TRAILERS:
                raise errors.InvalidTrailer(f"{name} is not allowed in trailers")
        return trailers
