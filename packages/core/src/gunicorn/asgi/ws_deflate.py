"""permessage-deflate (RFC 7692) for the server's wsproto connection, with bounded inflation.

wsproto's :class:`~wsproto.extensions.PerMessageDeflate` does the compression framing: RSV1 on
the first frame of a compressed message only, the ``00 00 ff ff`` tail stripped from what it
sends (§7.2.1) and appended to what it receives (§7.2.2), context takeover. This subclass
changes three things on the receiving side:

* **Inflation is bounded.** wsproto inflates every frame with ``decompress(data)``, so a few KiB
  of deflate (ratio up to about 1000:1) become MiBs or GiBs in one call before any size check
  sees them. Here each call gets ``max_length`` = what is left of ``max_message_size`` plus one
  byte; reaching it fails the connection with 1009 while the memory spent is still at most the
  limit.
* **A control frame between the fragments of a compressed message** does not reset the message
  state (wsproto forgets the message is compressed after an interleaved ping, and then hands
  the raw deflate bytes of the next fragments to the application).
* **A stream ended with BFINAL** (§7.2.3.3) gets a fresh inflater for the next message (zlib
  would silently drop everything after the end of the stream).

On the sending side it only chooses the zlib settings: the configured level and a smaller
memory level (see :data:`MEM_LEVEL`).
"""

from __future__ import annotations

import zlib

from gunicorn.asgi.ws_extensions import DeflateAgreement
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["BoundedDeflate", "MEM_LEVEL"]

# zlib's memLevel 8 (its default) allocates and touches about 110 KiB per connection that has
# sent one message; 5 needs about 23 KiB for a compression ratio within 1% on JSON-like text
# (measured with 4 KiB messages, level 6, window 15: 0.182 vs 0.183).
MEM_LEVEL = 5
# RFC 7692 §7.2.2: appended to a message's payload before inflating it.
_TAIL = b"\x00\x00\xff\xff"
_NO_RSV = RsvBits(False, False, False)


class BoundedDeflate(PerMessageDeflate):
    """The negotiated permessage-deflate extension of one server-side connection.

    Arguments:
        agreement: the parameters agreed in the handshake
            (:func:`gunicorn.asgi.ws_extensions.negotiate_deflate`).
        max_message_size: the most bytes one message may inflate to; 0 for no limit.
        level: the zlib compression level (1-9) of the messages the server sends.
    """

    def __init__(self, agreement: DeflateAgreement, *, max_message_size: int,
                 level: int) -> None:
        super().__init__(
            client_no_context_takeover=agreement.client_no_context_takeover,
            server_no_context_takeover=agreement.server_no_context_takeover,
            server_max_window_bits=agreement.server_max_window_bits,
        )
        self._max_size = max_message_size
        self._level = level
        self._inflated = 0
        self._control = False

    def enabled(self) -> bool:
        # Negotiated before construction: the object only exists for an accepted offer.
        return True

    # -- receiving --------------------------------------------------------------------------

    def frame_inbound_header(self, proto: FrameDecoder | FrameProtocol, opcode: Opcode,
                             rsv: RsvBits, payload_length: int) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            # RFC 7692 §6.1: control frames are never compressed; RSV1 on one is an error.
            # They may come between two fragments of a compressed message (RFC 6455 §5.4),
            # which must stay compressed: the message state is left alone.
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
            self._control = True
            return _NO_RSV
        self._control = False
        if self._inbound_compressed is None:  # the first frame of a message
            self._inflated = 0
        # wsproto: RSV1 on a continuation frame is a protocol error (§6.1); remembers whether
        # the message is compressed; makes the inflater.
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol,
                                   data: bytes) -> bytes | CloseReason:
        if self._control or not self._inbound_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol,
                               fin: bool) -> bytes | CloseReason | None:
        if self._control:
            self._control = False
            return None
        if not fin:
            return None
        compressed = self._inbound_compressed
        self._inbound_compressed = None
        if not compressed:
            return None
        tail = self._inflate(_TAIL)
        inflater = self._decompressor
        # The client's no_context_takeover (or a stream it ended with BFINAL): the next message
        # starts a new LZ77 window.
        if self.client_no_context_takeover or (inflater is not None and inflater.eof):
            self._decompressor = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._decompressor
        assert inflater is not None  # made by frame_inbound_header for a compressed message
        try:
            if not self._max_size:
                return inflater.decompress(data)
            room = self._max_size - self._inflated
            # One byte more than the room: getting it proves the message is too big, without
            # inflating (or allocating) any further.
            out = inflater.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._max_size:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    # -- sending ----------------------------------------------------------------------------

    def frame_outbound(self, proto: FrameDecoder | FrameProtocol, opcode: Opcode,
                       rsv: RsvBits, data: bytes, fin: bool) -> tuple[RsvBits, bytes]:
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            # wsproto would make it with level 6 and memLevel 8; the window is the agreed one.
            self._compressor = zlib.compressobj(self._level, zlib.DEFLATED,
                                                -self.server_max_window_bits, MEM_LEVEL)
        return super().frame_outbound(proto, opcode, rsv, data, fin)
