import pytest
from gunicorn.dirty import codec
from gunicorn.dirty.call import CallTable, Chunk, Failure, Result, StreamEnd
from gunicorn.dirty.codec import FrameDecoder, MessageType
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyConnectionError,
    DirtyProtocolError,
    DirtySerializationError,
)


def sent_frames(data: bytes) -> list[codec.Frame]:
    decoder = FrameDecoder()
    decoder.feed(data)
    return list(decoder)


def test_ids_count_up_per_table():
    table = CallTable()
    ids = [table.start_call("m:A", "x")[0] for _ in range(3)]
    assert ids == [1, 2, 3]
    assert CallTable().start_call("m:A", "x")[0] == 1


def test_request_bytes_and_result():
    table = CallTable()
    rid, data = table.start_call("m:A", "act", (1,), {"k": 2}, 3.0)
    (frame,) = sent_frames(data)
    assert frame.type is MessageType.REQUEST and frame.request_id == rid
    assert table.receive_data(codec.encode_response(rid, "ok")) == {rid}
    assert table.next_event(rid) == Result("ok")
    assert table.pending == 0 and table.next_event(rid) is None


def test_unknown_and_cancelled_ids_are_dropped():
    table = CallTable()
    rid, _ = table.start_call("m:A", "x")
    table.cancel(rid)
    assert [f.type for f in sent_frames(table.data_to_send())] == [MessageType.CANCEL]
    touched = table.receive_data(codec.encode_response(rid, "late") + codec.encode_response(99, 1))
    assert touched == set() and table.dropped == 2


def test_late_reply_never_reaches_the_next_call():
    table = CallTable()
    old, _ = table.start_call("m:A", "slow")
    table.cancel(old)
    new, _ = table.start_call("m:A", "fast")
    table.receive_data(codec.encode_response(old, "stale") + codec.encode_response(new, "fresh"))
    assert table.next_event(new) == Result("fresh")


def test_error_frame_rebuilds_class():
    table = CallTable()
    rid, _ = table.start_call("m:A", "x")
    err = DirtyAppError("boom", "m:A", "x", "ValueError")
    table.receive_data(codec.encode_error(rid, err))
    event = table.next_event(rid)
    assert isinstance(event, Failure) and type(event.error) is DirtyAppError
    assert event.error.error_type == "ValueError"


def test_stream_events_and_credit_in_half_windows():
    table = CallTable(window=8)
    rid, _ = table.start_call("m:A", "gen", stream=True)
    data = b"".join(codec.encode_chunk(rid, i) for i in range(10))
    for i in range(len(data)):  # byte by byte
        table.receive_data(data[i : i + 1])
    events = []
    while (event := table.next_event(rid)) is not None:
        events.append(event)
    assert events == [Chunk(i) for i in range(10)]
    credits = [f.payload()["n"] for f in sent_frames(table.data_to_send())]
    assert credits == [4, 4]  # consumed chunks are returned in batches of half a window
    table.receive_data(codec.encode_chunk(rid, 10) + codec.encode_end(rid))
    assert [table.next_event(rid), table.next_event(rid)] == [Chunk(10), StreamEnd()]
    assert table.data_to_send() == b""  # no credit once the stream is over
    assert table.pending == 0


def test_no_credit_until_consumed():
    table = CallTable(window=4)
    rid, _ = table.start_call("m:A", "gen", stream=True)
    table.receive_data(b"".join(codec.encode_chunk(rid, i) for i in range(4)))
    assert table.data_to_send() == b""
    table.next_event(rid)
    table.next_event(rid)
    assert [f.payload() for f in sent_frames(table.data_to_send())] == [{"n": 2}]


def test_unary_call_collects_chunks_and_returns_credit():
    table = CallTable(window=4)
    rid, _ = table.start_call("m:A", "gen")
    table.receive_data(b"".join(codec.encode_chunk(rid, i) for i in range(5)))
    assert table.next_event(rid) is None
    assert len(sent_frames(table.data_to_send())) == 2
    table.receive_data(codec.encode_end(rid))
    assert table.next_event(rid) == Result([0, 1, 2, 3, 4])


def test_stream_error_after_chunks():
    table = CallTable()
    rid, _ = table.start_call("m:A", "gen", stream=True)
    table.receive_data(codec.encode_chunk(rid, "a") + codec.encode_error(rid, DirtyAppError("x")))
    assert table.next_event(rid) == Chunk("a")
    assert isinstance(table.next_event(rid), Failure)


def test_connection_lost_fails_every_pending_call():
    table = CallTable()
    a, _ = table.start_call("m:A", "x")
    b, _ = table.start_call("m:A", "y", stream=True)
    assert table.connection_lost(DirtyConnectionError("gone", "/s")) == {a, b}
    for rid in (a, b):
        event = table.next_event(rid)
        assert isinstance(event, Failure) and isinstance(event.error, DirtyConnectionError)
    with pytest.raises(DirtyConnectionError):
        table.start_call("m:A", "z")


def test_bad_frame_breaks_the_table():
    table = CallTable()
    rid, _ = table.start_call("m:A", "x")
    assert table.receive_data(b"XX" + bytes(20)) == {rid}
    assert isinstance(table.broken, DirtyProtocolError)
    assert isinstance(table.next_event(rid).error, DirtyProtocolError)


def test_bad_body_fails_only_that_call():
    table = CallTable()
    a, _ = table.start_call("m:A", "x")
    b, _ = table.start_call("m:A", "y")
    table.receive_data(codec.encode_raw(MessageType.RESPONSE, a, b"\xc1"))
    table.receive_data(codec.encode_raw(MessageType.RESPONSE, b, b"\x80"))  # {} without "result"
    assert isinstance(table.next_event(a).error, DirtyProtocolError)
    assert isinstance(table.next_event(b).error, DirtyProtocolError)
    assert table.broken is None
    c, _ = table.start_call("m:A", "z")
    table.receive_data(codec.encode_response(c, 1))
    assert table.next_event(c) == Result(1)


def test_unserialisable_argument_registers_nothing():
    table = CallTable()
    with pytest.raises(DirtySerializationError):
        table.start_call("m:A", "x", [object()])
    assert table.pending == 0


def test_control_request():
    table = CallTable()
    rid, data = table.start_request(MessageType.STATUS)
    (frame,) = sent_frames(data)
    assert frame.type is MessageType.STATUS and frame.body == b""
    table.receive_data(codec.encode_response(rid, {"workers": []}))
    assert table.next_event(rid) == Result({"workers": []})


def test_unexpected_frame_type_is_dropped():
    table = CallTable()
    rid, _ = table.start_call("m:A", "x")
    table.receive_data(codec.encode_credit(rid, 3))
    assert table.dropped == 1 and table.next_event(rid) is None
