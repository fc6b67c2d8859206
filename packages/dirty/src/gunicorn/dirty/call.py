"""The client side of one connection to the dirty arbiter, as a sans-IO state machine.

:class:`CallTable` numbers calls, encodes their frames, decodes replies and sorts them into a
per-call inbox. The sync and asyncio clients only move bytes: they send what ``start_*``,
``cancel`` and :meth:`CallTable.data_to_send` give them, feed received bytes to
:meth:`CallTable.receive_data`, and pop events with :meth:`CallTable.next_event`.

Why ids matter: a call that timed out is forgotten here, so when its late reply finally arrives
its id matches nothing and the reply is dropped (and logged) instead of being handed to the next
call on the connection.

Per call::

    start_* ──> PENDING ──CHUNK──> PENDING (stream: Chunk event; unary: collected)
                  │ RESPONSE / ERROR / END
                  v
                 DONE ──next_event() returns the final event──> forgotten
    cancel() from PENDING: CANCEL queued, forgotten at once (later frames for the id dropped)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gunicorn.dirty import codec
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import DirtyError, DirtyProtocolError, error_from_payload

log = logging.getLogger("gunicorn.dirty.client")


@dataclass(frozen=True, slots=True)
class Result:
    """The call finished with ``value`` (a RESPONSE, or the collected chunks of a unary call)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Failure:
    """The call failed: an ERROR frame, a broken connection or an invalid reply."""

    error: DirtyError


@dataclass(frozen=True, slots=True)
class Chunk:
    """One streamed item of a stream call."""

    data: Any


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """A stream call finished normally."""


Event = Result | Failure | Chunk | StreamEnd


class CallKind(Enum):
    UNARY = "unary"  # one result; chunks, if the action streams anyway, are collected in a list
    STREAM = "stream"  # chunks delivered one by one; credit returned as they are consumed


class _Call:
    __slots__ = ("kind", "inbox", "collected", "unacked", "done")

    def __init__(self, kind: CallKind) -> None:
        self.kind = kind
        self.inbox: deque[Event] = deque()
        self.collected: list[Any] | None = None  # a unary call's chunks, if it gets any
        self.unacked = 0  # chunks taken by the consumer since credit was last returned
        self.done = False  # the final frame arrived (it may still sit in the inbox)


class CallTable:
    """Pending calls of one connection. Not thread-safe: drivers serialise access.

    ``window`` is the stream window (codec.INITIAL_STREAM_WINDOW): credit is returned in batches
    of half a window, so a steady stream costs one CREDIT frame per ``window // 2`` chunks.
    """

    def __init__(
        self,
        *,
        max_frame_size: int = codec.DEFAULT_MAX_FRAME,
        window: int = codec.INITIAL_STREAM_WINDOW,
    ) -> None:
        self.max_frame_size = max_frame_size
        self._credit_batch = max(1, window // 2)
        self._decoder = codec.FrameDecoder(max_frame_size)
        self._encoder = codec.FrameEncoder(max_frame_size)
        self._calls: dict[int, _Call] = {}
        self._last_id = 0
        self._outgoing = bytearray()
        self.broken: DirtyError | None = None  # set once the connection is unusable
        self.dropped = 0  # frames whose id matched no pending call

    @property
    def pending(self) -> int:
        return len(self._calls)

    def is_pending(self, request_id: int) -> bool:
        return request_id in self._calls

    # -- starting calls --------------------------------------------------------------------

    def start(self, kind: CallKind, type_: MessageType, payload: Any) -> tuple[int, bytes]:
        """Register a call whose first frame is ``type_`` with ``payload``; returns its id and
        the bytes to send. Raises DirtySerializationError (nothing registered) when the
        payload cannot travel, and ``broken`` once the connection is unusable."""
        if self.broken is not None:
            raise self.broken
        request_id = codec.next_request_id(self._last_id)
        while request_id in self._calls:  # only possible after 2**64 calls wrapped around
            request_id = codec.next_request_id(request_id)
        self._last_id = request_id
        # Encoding first: an unserialisable argument raises here and leaves no trace.
        data = self._encoder.frame(type_, request_id, payload)
        self._calls[request_id] = _Call(kind)
        return request_id, data

    def start_call(
        self,
        app: str,
        action: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
        *,
        stream: bool = False,
    ) -> tuple[int, bytes]:
        """Register a REQUEST; returns its id and the bytes to send.

        ``timeout`` travels in the request so the server can stop work nobody waits for.
        Raises DirtySerializationError (nothing registered) when an argument cannot travel.
        """
        kind = CallKind.STREAM if stream else CallKind.UNARY
        return self.start(kind, MessageType.REQUEST,
                          codec.request_payload(app, action, args, kwargs, timeout))

    def start_request(self, type_: MessageType, payload: Any = None) -> tuple[int, bytes]:
        """Register a control request (STASH, STATUS, MANAGE) answered by one RESPONSE."""
        return self.start(CallKind.UNARY, type_, payload)

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes | memoryview) -> set[int]:
        """Feed bytes from the connection; returns the ids that got new events.

        An invalid frame breaks the connection: every pending call fails with the
        DirtyProtocolError and ``broken`` is set; the driver should close the socket.
        """
        touched: set[int] = set()
        try:
            for kind, request_id, body, _flags in self._decoder.receive(data):
                if self._receive_frame(kind, request_id, body):
                    touched.add(request_id)
        except DirtyProtocolError as exc:
            touched |= self.connection_lost(exc)
        return touched

    def _receive_frame(self, kind: MessageType, request_id: int, body: bytes) -> bool:
        call = self._calls.get(request_id)
        if call is None or call.done:
            self.dropped += 1
            log.debug("dropped %s frame for id %d: no such pending call", kind.name, request_id)
            return False
        try:
            return self._deliver(kind, request_id, body, call)
        except DirtyProtocolError as exc:
            # The framing is intact, only this body is bad: fail this call, keep the connection.
            self.cancel(request_id)
            self._calls[request_id] = call
            call.done = True
            call.inbox.append(Failure(exc))
            return True

    def _deliver(self, kind: MessageType, request_id: int, body: bytes, call: _Call) -> bool:
        if kind is MessageType.RESPONSE:  # first: the one reply of nearly every call
            event: Event = Result(_field(kind, body, "result"))
        elif kind is MessageType.CHUNK:
            data = _field(kind, body, "data")
            if call.kind is CallKind.STREAM:
                call.inbox.append(Chunk(data))
            else:
                if call.collected is None:
                    call.collected = []
                call.collected.append(data)
                self._ack(request_id, call)
            return call.kind is CallKind.STREAM
        elif kind is MessageType.ERROR:
            event = Failure(error_from_payload(_field(kind, body, "error")))
        elif kind is MessageType.END:
            event = StreamEnd() if call.kind is CallKind.STREAM else Result(call.collected or [])
        else:
            self.dropped += 1
            log.warning("dropped unexpected %s frame for call %d", kind.name, request_id)
            return False
        call.done = True
        call.inbox.append(event)
        return True

    def next_event(self, request_id: int) -> Event | None:
        """Pop the next event of a call, or ``None`` when nothing arrived yet.

        Taking the final event (Result, Failure, StreamEnd) forgets the call. Taking a Chunk
        counts it as consumed, which may queue a CREDIT (see :meth:`data_to_send`).
        """
        call = self._calls.get(request_id)
        if call is None or not call.inbox:
            return None
        event = call.inbox.popleft()
        if isinstance(event, Chunk):
            if not call.done:
                self._ack(request_id, call)
        elif not call.inbox:
            del self._calls[request_id]
        return event

    def _ack(self, request_id: int, call: _Call) -> None:
        call.unacked += 1
        if call.unacked >= self._credit_batch:
            self._outgoing += self._encoder.frame(MessageType.CREDIT, request_id,
                                                  {"n": call.unacked})
            call.unacked = 0

    # -- giving up ------------------------------------------------------------------------

    def cancel(self, request_id: int) -> None:
        """The caller gave up (timeout, cancelled task, stream closed early): forget the call and
        queue a CANCEL unless its final frame already arrived. Later frames are dropped."""
        call = self._calls.pop(request_id, None)
        if call is not None and not call.done and self.broken is None:
            self._outgoing += codec.encode_cancel(request_id)

    def connection_lost(self, error: DirtyError) -> set[int]:
        """Fail every unfinished call with ``error``; returns their ids. Terminal."""
        if self.broken is None:
            self.broken = error
        self._outgoing.clear()
        failed: set[int] = set()
        for request_id, call in self._calls.items():
            if not call.done:
                call.done = True
                # A copy per call: each caller raises (and so mutates) its own instance.
                call.inbox.append(Failure(error_from_payload(error.to_payload())))
                failed.add(request_id)
        return failed

    def data_to_send(self) -> bytes:
        """Bytes queued by ``cancel`` and credit returns; the driver writes them soon."""
        if not self._outgoing:
            return b""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data


def _field(kind: MessageType, body: bytes, name: str) -> Any:
    payload = codec.decode_body(body)
    if not isinstance(payload, dict) or name not in payload:
        raise DirtyProtocolError(f"{kind.name} frame without a {name!r} field")
    return payload[name]
