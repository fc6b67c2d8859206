"""The gunicorn-dirty wire codec: frames in, bytes out. Sans-IO: no sockets, no event loop.

Every hop (client -> dirty arbiter -> dirty worker and back) speaks the same frames. A frame is a
fixed 17-byte header followed by ``length`` body bytes; all integers are big-endian::

     0       1       2       3       4       5                     13                    17
    +-------+-------+-------+-------+-------+---------------------+---------------------+
    |  'G'  |  'D'  |version| type  | flags |  request id (u64)   |  body length (u32)  |
    +-------+-------+-------+-------+-------+---------------------+---------------------+
    |  body: one msgpack value (a map with str keys), or nothing (END, CANCEL, STATUS)  |
    +-----------------------------------------------------------------------------------+

    magic    b"GD"; anything else is not our protocol
    version  1
    type     a MessageType; an unknown value is a protocol error (never guessed at)
    flags    FrameFlag bits; 0 except PIPELINED on a REQUEST the arbiter sends to a worker
             beyond its free slots (the worker sends STARTED when it begins running it)
    id       chosen by the side that starts a call, 1, 2, 3... per connection (wraps at 2**64);
             every reply, chunk, cancel and credit for that call carries the same id
    length   checked against the receiver's maximum *from the header*, before the body is
             buffered, so a hostile length cannot make anyone allocate 4 GiB

Body schemas (msgpack maps, str keys):

    REQUEST  {"app": str, "action": str, "args": list, "kwargs": dict, "timeout": float|None}
    RESPONSE {"result": any}         ERROR {"error": DirtyError.to_payload()}
    CHUNK    {"data": any}           END, CANCEL: empty body
    CREDIT   {"n": int}              the caller takes n more CHUNKs (see flow control below)
    STARTED  empty                   worker -> arbiter: the PIPELINED call with this id began
    STATUS   {} -> RESPONSE          MANAGE {"op": "add"|"remove", "count": int} -> RESPONSE
    STASH    {"op": str, ...} -> RESPONSE (gunicorn.dirty.stash)

Stream flow control: every call starts with INITIAL_STREAM_WINDOW chunk credits, without any
frame. Each CHUNK the producer sends spends one; each CREDIT {"n": k} from the caller adds k. A
producer out of credit stops pulling its generator until credit arrives, so a slow reader slows
the producer instead of filling the arbiter's memory. The caller returns credit as its user
consumes chunks, so at most INITIAL_STREAM_WINDOW chunks of one stream are ever in flight.

Values are what msgpack carries natively: None, bool, int (64-bit), float, str, bytes, list,
tuple (arrives as a list) and dict. Anything else raises DirtySerializationError on the sending
side, naming the type.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, NoReturn

import msgpack
from gunicorn.dirty.errors import DirtyError, DirtyProtocolError, DirtySerializationError

MAGIC = b"GD"
VERSION = 1
DEFAULT_MAX_FRAME = 64 * 1024 * 1024
INITIAL_STREAM_WINDOW = 64  # chunk credits every call starts with (flow control, see above)
# A worker's notices to the arbiter (booted, ...) are STATUS frames with id 0, which
# next_request_id never hands out, so no call can ever be confused with one.
NOTICE_ID = 0
_HEADER = struct.Struct(">2sBBBQI")
HEADER_SIZE = _HEADER.size  # 17
_MAX_ID = 2**64 - 1
_MAX_BODY = 2**32 - 1


class MessageType(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    ERROR = 3
    CHUNK = 4
    END = 5
    CANCEL = 6
    CREDIT = 7  # stream flow control: the caller grants more chunks
    STARTED = 8  # worker -> arbiter only: a pipelined call began (it can no longer be resent)
    STASH = 0x10
    STATUS = 0x11
    MANAGE = 0x12


class FrameFlag(IntFlag):
    """Bits of the header's flags byte."""

    PIPELINED = 0x01  # REQUEST queued inside the worker: it reports STARTED when it runs it


# Header byte -> member: a dict lookup is ten times cheaper than MessageType(byte), and a miss
# is the "unknown type" check. Never mutated.
_TYPE_OF: dict[int, MessageType] = {int(t): t for t in MessageType}
# Replies that finish a call: anything else for an id keeps it open (CHUNK) or is not a reply.
FINAL_TYPES = frozenset({MessageType.RESPONSE, MessageType.ERROR, MessageType.END})
# A decoded frame without the Frame object: (type, request_id, body, flags).
FrameParts = tuple[MessageType, int, bytes, int]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``body`` is kept raw so the arbiter can forward it without re-encoding."""

    type: MessageType
    request_id: int
    body: bytes
    flags: int = 0

    def payload(self) -> Any:
        """The msgpack-decoded body (``None`` for an empty body); DirtyProtocolError if invalid."""
        return decode_body(self.body)


def next_request_id(previous: int) -> int:
    """The id after ``previous``: 1, 2, 3... wrapping past 2**64 - 1 back to 1 (0 is never used,
    so a zeroed header can never match a call)."""
    return 1 if previous >= _MAX_ID else previous + 1


def _type_name(obj: object) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _refuse(obj: object) -> Any:
    # msgpack calls this for every type it cannot pack natively, and for ints past 64 bits.
    if isinstance(obj, int):
        raise DirtySerializationError(
            _type_name(obj), "cannot send an int outside the 64-bit range to dirty workers"
        )
    raise DirtySerializationError(_type_name(obj))


def encode_body(payload: Any) -> bytes:
    """msgpack-encode ``payload`` (``None`` gives an empty body). Raises DirtySerializationError."""
    if payload is None:
        return b""
    return _pack(msgpack.Packer(use_bin_type=True, default=_refuse), payload)


def _pack(packer: msgpack.Packer, payload: Any) -> bytes:
    try:
        return packer.pack(payload)
    except DirtySerializationError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        # Too deeply nested, or a str/bytes longer than 4 GiB: still the sender's value at fault.
        raise DirtySerializationError(_type_name(payload), f"cannot encode value: {exc}") from exc


def _ext_refused(code: int, data: bytes) -> Any:
    raise DirtyProtocolError(f"unexpected msgpack extension type {code}")


def decode_body(body: bytes) -> Any:
    """Decode a frame body; empty means ``None``. Raises DirtyProtocolError on invalid msgpack."""
    if not body:
        return None
    try:
        # strict_map_key=False: user dicts may have int keys, which msgpack carries faithfully.
        return msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_ext_refused)
    except DirtyProtocolError:
        raise
    except (ValueError, TypeError) as exc:
        # ValueError covers truncated data, trailing bytes, bad UTF-8 and nesting limits;
        # TypeError an unhashable (list) map key.
        raise DirtyProtocolError(f"invalid frame body: {exc}") from exc


def encode_raw(type: MessageType, request_id: int, body: bytes, flags: int = 0) -> bytes:
    """Header + an already encoded ``body``: the arbiter forwards bodies without re-encoding."""
    if not 0 <= request_id <= _MAX_ID:
        raise DirtyProtocolError(f"request id {request_id} out of the u64 range")
    if not 0 <= flags <= 0xFF:
        raise DirtyProtocolError(f"flags {flags} out of the u8 range")
    if len(body) > _MAX_BODY:
        raise DirtyProtocolError(f"frame body of {len(body)} bytes exceeds the u32 length field")
    return _HEADER.pack(MAGIC, VERSION, type, flags, request_id, len(body)) + body


def encode_frame(
    type: MessageType,
    request_id: int,
    payload: Any = None,
    *,
    flags: int = 0,
    max_size: int = DEFAULT_MAX_FRAME,
) -> bytes:
    """Encode one frame whose body is ``payload`` msgpack-encoded (``None``: empty body).

    Raises DirtySerializationError naming the offending type when a value is not msgpack-able,
    and DirtyProtocolError when the body would exceed ``max_size`` bytes (the receiver would
    refuse it anyway; failing here keeps the connection usable).
    """
    return _checked_frame(type, request_id, encode_body(payload), flags, max_size)


def _checked_frame(type: MessageType, request_id: int, body: bytes, flags: int,
                   max_size: int) -> bytes:
    if len(body) > max_size:
        raise DirtyProtocolError(
            f"{MessageType(type).name} frame body of {len(body)} bytes exceeds the maximum"
            f" frame size of {max_size} bytes"
        )
    return encode_raw(type, request_id, body, flags)


class FrameEncoder:
    """:func:`encode_frame` with one reusable msgpack packer, for a connection's hot path.

    ``msgpack.packb`` builds a packer per call, which costs more than packing a small map; a
    kept packer packs a stash request in a third of the time. Not thread-safe: one encoder per
    connection, used under the lock that already serialises the connection's state.
    ``request_id`` must be a valid id (from :func:`next_request_id`, or read from a header).
    """

    __slots__ = ("max_size", "_packer")

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_size = min(max_size, _MAX_BODY)  # the length field is a u32
        self._packer = _new_packer()

    def frame(self, type: MessageType, request_id: int, payload: Any = None) -> bytes:
        """One frame, as :func:`encode_frame` would encode it (same errors)."""
        if payload is None:
            return _HEADER.pack(MAGIC, VERSION, type, 0, request_id, 0)
        body = _pack(self._packer, payload)
        size = len(body)
        if size > _KEEP_PACKER_BELOW:
            # A packer keeps its buffer at the largest size it ever packed: let a big one go.
            self._packer = _new_packer()
        if size > self.max_size:
            return _checked_frame(type, request_id, body, 0, self.max_size)  # raises
        return _HEADER.pack(MAGIC, VERSION, type, 0, request_id, size) + body


_KEEP_PACKER_BELOW = 1 << 20


def _new_packer() -> msgpack.Packer:
    # autoreset (the default): pack() returns the bytes and empties the buffer, and a failed
    # pack() leaves nothing behind for the next one.
    return msgpack.Packer(use_bin_type=True, default=_refuse)


# Builders for the frames every side sends, so the body keys are spelled in one place.


def request_payload(
    app: str,
    action: str,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The body of a REQUEST frame (schema above)."""
    return {"app": app, "action": action, "args": list(args), "kwargs": kwargs or {},
            "timeout": timeout}


def encode_request(
    request_id: int,
    app: str,
    action: str,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    timeout: float | None = None,
    *,
    max_size: int = DEFAULT_MAX_FRAME,
) -> bytes:
    return encode_frame(MessageType.REQUEST, request_id,
                        request_payload(app, action, args, kwargs, timeout), max_size=max_size)


def encode_response(request_id: int, result: Any, *, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    return encode_frame(MessageType.RESPONSE, request_id, {"result": result}, max_size=max_size)


def encode_error(request_id: int, error: DirtyError) -> bytes:
    payload = error.to_payload()
    try:
        return encode_frame(MessageType.ERROR, request_id, {"error": payload})
    except DirtyError:
        # A field value (a stash key, say) that cannot travel must not lose the error itself.
        fields = payload["fields"]
        payload["fields"] = {k: v if _packable(v) else repr(v) for k, v in fields.items()}
        payload["message"] = payload["message"][: DEFAULT_MAX_FRAME // 2]
        return encode_frame(MessageType.ERROR, request_id, {"error": payload})


def _packable(value: Any) -> bool:
    try:
        encode_body(value)
    except DirtySerializationError:
        return False
    return True


def encode_chunk(request_id: int, data: Any, *, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    return encode_frame(MessageType.CHUNK, request_id, {"data": data}, max_size=max_size)


def encode_end(request_id: int) -> bytes:
    return encode_raw(MessageType.END, request_id, b"")


def encode_cancel(request_id: int) -> bytes:
    return encode_raw(MessageType.CANCEL, request_id, b"")


def encode_credit(request_id: int, n: int) -> bytes:
    return encode_frame(MessageType.CREDIT, request_id, {"n": n})


class FrameDecoder:
    """Turns a byte stream into :class:`Frame` objects.

    ``feed()`` bytes as they arrive, then call ``next_frame()`` until it returns ``None`` (more
    bytes needed). A malformed header raises DirtyProtocolError and the decoder becomes terminal:
    every later call raises the same error, because the stream has lost its framing.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._offset = 0  # consumed prefix, dropped lazily so each frame is not an O(n) shift
        self._error: DirtyProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (non-zero at EOF = truncated stream)."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        if self._offset and self._offset >= len(self._buffer) // 2:
            del self._buffer[: self._offset]
            self._offset = 0
        self._buffer += data

    def next_frame(self) -> Frame | None:
        parts = self.next_parts()
        return None if parts is None else Frame(*parts)

    def next_parts(self) -> FrameParts | None:
        """:meth:`next_frame` as a ``(type, request_id, body, flags)`` tuple, for hot paths
        that would only unpack the :class:`Frame` again."""
        if self._error is not None:
            raise self._error
        start = self._offset
        if len(self._buffer) - start < HEADER_SIZE:
            return None
        type_, flags, request_id, length = self._header(self._buffer, start)
        end = start + HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[start + HEADER_SIZE : end])
        self._offset = end
        if end == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        return type_, request_id, body, flags

    def receive(self, data: bytes | memoryview) -> Iterable[FrameParts]:
        """``feed(data)``, then every complete frame as :meth:`next_parts` tuples.

        In a request/reply exchange a read usually brings exactly one whole frame; it is then
        cut straight out of ``data``, without a trip through the buffer. Otherwise the frames
        come lazily, as from iterating: those before a malformed header are still handed out,
        then the DirtyProtocolError is raised. ``data`` may be a view of a reused receive
        buffer: nothing returned or kept refers to it.
        """
        if not self._buffer and self._error is None and len(data) >= HEADER_SIZE:
            type_, flags, request_id, length = self._header(data, 0)
            if HEADER_SIZE + length == len(data):
                return ((type_, request_id, bytes(data[HEADER_SIZE:]), flags),)
        self.feed(data)
        return self._drain()

    def _drain(self) -> Iterator[FrameParts]:
        while (parts := self.next_parts()) is not None:
            yield parts

    def _header(self, buffer: bytes | bytearray | memoryview,
                start: int) -> tuple[MessageType, int, int, int]:
        # (type, flags, request_id, length) of the header at ``start``; raises when it is bad.
        magic, version, type_, flags, request_id, length = _HEADER.unpack_from(buffer, start)
        if magic != MAGIC:
            self._fail(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
        if version != VERSION:
            self._fail(f"unsupported protocol version {version}, expected {VERSION}")
        member = _TYPE_OF.get(type_)
        if member is None:
            self._fail(f"unknown message type {type_:#04x}")
        if length > self.max_frame_size:
            self._fail(
                f"frame body of {length} bytes exceeds the maximum of {self.max_frame_size}"
            )
        return member, flags, request_id, length

    def __iter__(self) -> Iterator[Frame]:
        """Every complete frame buffered so far."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _fail(self, message: str) -> NoReturn:
        self._error = DirtyProtocolError(message)
        raise self._error
