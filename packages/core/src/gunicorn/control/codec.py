"""Sans-IO framing of the control channel, shared by the server and ``gunicorn.ctl``.

Every message, in both directions, is one frame::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            payload length N (unsigned 32 bits, big endian)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     payload: N bytes of UTF-8 JSON, always one object ...     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    N <= MAX_FRAME (16 MiB), checked on the 4 header bytes, before any payload is buffered.

    request   {"id": 7, "command": "worker add", "args": ["2"]}
    reply     {"id": 7, "status": "ok", "data": {...}}
              {"id": 7, "status": "error", "error": "unknown command: foo"}

``id`` is chosen by the client (an int, a string or null) and echoed in the reply; ``args``
are appended to the words of ``command``. A connection carries any number of requests, each
answered in order.

Nothing here touches a socket: :class:`FrameDecoder` takes bytes and gives JSON objects,
:func:`encode` takes an object and gives bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gunicorn.control.errors import FrameTooLarge, MalformedFrame, MalformedMessage

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")

STATUS_OK = "ok"
STATUS_ERROR = "error"

MessageId = int | str | None


def encode(obj: Mapping[str, Any], default: Callable[[Any], Any] | None = None,
           limit: int = MAX_FRAME) -> bytes:
    """One frame holding ``obj`` as JSON.

    ``default`` is handed to :func:`json.dumps` for values JSON does not know (the server
    passes ``str`` so a plugin's odd value cannot break a reply). Raises
    :class:`FrameTooLarge` when the payload exceeds ``limit``, ``TypeError``/``ValueError``
    when ``obj`` cannot be serialised.
    """
    payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                         default=default).encode("utf-8")
    if len(payload) > limit:
        raise FrameTooLarge(len(payload), limit)
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Reassembles frames from a byte stream.

    ``feed(data)`` as bytes arrive; ``next_object()`` returns the next JSON object or ``None``
    when more bytes are needed. A frame that is not a JSON object raises
    :class:`MalformedFrame` and is consumed, so the next call continues with the next frame. A
    too-large length raises :class:`FrameTooLarge`; the decoder is then terminal (the payload
    was never read, so frame boundaries are lost) and raises it again on every call.
    """

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._length: int | None = None
        self._error: FrameTooLarge | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            return  # terminal: whatever follows is part of a frame we refused
        self._buffer += data
        self._read_header()

    def _read_header(self) -> None:
        if self._length is None and len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self._limit:
                self._error = FrameTooLarge(length, self._limit)
                self._buffer.clear()
                return
            self._length = length
            del self._buffer[:HEADER.size]

    def next_object(self) -> dict[str, Any] | None:
        if self._error is not None:
            raise self._error
        if self._length is None or len(self._buffer) < self._length:
            return None
        payload = bytes(self._buffer[:self._length])
        del self._buffer[:self._length]
        self._length = None
        self._read_header()
        try:
            obj = json.loads(payload.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise MalformedFrame(f"frame is not UTF-8: {exc.reason}") from exc
        except ValueError as exc:  # json.JSONDecodeError, or a number too large to parse
            raise MalformedFrame(f"frame is not JSON: {exc}") from exc
        except RecursionError as exc:  # "[[[[..." nested deeper than the parser's stack
            raise MalformedFrame("frame is nested too deeply") from exc
        if not isinstance(obj, dict):
            raise MalformedFrame(f"frame must hold a JSON object, not {type(obj).__name__}")
        return obj


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A command sent to the server: ``command`` words, then ``args``."""

    id: MessageId
    command: str
    args: tuple[str, ...] = ()

    def to_obj(self) -> dict[str, Any]:
        return {"id": self.id, "command": self.command, "args": list(self.args)}


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's answer: ``data`` when it worked, ``error`` (a message) when it did not."""

    id: MessageId
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_obj(self) -> dict[str, Any]:
        if self.error is not None:
            return {"id": self.id, "status": STATUS_ERROR, "error": self.error}
        return {"id": self.id, "status": STATUS_OK, "data": self.data}


def message_id(obj: Mapping[str, Any]) -> MessageId:
    """The ``id`` of a decoded object, or None when it is missing or of a foreign type."""
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return value


def parse_request(obj: Mapping[str, Any]) -> Request:
    """Validate a decoded object as a request; raise :class:`MalformedMessage` if it is not."""
    raw_id = obj.get("id")
    if raw_id is not None and message_id(obj) is None:
        raise MalformedMessage("request id must be an integer, a string or null")
    command = obj.get("command")
    if not isinstance(command, str):
        raise MalformedMessage("request needs a string 'command'")
    args = obj.get("args", [])
    if args is None:
        args = []
    if not isinstance(args, list) or not all(_is_scalar(a) for a in args):
        raise MalformedMessage("request 'args' must be a list of strings or numbers")
    return Request(message_id(obj), command, tuple(_word(a) for a in args))


def parse_reply(obj: Mapping[str, Any]) -> Reply:
    """Validate a decoded object as a reply; raise :class:`MalformedMessage` if it is not."""
    status = obj.get("status")
    if status == STATUS_OK:
        data = obj.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise MalformedMessage("reply 'data' must be a JSON object")
        return Reply(message_id(obj), data)
    if status == STATUS_ERROR:
        return Reply(message_id(obj), error=str(obj.get("error") or "unspecified error"))
    raise MalformedMessage(f"reply status must be 'ok' or 'error', not {status!r}")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _word(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
