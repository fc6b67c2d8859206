import datetime
import struct

import pytest
from gunicorn.dirty import codec
from gunicorn.dirty.codec import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    Frame,
    FrameDecoder,
    MessageType,
    encode_frame,
    encode_raw,
)
from gunicorn.dirty.errors import DirtyProtocolError, DirtySerializationError
from hypothesis import given, settings
from hypothesis import strategies as st

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
frames = st.builds(
    lambda t, rid, payload, flags: (t, rid, payload, flags),
    st.sampled_from(list(MessageType)),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=8), values, max_size=3)),
    st.integers(min_value=0, max_value=255),
)


def decode_all(data: bytes, pieces: list[bytes] | None = None) -> list[Frame]:
    decoder = FrameDecoder()
    out: list[Frame] = []
    for piece in pieces if pieces is not None else [data]:
        decoder.feed(piece)
        out.extend(decoder)
    assert decoder.buffered == 0
    return out


def test_header_layout_matches_the_diagram():
    data = encode_frame(MessageType.CHUNK, 0x0102030405060708, {"data": 1}, flags=0x80)
    assert HEADER_SIZE == 17
    assert data[:2] == b"GD" and data[2] == 1 and data[3] == 4 and data[4] == 0x80
    assert data[5:13] == bytes(range(1, 9))
    assert struct.unpack(">I", data[13:17])[0] == len(data) - 17


def test_empty_body_for_end_and_cancel():
    assert len(codec.encode_end(5)) == HEADER_SIZE
    assert len(codec.encode_cancel(5)) == HEADER_SIZE
    (frame,) = decode_all(codec.encode_end(5))
    assert frame == Frame(MessageType.END, 5, b"") and frame.payload() is None


def test_builders_use_the_documented_keys():
    data = (
        codec.encode_request(1, "m:App", "act", (1, (2, 3)), {"k": b"v"}, 2.5)
        + codec.encode_response(1, [1])
        + codec.encode_chunk(2, "tok")
        + codec.encode_credit(2, 32)
    )
    req, resp, chunk, credit = decode_all(data)
    assert req.payload() == {
        "app": "m:App", "action": "act", "args": [1, [2, 3]], "kwargs": {"k": b"v"}, "timeout": 2.5
    }
    assert resp.payload() == {"result": [1]}
    assert chunk.payload() == {"data": "tok"}
    assert credit.type is MessageType.CREDIT and credit.payload() == {"n": 32}


def test_int_keys_survive():
    (frame,) = decode_all(codec.encode_response(1, {1: "a", "b": {2: None}}))
    assert frame.payload() == {"result": {1: "a", "b": {2: None}}}


@given(st.lists(frames, max_size=6), st.data())
@settings(max_examples=150, deadline=None)
def test_round_trip_whole_and_random_splits(specs, data):
    encoded = b"".join(encode_frame(t, rid, p, flags=f) for t, rid, p, f in specs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(encoded)), max_size=8)))
    pieces = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
    for decoded in (decode_all(encoded), decode_all(encoded, pieces)):
        assert [(f.type, f.request_id, f.payload(), f.flags) for f in decoded] == [
            (t, rid, _normalise(p), fl) for t, rid, p, fl in specs
        ]


def _normalise(value):
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def test_byte_by_byte():
    encoded = codec.encode_request(9, "m:App", "a", [1, 2], {}, None) + codec.encode_end(9)
    frames_ = decode_all(encoded, [encoded[i : i + 1] for i in range(len(encoded))])
    assert [f.type for f in frames_] == [MessageType.REQUEST, MessageType.END]


def test_many_frames_in_one_feed():
    encoded = b"".join(codec.encode_chunk(i, i) for i in range(1, 2001))
    assert [f.payload()["data"] for f in decode_all(encoded)] == list(range(1, 2001))


def header(magic=b"GD", version=1, type_=2, flags=0, rid=1, length=0) -> bytes:
    return struct.pack(">2sBBBQI", magic, version, type_, flags, rid, length)


@pytest.mark.parametrize(
    "data, message",
    [
        (header(magic=b"HT"), "bad magic"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
        (header(version=2), "version"),
        (header(version=0), "version"),
        (header(type_=0), "unknown message type"),
        (header(type_=9), "unknown message type"),
        (header(type_=0x13), "unknown message type"),
        (header(type_=0xFF), "unknown message type"),
        (header(length=DEFAULT_MAX_FRAME + 1), "exceeds the maximum"),
        (header(length=2**32 - 1), "exceeds the maximum"),
    ],
    ids=["magic", "http", "version2", "version0", "type0", "type9", "type13", "type255",
         "length-max+1", "length-u32max"],
)
def test_malformed_header_is_terminal(data, message):
    decoder = FrameDecoder()
    decoder.feed(data)
    with pytest.raises(DirtyProtocolError, match=message):
        decoder.next_frame()
    with pytest.raises(DirtyProtocolError, match=message):
        decoder.next_frame()
    with pytest.raises(DirtyProtocolError):
        decoder.feed(codec.encode_end(1))


def test_oversized_length_rejected_from_the_header_alone():
    decoder = FrameDecoder(max_frame_size=1024)
    decoder.feed(header(length=1025))  # no body byte sent
    with pytest.raises(DirtyProtocolError, match="1025"):
        decoder.next_frame()


def test_frame_at_the_limit_is_accepted():
    decoder = FrameDecoder(max_frame_size=16)
    body = b"\xb0" + b"x" * 15  # a 16-byte msgpack str
    decoder.feed(encode_raw(MessageType.CHUNK, 1, body))
    assert decoder.next_frame().body == body


def test_partial_header_and_body_wait_for_more():
    encoded = codec.encode_response(3, "x" * 100)
    decoder = FrameDecoder()
    decoder.feed(encoded[:10])
    assert decoder.next_frame() is None
    decoder.feed(encoded[10:50])
    assert decoder.next_frame() is None and decoder.buffered == 50
    decoder.feed(encoded[50:])
    assert decoder.next_frame().payload() == {"result": "x" * 100}


@pytest.mark.parametrize(
    "body",
    [b"\xc1", b"\x92\x01", b"\x01\x02", b"\xa2\xff\xfe", b"\xd4\x05\x00", b"\x81\x90\x01"],
    ids=["never-used", "truncated", "trailing", "bad-utf8", "ext-type", "list-key"],
)
def test_invalid_body_is_a_protocol_error(body):
    (frame,) = decode_all(encode_raw(MessageType.RESPONSE, 1, body))
    with pytest.raises(DirtyProtocolError):
        frame.payload()


@pytest.mark.parametrize(
    "value, type_name",
    [
        ({1, 2}, "set"),
        (datetime.date(2024, 1, 1), "datetime.date"),
        (object(), "object"),
        ([1, {"deep": 2 + 3j}], "complex"),
    ],
    ids=["set", "date", "object", "nested-complex"],
)
def test_unserialisable_value_names_its_type(value, type_name):
    with pytest.raises(DirtySerializationError) as info:
        codec.encode_response(1, value)
    assert info.value.type_name == type_name
    assert type_name in str(info.value)


def test_int_out_of_range():
    with pytest.raises(DirtySerializationError, match="64-bit"):
        codec.encode_response(1, 2**64)


def test_encode_rejects_body_over_max_size():
    with pytest.raises(DirtyProtocolError, match="exceeds"):
        encode_frame(MessageType.RESPONSE, 1, {"result": b"x" * 100}, max_size=50)


@pytest.mark.parametrize("rid", [-1, 2**64], ids=["negative", "overflow"])
def test_request_id_range(rid):
    with pytest.raises(DirtyProtocolError):
        codec.encode_end(rid)


def test_next_request_id_wraps_and_skips_zero():
    assert codec.next_request_id(0) == 1
    assert codec.next_request_id(41) == 42
    assert codec.next_request_id(2**64 - 1) == 1


def test_codec_is_sans_io():
    source = open(codec.__file__).read()
    for banned in ("import socket", "import asyncio", "import threading", "import selectors"):
        assert banned not in source
