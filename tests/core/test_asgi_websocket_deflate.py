"""permessage-deflate in MessageCodec (RFC 7692), bytes only: a wsproto client with its own
PerMessageDeflate is the peer, and hand-built frames for what a well-behaved client never
sends."""

from __future__ import annotations

import os
import random
import struct
import tracemalloc
import zlib

import pytest
from gunicorn.asgi.ws_codec import MessageCodec
from gunicorn.asgi.ws_extensions import negotiate_deflate
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

MiB = 1024 * 1024


def pair(offer: str = "permessage-deflate", max_size: int = 16 * MiB,
         level: int = 1) -> tuple[MessageCodec, Connection]:
    """A server codec and a client Connection that agreed on ``offer``."""
    agreement = negotiate_deflate([offer])
    assert agreement is not None
    ext = PerMessageDeflate()
    ext.finalize(agreement.header)
    return MessageCodec(max_size, agreement, level), Connection(ConnectionType.CLIENT, [ext])


def deflate(data: bytes, wbits: int = 15) -> bytes:
    """``data`` as one permessage-deflate payload (sync flush, tail stripped, §7.2.1)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked client frame."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", size)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", size)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_events(peer: Connection, data: bytes) -> list:
    peer.receive_data(data)
    return list(peer.events())


def close_code(codec: MessageCodec, messages: list[dict]) -> int:
    assert codec.finished
    assert messages[-1]["type"] == "websocket.disconnect"
    out = codec.take_output()
    assert out[0] == 0x88  # FIN + Close, RSV1 clear: control frames are never compressed
    return struct.unpack("!H", out[2:4])[0]


def feed_in(codec: MessageCodec, data: bytes, split: str) -> list[dict]:
    if split == "whole":
        return codec.feed(data)
    out: list[dict] = []
    if split == "bytes":
        for i in range(len(data)):
            out += codec.feed(data[i:i + 1])
        return out
    rng = random.Random(len(data))
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 700)
        out += codec.feed(data[pos:pos + step])
        pos += step
    return out


@pytest.mark.parametrize("split", ["whole", "bytes", "random"])
def test_compressed_messages_both_ways(split):
    codec, peer = pair()
    data = peer.send(TextMessage(data="héllo wörld " * 20))
    data += peer.send(BytesMessage(data=bytes(range(256)) * 40))
    data += peer.send(TextMessage(data=""))
    data += peer.send(TextMessage(data="frag", message_finished=False))
    data += peer.send(TextMessage(data="mented ☃", message_finished=True))
    assert data[0] & 0x40  # the client compressed too
    assert feed_in(codec, data, split) == [
        {"type": "websocket.receive", "text": "héllo wörld " * 20},
        {"type": "websocket.receive", "bytes": bytes(range(256)) * 40},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.receive", "text": "fragmented ☃"},
    ]
    out = codec.encode({"type": "websocket.send", "text": "réponse " * 100})
    assert out[0] == 0xC1  # FIN + RSV1 + text
    assert len(out) < 100
    assert [e.data for e in server_events(peer, out)] == ["réponse " * 100]


def test_control_frame_between_compressed_fragments():
    # RFC 6455 §5.4: a ping may come between the fragments of a message; the rest of the
    # message is still compressed (wsproto alone forgets it and delivers deflate bytes).
    codec, peer = pair()
    body = deflate(b"fragmented message " * 10)
    a, b, c = body[:10], body[10:20], body[20:]
    data = (frame(0x1, a, fin=False, rsv1=True) + frame(0x9, b"ping") + frame(0x0, b, fin=False)
            + frame(0xA, b"pong") + frame(0x0, c))
    assert codec.feed(data) == [{"type": "websocket.receive", "text": "fragmented message " * 10}]
    events = server_events(peer, codec.take_output())
    assert events == [Pong(payload=b"ping")]


@pytest.mark.parametrize("data,code", [
    (frame(0x9, b"x", rsv1=True), 1002),
    (frame(0x1, deflate(b"ab")[:2], fin=False, rsv1=True) + frame(0x0, b"", rsv1=True), 1002),
    (frame(0x2, deflate(b"x"), rsv1=True) + frame(0x8, struct.pack("!H", 1000), rsv1=True), 1002),
    (frame(0x1, deflate(b"\xff\xfe invalid utf-8"), rsv1=True), 1007),
    (frame(0x1, b"\xff\xff\xff\xff not deflate", rsv1=True), 1007),
    (bytes([0xA1]) + frame(0x1, b"x")[1:], 1002),  # RSV2: no extension uses it
], ids=["compressed-ping", "rsv1-on-continuation", "compressed-close", "invalid-utf8-inflated",
        "corrupt-deflate", "rsv2"])
def test_protocol_errors(data, code):
    codec, _ = pair()
    assert close_code(codec, codec.feed(data)) == code


def test_rsv1_without_deflate_is_a_protocol_error():
    codec = MessageCodec()
    assert close_code(codec, codec.feed(frame(0x1, deflate(b"hi"), rsv1=True))) == 1002


def test_uncompressed_message_on_a_deflate_connection():
    codec, _ = pair()
    assert codec.feed(frame(0x1, b"plain")) == [{"type": "websocket.receive", "text": "plain"}]


def test_decompression_bomb_is_refused_before_the_memory_is_spent():
    # 64 MiB of zeros deflate to about 64 KiB; the limit is 1 MiB.
    codec, _ = pair(max_size=MiB)
    data = frame(0x2, deflate(bytes(64 * MiB)), rsv1=True)
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        messages = codec.feed(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert close_code(codec, messages) == 1009
    assert messages == [{"type": "websocket.disconnect", "code": 1009,
                         "reason": "message too big"}]
    assert peak < 4 * MiB, f"inflating allocated {peak} bytes"


@pytest.mark.parametrize("fragments", [1, 3])
def test_limit_counts_inflated_bytes_across_fragments(fragments):
    limit = 100_000
    for size, ok in ((limit, True), (limit + 1, False)):
        codec, peer = pair(max_size=limit)
        text = "z" * size
        step = -(-size // fragments)
        data = b""
        for i in range(0, size, step):
            data += peer.send(TextMessage(data=text[i:i + step],
                                          message_finished=i + step >= size))
        assert len(data) < 2000
        messages = codec.feed(data)
        if ok:
            assert messages == [{"type": "websocket.receive", "text": text}]
        else:
            assert close_code(codec, messages) == 1009


def test_context_takeover_and_server_no_context_takeover():
    message = {"type": "websocket.send", "text": "the same sentence, said twice. " * 4}
    codec, _ = pair()
    first, second = codec.encode(message), codec.encode(message)
    assert len(second) < len(first)  # the second refers back into the first
    codec, peer = pair("permessage-deflate; server_no_context_takeover")
    first, second = codec.encode(message), codec.encode(message)
    assert first == second  # every message starts a fresh compressor
    assert [e.data for e in server_events(peer, first + second)] == [message["text"]] * 2


def test_server_max_window_bits_limits_back_references():
    # A 600-byte block repeated: a 32 KiB window refers back 600 bytes, which a 512-byte
    # window (9 bits) cannot read.
    block = random.Random(1).randbytes(600)
    message = {"type": "websocket.send", "bytes": block * 3}

    def inflate_with_window_9(frame_bytes: bytes) -> bytes:
        head = 4 if frame_bytes[1] == 126 else 2
        inflater, data, out = zlib.decompressobj(-9), frame_bytes[head:] + b"\x00\x00\xff\xff", b""
        # Small output steps: zlib checks the window only for references beyond what one call
        # has written.
        while data:
            out += inflater.decompress(data, 64)
            data = inflater.unconsumed_tail
        return out

    wide, _ = pair()
    with pytest.raises(zlib.error):
        inflate_with_window_9(wide.encode(message))
    narrow, _ = pair("permessage-deflate; server_max_window_bits=9")
    assert inflate_with_window_9(narrow.encode(message)) == block * 3


def test_client_no_context_takeover_messages():
    codec, peer = pair("permessage-deflate; client_no_context_takeover")
    data = b"".join(peer.send(TextMessage(data="again and again")) for _ in range(3))
    assert codec.feed(data) == [{"type": "websocket.receive", "text": "again and again"}] * 3


def test_client_stream_ended_with_bfinal():
    # RFC 7692 §7.2.3.3 lets a sender end each message's stream with a BFINAL block; the
    # next message is then a new stream.
    codec, _ = pair()
    data = b""
    for text in (b"first message", b"second message"):
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        data += frame(0x1, comp.compress(text) + comp.flush(zlib.Z_FINISH), rsv1=True)
    assert codec.feed(data) == [{"type": "websocket.receive", "text": "first message"},
                                {"type": "websocket.receive", "text": "second message"}]


def test_server_control_frames_are_not_compressed():
    codec, peer = pair()
    assert codec.ping(b"k")[0] == 0x89
    assert codec.close(1000)[0] == 0x88
    assert server_events(peer, codec.take_output()) == []


@settings(max_examples=40, deadline=None)
@given(messages=st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=8),
       offer=st.sampled_from(["permessage-deflate",
                              "permessage-deflate; client_no_context_takeover",
                              "permessage-deflate; server_no_context_takeover; "
                              "server_max_window_bits=10"]),
       cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=30))
def test_round_trip_in_random_splits(messages, offer, cuts):
    codec, peer = pair(offer)
    data = b"".join(peer.send(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m))
                    for m in messages)
    received: list[dict] = []
    pos = 0
    for cut in cuts:
        received += codec.feed(data[pos:pos + cut])
        pos += cut
    received += codec.feed(data[pos:])
    assert [m.get("text", m.get("bytes")) for m in received] == messages
    echoed = b"".join(codec.encode({"type": "websocket.send",
                                    ("text" if isinstance(m, str) else "bytes"): m})
                      for m in messages)
    got = [e.data for e in server_events(peer, echoed)]
    assert got == messages
    assert not any(isinstance(e, (Ping, CloseConnection)) for e in got)
