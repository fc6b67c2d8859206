"""MessageCodec: WebSocket frames <-> ASGI messages, bytes only (a wsproto client is the peer)."""

from __future__ import annotations

import struct

import pytest
from gunicorn.asgi.errors import ClientDisconnected, ProtocolViolation
from gunicorn.asgi.ws_codec import (
    MAX_REASON_BYTES,
    CloseCode,
    MessageCodec,
    close_arguments,
    truncate_reason,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)


def client() -> Connection:
    return Connection(ConnectionType.CLIENT)


def peer_events(peer: Connection, data: bytes) -> list:
    peer.receive_data(data)
    return list(peer.events())


def feed_all(codec: MessageCodec, data: bytes, sizes: list[int] | None = None) -> list[dict]:
    out: list[dict] = []
    if sizes is None:
        return codec.feed(data)
    pos = 0
    for size in sizes:
        out += codec.feed(data[pos:pos + size])
        pos += size
    out += codec.feed(data[pos:])
    return out


def conversation() -> tuple[bytes, list[dict]]:
    """Client bytes for a mix of messages, and the ASGI messages they must produce."""
    peer = client()
    data = peer.send(TextMessage(data="héllo wörld"))
    data += peer.send(BytesMessage(data=b"\x00\x01\x02" * 50))
    data += peer.send(TextMessage(data="frag", message_finished=False))
    data += peer.send(Ping(payload=b"p"))
    data += peer.send(TextMessage(data="mented ☃", message_finished=True))
    data += peer.send(BytesMessage(data=b"x" * 70000))
    data += peer.send(BytesMessage(data=b"", message_finished=True))
    return data, [
        {"type": "websocket.receive", "text": "héllo wörld"},
        {"type": "websocket.receive", "bytes": b"\x00\x01\x02" * 50},
        {"type": "websocket.receive", "text": "fragmented ☃"},
        {"type": "websocket.receive", "bytes": b"x" * 70000},
        {"type": "websocket.receive", "bytes": b""},
    ]


def test_messages_whole():
    data, expected = conversation()
    codec = MessageCodec()
    assert codec.feed(data) == expected
    assert [type(e) for e in peer_events(client(), codec.take_output())] == [Pong]


def test_messages_byte_by_byte():
    data, expected = conversation()
    codec = MessageCodec()
    assert feed_all(codec, data, [1] * len(data)) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=40))
def test_messages_in_random_splits(sizes):
    data, expected = conversation()
    codec = MessageCodec()
    assert feed_all(codec, data, sizes) == expected
    assert not codec.finished and codec.disconnect is None


def test_fragments_of_one_message_are_reassembled():
    peer = client()
    codec = MessageCodec()
    assert codec.feed(peer.send(BytesMessage(data=b"ab", message_finished=False))) == []
    assert codec.feed(peer.send(BytesMessage(data=b"cd", message_finished=False))) == []
    assert codec.feed(peer.send(BytesMessage(data=b"ef"))) == [
        {"type": "websocket.receive", "bytes": b"abcdef"}]


def test_ping_is_answered_with_its_payload_and_pong_ignored():
    peer = client()
    codec = MessageCodec()
    assert codec.feed(peer.send(Ping(payload=b"hi")) + peer.send(Pong(payload=b"x"))) == []
    [pong] = peer_events(peer, codec.take_output())
    assert isinstance(pong, Pong) and pong.payload == b"hi"


def test_peer_close_is_echoed_and_reported():
    peer = client()
    codec = MessageCodec()
    msgs = codec.feed(peer.send(CloseConnection(code=4000, reason="bye")))
    assert msgs == [{"type": "websocket.disconnect", "code": 4000, "reason": "bye"}]
    assert codec.finished and not codec.can_send
    [echo] = peer_events(peer, codec.take_output())
    assert isinstance(echo, CloseConnection) and echo.code == 4000


def test_peer_close_without_code_is_1005():
    codec = MessageCodec()
    msgs = codec.feed(bytes([0x88, 0x80]) + b"\0\0\0\0")  # Close with no payload
    assert msgs == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]


def test_eof_is_abnormal_closure():
    codec = MessageCodec()
    assert codec.feed(None) == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert codec.finished
    assert codec.feed(b"late") == [] and codec.feed(None) == []


def test_abort_reports_1006_once():
    codec = MessageCodec()
    assert codec.abort()[0]["code"] == CloseCode.ABNORMAL
    assert codec.abort() == [] and codec.finished


def test_unmasked_client_frame_fails_with_1002():
    codec = MessageCodec()
    msgs = codec.feed(b"\x81\x02hi")  # FIN + text, no MASK bit
    assert msgs[0]["type"] == "websocket.disconnect" and msgs[0]["code"] == 1002
    assert codec.finished
    [close] = peer_events(client(), codec.take_output())
    assert isinstance(close, CloseConnection) and close.code == 1002


def test_reserved_bits_fail_with_1002():
    codec = MessageCodec()
    frame = bytes([0x80 | 0x40 | 0x1, 0x80 | 1]) + b"\0\0\0\0" + b"a"
    assert codec.feed(frame)[0]["code"] == 1002


def test_invalid_utf8_text_fails_with_1007():
    codec = MessageCodec()
    frame = bytes([0x81, 0x80 | 2]) + b"\0\0\0\0" + b"\xff\xfe"
    assert codec.feed(frame)[0]["code"] == 1007
    assert codec.finished


def test_oversized_message_closes_with_1009_then_waits_for_the_reply():
    peer = client()
    codec = MessageCodec(max_message_size=10)
    msgs = codec.feed(peer.send(BytesMessage(data=b"x" * 11)))
    assert msgs == [{"type": "websocket.disconnect", "code": 1009, "reason": "message too big"}]
    assert codec.closing and not codec.finished
    [close] = peer_events(peer, codec.take_output())
    assert close.code == 1009
    # Data still in flight is discarded; the peer's Close reply ends the connection.
    assert codec.feed(client().send(BytesMessage(data=b"more"))) == []
    assert codec.feed(_masked_close(1009)) == []
    assert codec.finished


def _masked_close(code: int) -> bytes:
    payload = struct.pack("!H", code)
    return bytes([0x88, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_oversized_fragmented_message_is_refused_before_it_is_complete():
    peer = client()
    codec = MessageCodec(max_message_size=8)
    assert codec.feed(peer.send(BytesMessage(data=b"12345", message_finished=False))) == []
    msgs = codec.feed(peer.send(BytesMessage(data=b"6789", message_finished=False)))
    assert msgs[0]["code"] == 1009


def test_size_limit_counts_utf8_bytes_not_characters():
    peer = client()
    codec = MessageCodec(max_message_size=5)
    assert codec.feed(peer.send(TextMessage(data="ééé")))[0]["code"] == 1009
    codec = MessageCodec(max_message_size=6)
    assert codec.feed(client().send(TextMessage(data="ééé"))) == [
        {"type": "websocket.receive", "text": "ééé"}]


def test_encode_text_and_bytes():
    codec = MessageCodec()
    peer = client()
    data = codec.encode({"type": "websocket.send", "text": "hé"})
    data += codec.encode({"type": "websocket.send", "bytes": b"\x00", "text": None})
    events = peer_events(peer, data)
    assert [(type(e), e.data) for e in events] == [(TextMessage, "hé"), (BytesMessage, b"\x00")]


@pytest.mark.parametrize("message", [
    {"type": "websocket.send"},
    {"type": "websocket.send", "text": "a", "bytes": b"a"},
    {"type": "websocket.send", "text": b"a"},
    {"type": "websocket.send", "bytes": "a"},
    {"type": "websocket.accept"},
    {"type": "websocket.close", "code": 999},
    {"type": "websocket.close", "code": 1006},
    {"type": "websocket.close", "code": "1000"},
    {"type": "websocket.close", "reason": 5},
], ids=["empty", "both", "text-bytes", "bytes-str", "accept", "code-low", "code-local",
        "code-str", "reason-int"])
def test_malformed_messages_are_refused(message):
    with pytest.raises(ProtocolViolation):
        MessageCodec().encode(message)


def test_server_close_then_peer_reply():
    codec = MessageCodec()
    peer = client()
    data = codec.encode({"type": "websocket.close", "code": 4001, "reason": "done"})
    assert codec.closing and not codec.can_send
    [close] = peer_events(peer, data)
    assert (close.code, close.reason) == (4001, "done")
    msgs = codec.feed(peer.send(close.response()))
    assert msgs == [{"type": "websocket.disconnect", "code": 4001, "reason": "done"}]
    assert codec.finished


def test_send_after_close_raises_client_disconnected_and_close_is_a_noop():
    codec = MessageCodec()
    codec.feed(None)
    with pytest.raises(ClientDisconnected):
        codec.encode({"type": "websocket.send", "text": "late"})
    assert isinstance(ClientDisconnected(), OSError)
    assert codec.encode({"type": "websocket.close"}) == b""
    assert codec.close(1001) == b""


def test_close_reason_is_cut_to_123_bytes():
    codec = MessageCodec()
    [close] = peer_events(client(), codec.close(1000, "é" * 100))
    assert len(close.reason.encode()) <= MAX_REASON_BYTES and close.reason == "é" * 61


@pytest.mark.parametrize("reason,expected", [
    ("a" * 123, "a" * 123), ("a" * 124, "a" * 123), ("a" * 122 + "é", "a" * 122), ("", ""),
], ids=["exact", "one-over", "split-char", "empty"])
def test_truncate_reason(reason, expected):
    assert truncate_reason(reason) == expected


def test_close_arguments_defaults():
    assert close_arguments({"type": "websocket.close"}) == (1000, "")
    assert close_arguments({"type": "websocket.close", "code": None, "reason": None}) == (1000, "")
    assert close_arguments({"type": "websocket.close", "code": CloseCode.GOING_AWAY}) == (1001, "")


def test_size_limit_zero_means_unlimited():
    codec = MessageCodec(max_message_size=0)
    assert codec.feed(client().send(BytesMessage(data=b"x" * 100000))) == [
        {"type": "websocket.receive", "bytes": b"x" * 100000}]
