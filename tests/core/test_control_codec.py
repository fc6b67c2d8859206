"""The control channel's framing, fed with bytes: whole, byte by byte and in random splits."""

from __future__ import annotations

import json
import struct

import pytest
from gunicorn.control.codec import (
    MAX_FRAME,
    FrameDecoder,
    Reply,
    Request,
    encode,
    message_id,
    parse_reply,
    parse_request,
)
from gunicorn.control.errors import FrameTooLarge, MalformedFrame, MalformedMessage
from hypothesis import given
from hypothesis import strategies as st

REQUESTS = [
    {"id": 1, "command": "show workers", "args": []},
    {"id": "x", "command": "stash get", "args": ["t", "k\u00e9y"]},
    {"id": None, "command": "worker add", "args": ["2"]},
]


def decode_all(chunks, limit=MAX_FRAME):
    decoder = FrameDecoder(limit)
    out = []
    for chunk in chunks:
        decoder.feed(chunk)
        while (obj := decoder.next_object()) is not None:
            out.append(obj)
    return out


def test_frame_is_a_big_endian_length_then_json():
    frame = encode({"id": 1, "command": "help", "args": []})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert json.loads(frame[4:]) == {"id": 1, "command": "help", "args": []}


def test_decodes_whole_stream():
    stream = b"".join(encode(obj) for obj in REQUESTS)
    assert decode_all([stream]) == REQUESTS


def test_decodes_byte_by_byte():
    stream = b"".join(encode(obj) for obj in REQUESTS)
    assert decode_all([stream[i:i + 1] for i in range(len(stream))]) == REQUESTS


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_decodes_random_splits(cuts):
    stream = b"".join(encode(obj) for obj in REQUESTS)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    bounds = [0, *points, len(stream)]
    assert decode_all([stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]) == REQUESTS


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_round_trip(obj):
    assert decode_all([encode(obj)]) == [obj]


def test_too_large_header_is_refused_before_the_payload_arrives():
    decoder = FrameDecoder(limit=100)
    decoder.feed(struct.pack(">I", 101))
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_object()
    assert info.value.fatal and info.value.size == 101
    decoder.feed(b"x" * 1000)  # terminal: nothing more is buffered
    assert decoder.buffered == 0
    with pytest.raises(FrameTooLarge):
        decoder.next_object()


def test_default_limit_is_16_mib():
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">I", 16 * 1024 * 1024 + 1))
    with pytest.raises(FrameTooLarge):
        decoder.next_object()
    ok = FrameDecoder()
    ok.feed(struct.pack(">I", 16 * 1024 * 1024))
    assert ok.next_object() is None  # allowed, waiting for the payload


def test_encoder_refuses_an_oversized_payload():
    with pytest.raises(FrameTooLarge):
        encode({"blob": "x" * 200}, limit=100)


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe", b"", b"[" * 100000,
                                     b'"text"'],
                         ids=["garbage", "array", "not-utf8", "empty", "deep", "string"])
def test_malformed_frame_is_consumed_and_the_stream_continues(payload):
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">I", len(payload)) + payload + encode({"id": 2, "command": "x"}))
    with pytest.raises(MalformedFrame) as info:
        decoder.next_object()
    assert not info.value.fatal
    assert decoder.next_object() == {"id": 2, "command": "x"}


def test_parse_request_normalises_args():
    req = parse_request({"id": 3, "command": "worker add", "args": [2]})
    assert req == Request(3, "worker add", ("2",))
    assert parse_request({"command": "help"}) == Request(None, "help", ())


@pytest.mark.parametrize("obj", [{"id": 1}, {"id": 1, "command": 5},
                                 {"id": [1], "command": "help"},
                                 {"id": 1, "command": "x", "args": "a b"},
                                 {"id": 1, "command": "x", "args": [{"a": 1}]},
                                 {"id": True, "command": "help"}],
                         ids=["no-command", "int-command", "list-id", "args-string",
                              "args-dict", "bool-id"])
def test_parse_request_rejects(obj):
    with pytest.raises(MalformedMessage):
        parse_request(obj)


def test_replies_round_trip():
    ok = Reply(4, {"a": 1})
    err = Reply(5, error="unknown command: foo")
    assert ok.to_obj() == {"id": 4, "status": "ok", "data": {"a": 1}}
    assert err.to_obj() == {"id": 5, "status": "error", "error": "unknown command: foo"}
    assert parse_reply(ok.to_obj()) == ok and parse_reply(err.to_obj()) == err
    assert not parse_reply(err.to_obj()).ok
    with pytest.raises(MalformedMessage):
        parse_reply({"id": 1, "status": "maybe"})
    with pytest.raises(MalformedMessage):
        parse_reply({"id": 1, "status": "ok", "data": [1]})


def test_message_id_ignores_foreign_types():
    assert message_id({"id": 7}) == 7
    assert message_id({"id": 1.5}) is None and message_id({}) is None
