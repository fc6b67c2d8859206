"""The codec's hot-path entry points agree with the plain ones: FrameDecoder.receive() with
next_frame(), FrameEncoder.frame() with encode_frame(). Bytes only, no sockets."""

from __future__ import annotations

import pytest
from gunicorn.dirty import codec
from gunicorn.dirty.codec import FrameDecoder, FrameEncoder, MessageType
from gunicorn.dirty.errors import DirtyProtocolError, DirtySerializationError
from hypothesis import given
from hypothesis import strategies as st

FRAMES = [
    codec.encode_frame(MessageType.STASH, 1, {"op": "get", "table": "t", "key": "k"}),
    codec.encode_request(2, "a:B", "run", [1, b"\x00" * 300], {"x": None}, 5.0),
    codec.encode_end(3),
    codec.encode_response(2**64 - 1, {"result": [1.5, "é"]}),
    codec.encode_cancel(4),
]
STREAM = b"".join(FRAMES)


def plain_parts(data: bytes) -> list[codec.FrameParts]:
    decoder = FrameDecoder()
    decoder.feed(data)
    return [(f.type, f.request_id, f.body, f.flags) for f in decoder]


def receive_in(chunks: list[bytes | memoryview]) -> list[codec.FrameParts]:
    decoder = FrameDecoder()
    out: list[codec.FrameParts] = []
    for chunk in chunks:
        out.extend(decoder.receive(chunk))
    assert decoder.buffered == 0
    return out


def test_receive_one_whole_frame_takes_the_fast_path():
    decoder = FrameDecoder()
    [(kind, rid, body, flags)] = decoder.receive(FRAMES[0])
    assert (kind, rid, flags) == (MessageType.STASH, 1, 0)
    assert type(body) is bytes and codec.decode_body(body)["key"] == "k"
    assert decoder.buffered == 0


def test_receive_whole_stream_and_byte_by_byte():
    expected = plain_parts(STREAM)
    assert receive_in([STREAM]) == expected
    assert receive_in([STREAM[i : i + 1] for i in range(len(STREAM))]) == expected
    assert receive_in(list(FRAMES)) == expected


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_receive_random_splits(cuts):
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert receive_in(chunks) == plain_parts(STREAM)


def test_receive_from_a_reused_buffer_copies_what_it_keeps():
    # The sync client reads into one buffer and hands receive() views of it.
    buffer = bytearray(64 * 1024)
    decoder = FrameDecoder()
    got: list[codec.FrameParts] = []
    half = len(FRAMES[1]) // 2
    for piece in (FRAMES[0], FRAMES[1][:half], FRAMES[1][half:] + FRAMES[2]):
        buffer[: len(piece)] = piece
        got.extend(decoder.receive(memoryview(buffer)[: len(piece)]))
        buffer[:] = bytes(len(buffer))  # the next recv_into overwrites everything
    assert got == plain_parts(FRAMES[0] + FRAMES[1] + FRAMES[2])
    assert all(type(body) is bytes for _, _, body, _ in got)


@pytest.mark.parametrize("bad", [b"XX" + FRAMES[0][2:], FRAMES[0][:3] + b"\x77" + FRAMES[0][4:]],
                         ids=["magic", "type"])
def test_receive_bad_header_is_terminal(bad):
    decoder = FrameDecoder()
    with pytest.raises(DirtyProtocolError):
        decoder.receive(bad)
    with pytest.raises(DirtyProtocolError):
        decoder.receive(FRAMES[0])


def test_receive_refuses_a_large_frame_from_its_header():
    decoder = FrameDecoder(max_frame_size=10)
    with pytest.raises(DirtyProtocolError, match="exceeds the maximum of 10"):
        decoder.receive(FRAMES[1][: codec.HEADER_SIZE])


PAYLOADS = [None, {"result": None}, {"op": "put", "key": b"k", "value": [1, {"a": 2.5}]},
            {"data": "x" * 70000}]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["empty", "none", "nested", "big"])
def test_frame_encoder_matches_encode_frame(payload):
    encoder = FrameEncoder()
    for rid in (1, 2**64 - 1):
        assert encoder.frame(MessageType.RESPONSE, rid, payload) == codec.encode_frame(
            MessageType.RESPONSE, rid, payload)


def test_frame_encoder_refusals_leave_it_usable():
    encoder = FrameEncoder(max_size=100)
    with pytest.raises(DirtySerializationError) as info:
        encoder.frame(MessageType.REQUEST, 1, {"args": [1, {2, 3}]})
    assert info.value.type_name == "set"
    with pytest.raises(DirtyProtocolError, match="exceeds the maximum frame size of 100"):
        encoder.frame(MessageType.REQUEST, 2, {"args": "x" * 200})
    assert encoder.frame(MessageType.REQUEST, 3, {"a": 1}) == codec.encode_frame(
        MessageType.REQUEST, 3, {"a": 1})


def test_frame_encoder_lets_a_grown_packer_buffer_go():
    encoder = FrameEncoder()
    small = encoder._packer  # noqa: SLF001 -- the point is which buffer it keeps
    encoder.frame(MessageType.CHUNK, 1, {"data": b"x" * 1000})
    assert encoder._packer is small  # noqa: SLF001
    encoder.frame(MessageType.CHUNK, 2, {"data": b"x" * (2 << 20)})
    assert encoder._packer is not small  # noqa: SLF001


def test_receive_hands_out_frames_before_a_bad_header_then_raises():
    decoder = FrameDecoder()
    frames = iter(decoder.receive(FRAMES[0] + FRAMES[2] + b"XX" + bytes(20)))
    assert next(frames)[1] == 1
    assert next(frames)[1] == 3
    with pytest.raises(DirtyProtocolError, match="bad magic"):
        next(frames)


def test_call_table_keeps_a_reply_that_arrived_before_garbage():
    from gunicorn.dirty.call import CallTable, Failure, Result

    table = CallTable()
    first, _ = table.start_request(MessageType.STATUS)
    second, _ = table.start_request(MessageType.STATUS)
    touched = table.receive_data(codec.encode_response(first, "ok") + b"XX" + bytes(20))
    assert touched == {first, second}
    assert table.next_event(first) == Result("ok")
    failure = table.next_event(second)
    assert isinstance(failure, Failure) and isinstance(failure.error, DirtyProtocolError)
