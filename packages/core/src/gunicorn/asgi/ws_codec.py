"""WebSocket frames <-> ASGI messages, once, sans-IO (RFC 6455 §5-§7 over wsproto).

After the ``101`` the connection carries frames; wsproto's frame layer
(``wsproto.connection.Connection``, no second HTTP parser) decodes them::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |   ... masking key (client frames must be masked) | payload ... |

:class:`MessageCodec` turns received bytes into ``websocket.receive`` / ``websocket.disconnect``
messages (fragments reassembled, size-limited, pings answered) and ASGI ``websocket.send`` /
``websocket.close`` messages into bytes. Closing follows §7: whoever closes first sends a Close
frame and waits for the peer's; the server then closes TCP first (§7.1.1). The driver owns the
clock: it arms a timer when :attr:`MessageCodec.closing` and calls :meth:`abort` when it fires;
it also decides when to :meth:`~MessageCodec.ping` and when to :meth:`~MessageCodec.terminate`.

With permessage-deflate negotiated (RFC 7692) the codec hands wsproto a
:class:`~gunicorn.asgi.ws_deflate.BoundedDeflate`, which sets RSV1 and compresses what is sent,
and inflates what is received within ``max_message_size``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from gunicorn.asgi.ws_deflate import BoundedDeflate
from gunicorn.asgi.ws_errors import ClientDisconnected, ProtocolViolation
from gunicorn.asgi.ws_extensions import DeflateAgreement
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError

Message = dict[str, Any]

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
DEFAULT_DEFLATE_LEVEL = 1
# RFC 6455 §5.5: control frame payloads are at most 125 bytes, 2 of which hold the code.
MAX_REASON_BYTES = 123


class CloseCode(IntEnum):
    """Close status codes the server uses or reports (RFC 6455 §7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


# §7.4.1/§7.4.2: never sent in a Close frame; 1004 is reserved, the others are local-only.
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})


def truncate_reason(reason: str) -> str:
    """``reason`` cut to 123 UTF-8 bytes without splitting a character."""
    data = reason.encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[:MAX_REASON_BYTES].decode("utf-8", errors="ignore")


def disconnect_message(code: int, reason: str = "") -> Message:
    return {"type": "websocket.disconnect", "code": int(code), "reason": reason}


class MessageCodec:
    """One accepted WebSocket connection, server side.

    * :meth:`feed` takes received bytes (``None`` at EOF) and returns ASGI messages for the app;
      bytes owed to the peer (pongs, Close replies) accumulate for :meth:`take_output`.
    * :meth:`encode` turns a ``websocket.send`` / ``websocket.close`` message into bytes.
    * :attr:`finished`: the driver must close the transport once the output is flushed.
    * :attr:`failed` (with :attr:`finished`): the codec gave up on the peer (protocol error,
      too big a compressed message, :meth:`terminate`); the peer may still be sending.
    * :attr:`closing`: a Close frame was sent and the peer's reply is awaited.
    * :attr:`disconnect`: the ``websocket.disconnect`` message, once the connection is over for
      the application (delivered exactly once by :meth:`feed` or :meth:`abort`).

    ``max_message_size`` bounds one message (UTF-8 bytes for text, inflated bytes when it was
    compressed); 0 means no limit. ``deflate`` is the permessage-deflate agreement of the
    handshake (None: no compression); ``deflate_level`` the zlib level of what is sent.
    """

    __slots__ = ("_conn", "_max_size", "_parts", "_size", "_output", "finished", "failed",
                 "disconnect")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 deflate: DeflateAgreement | None = None,
                 deflate_level: int = DEFAULT_DEFLATE_LEVEL) -> None:
        extensions: list[Extension] | None = None
        if deflate is not None:
            extensions = [BoundedDeflate(deflate, max_message_size=max_message_size,
                                         level=deflate_level)]
        self._conn = Connection(ConnectionType.SERVER, extensions)
        self._max_size = max_message_size
        self._parts: list[Any] = []
        self._size = 0
        self._output = bytearray()
        self.finished = False
        self.failed = False
        self.disconnect: Message | None = None

    @property
    def can_send(self) -> bool:
        return self._conn.state is ConnectionState.OPEN and not self.finished

    @property
    def closing(self) -> bool:
        return self._conn.state is ConnectionState.LOCAL_CLOSING and not self.finished

    def take_output(self) -> bytes:
        data = bytes(self._output)
        self._output.clear()
        return data

    # -- receiving -------------------------------------------------------------------------------

    def feed(self, data: bytes | None) -> list[Message]:
        """ASGI messages produced by ``data`` (``None``: the peer closed the transport)."""
        if self.finished:
            return []
        conn = self._conn
        conn.receive_data(data)
        out: list[Message] = []
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                # §7.1.4-ish: data after our Close frame is read and discarded.
                if conn.state is ConnectionState.OPEN:
                    self._add_part(event, out)
            elif isinstance(event, Ping):
                if conn.state is ConnectionState.OPEN:
                    self._output += conn.send(event.response())
            elif isinstance(event, CloseConnection):
                self._on_close(event, out)
                break
            # Pong: unsolicited or answering nothing we sent; RFC 6455 §5.5.3 says ignore it.
        return out

    def _add_part(self, event: TextMessage | BytesMessage, out: list[Message]) -> None:
        data = event.data
        # str.isascii() is O(1); only non-ASCII text pays for measuring its UTF-8 length.
        if isinstance(data, str) and not data.isascii():
            self._size += len(data.encode("utf-8"))
        else:
            self._size += len(data)
        if self._max_size and self._size > self._max_size:
            self._parts.clear()
            # Not a protocol failure: close properly and discard the rest of the message.
            self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big", out, finish=False)
            return
        if not event.message_finished:
            self._parts.append(data)
            return
        if self._parts:
            self._parts.append(data)
            data = ("" if isinstance(data, str) else b"").join(self._parts)
            self._parts.clear()
        self._size = 0
        if isinstance(data, str):
            out.append({"type": "websocket.receive", "text": data})
        else:
            out.append({"type": "websocket.receive", "bytes": bytes(data)})

    def _on_close(self, event: CloseConnection, out: list[Message]) -> None:
        conn = self._conn
        state = conn.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer closes first: echo its code (§5.5.1), then we are done.
            self._output += conn.send(event.response())
            self._finish(event.code, event.reason or "", out)
        elif state is ConnectionState.CLOSED:
            # The reply to our Close frame, or EOF (wsproto reports 1006).
            self._finish(event.code, event.reason or "", out)
        else:
            # A parse failure (§7.1.7 "Fail the WebSocket Connection"): the frame layer cannot
            # go on, so send our Close frame and drop the transport without waiting. (A
            # compressed message that inflates past the limit ends here too: the rest of it
            # cannot be skipped without inflating it.)
            reason = event.reason or ""
            if event.code == CloseCode.MESSAGE_TOO_BIG:
                reason = "message too big"  # wsproto says "error in extension"
            self._fail(event.code, reason, out, finish=True)

    def _fail(self, code: int, reason: str, out: list[Message], *, finish: bool) -> None:
        if self._conn.state is ConnectionState.OPEN:
            self._output += self._conn.send(CloseConnection(code, truncate_reason(reason)))
        self._deliver(code, reason, out)
        if finish:
            self.finished = self.failed = True

    def _finish(self, code: int, reason: str, out: list[Message]) -> None:
        self._deliver(code, reason, out)
        self.finished = True

    def _deliver(self, code: int, reason: str, out: list[Message]) -> None:
        if self.disconnect is None:
            self.disconnect = disconnect_message(code, reason)
            out.append(self.disconnect)

    def terminate(self, code: int, reason: str) -> list[Message]:
        """Give up on the connection (keepalive or write timeout): a Close frame with ``code``
        is queued if one can still be sent, and the disconnect message is returned; the driver
        then drops the transport without waiting for the peer."""
        out: list[Message] = []
        if not self.finished:
            self._fail(code, reason, out, finish=True)
        return out

    def abort(self) -> list[Message]:
        """The transport is gone or the close handshake timed out: the connection is over
        (1006, abnormal closure, unless a code was already known)."""
        out: list[Message] = []
        self._deliver(CloseCode.ABNORMAL, "", out)
        self.finished = True
        return out

    # -- sending ---------------------------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        """Bytes for an application's ``websocket.send`` or ``websocket.close`` message.

        Raises :class:`ProtocolViolation` for a malformed message and
        :class:`ClientDisconnected` for ``websocket.send`` once the connection is closing or
        closed. ``websocket.close`` after the connection is over is a no-op (``b""``).
        """
        kind = message.get("type")
        if kind == "websocket.send":
            text, data = message.get("text"), message.get("bytes")
            if (text is None) == (data is None):
                raise ProtocolViolation("websocket.send needs exactly one of 'bytes' and 'text'")
            if not self.can_send:
                raise ClientDisconnected("websocket.send on a closed WebSocket")
            if text is not None:
                if not isinstance(text, str):
                    raise ProtocolViolation("websocket.send 'text' must be a str")
                return bytes(self._conn.send(TextMessage(data=text)))
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ProtocolViolation("websocket.send 'bytes' must be bytes")
            return bytes(self._conn.send(BytesMessage(data=bytes(data))))
        if kind == "websocket.close":
            code, reason = close_arguments(message)
            return self.close(code, reason)
        raise ProtocolViolation(f"unexpected ASGI message {kind!r} on an open WebSocket")

    def ping(self, payload: bytes) -> bytes:
        """A Ping frame (keepalive); ``b""`` once the connection is closing or closed."""
        if not self.can_send:
            return b""
        return bytes(self._conn.send(Ping(payload=payload)))

    def close(self, code: int, reason: str = "") -> bytes:
        """Start the closing handshake (application close, 1011 after a crash, 1001 on server
        shutdown). ``b""`` when a Close frame was already sent or the connection is over."""
        if not self.can_send:
            return b""
        try:
            return bytes(self._conn.send(CloseConnection(code, truncate_reason(reason))))
        except LocalProtocolError:  # pragma: no cover - can_send checked the state
            return b""


def close_arguments(message: Message) -> tuple[int, str]:
    """The validated ``code`` (default 1000) and ``reason`` (default "") of a
    ``websocket.close`` message."""
    code = message.get("code", CloseCode.NORMAL)
    if code is None:
        code = CloseCode.NORMAL
    if type(code) is not int and not isinstance(code, IntEnum):
        raise ProtocolViolation(f"websocket.close code must be an int, not {code!r}")
    if not 1000 <= code <= 4999 or code in _UNSENDABLE:
        raise ProtocolViolation(f"websocket.close code {code} cannot be sent")
    reason = message.get("reason") or ""
    if not isinstance(reason, str):
        raise ProtocolViolation("websocket.close reason must be a str")
    return int(code), reason
