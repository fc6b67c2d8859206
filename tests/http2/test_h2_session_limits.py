"""The session's bounds, through bytes only: reset batches, the reset budget, slots, memory."""

from __future__ import annotations

import gc
import weakref

from gunicorn.http2.limits import CLOSED_STREAMS_MIN, ResetBudget, closed_streams_kept
from gunicorn.http2.session import ConnectionGone, RequestReady, StreamGone
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame
from test_h2_session import GET, make, pump


def test_stream_reset_in_its_own_batch_is_never_reported():
    server, client = make()
    client.send_headers(1, GET, end_stream=True)
    client.reset_stream(1)
    client.send_headers(3, GET, end_stream=True)
    events, _ = pump(server, client)
    assert [e.stream_id for e in events if isinstance(e, RequestReady)] == [3]
    assert not any(isinstance(e, StreamGone) for e in events)
    assert server.active == 1  # the dropped stream holds no slot


def test_reset_in_a_later_batch_is_reported_and_keeps_the_slot():
    server, client = make(max_concurrent_streams=1)
    client.send_headers(1, GET, end_stream=True)
    pump(server, client)
    client.reset_stream(1, ErrorCodes.CANCEL)
    events, _ = pump(server, client)
    assert events == [StreamGone(1, ErrorCodes.CANCEL)]
    client.send_headers(3, GET, end_stream=True)
    events, client_events = pump(server, client)
    assert not any(isinstance(e, RequestReady) for e in events)  # stream 1's app still runs
    assert any(getattr(e, "error_code", None) == ErrorCodes.REFUSED_STREAM
               for e in client_events)
    server.finish(1)
    client.send_headers(5, GET, end_stream=True)
    events, _ = pump(server, client)
    assert [e.stream_id for e in events if isinstance(e, RequestReady)] == [5]


def test_a_completed_stream_frees_its_slot_before_finish():
    # The client counts a stream closed at END_STREAM and may open the next one at once.
    server, client = make(max_concurrent_streams=1)
    client.send_headers(1, GET, end_stream=True)
    pump(server, client)
    server.send_head(1, 200, [], "date", True)
    pump(server, client)
    client.send_headers(3, GET, end_stream=True)
    events, _ = pump(server, client)
    assert [e.stream_id for e in events if isinstance(e, RequestReady)] == [3]


def test_server_resets_count_against_the_reset_budget():
    # DATA after END_STREAM: h2 answers RST_STREAM(STREAM_CLOSED) itself (CVE-2025-8671).
    server, client = make(max_reset_rate=5)
    data = b""
    for i in range(20):
        client.send_headers(1 + 2 * i, GET, end_stream=True)
        data += client.data_to_send() + DataFrame(1 + 2 * i, data=b"x").serialize()
    events = server.receive(data, 0.0)
    assert not any(isinstance(e, RequestReady) for e in events)
    (gone,) = [e for e in events if isinstance(e, ConnectionGone)]
    assert gone.code == ErrorCodes.ENHANCE_YOUR_CALM


def test_reset_budget_refills_at_its_rate():
    budget = ResetBudget(2, now=0.0)
    assert all(budget.spend(0.0) for _ in range(4))  # a burst of twice the rate
    assert budget.spend(1.0) and budget.spend(1.0)  # refilled: 2 a second
    assert not budget.spend(1.0)
    assert ResetBudget(0, now=0.0).spend(0.0)  # 0: no limit


def test_closed_stream_records_are_bounded():
    server, client = make()
    kept = closed_streams_kept(100)
    assert kept == CLOSED_STREAMS_MIN
    for i in range(kept + 500):
        sid = 1 + 2 * i
        client.send_headers(sid, GET, end_stream=True)
        pump(server, client)
        server.send_head(sid, 204, [], "date", True)
        server.finish(sid)
        pump(server, client)
    assert len(server._h2._closed_streams) <= kept


def test_discarded_session_is_freed_by_reference_counting():
    gc.disable()
    try:
        server, client = make()
        for sid in (1, 3, 5):
            client.send_headers(sid, GET, end_stream=True)
        pump(server, client)
        refs = weakref.ref(server), weakref.ref(server._h2)
        server.discard()
        del server
        assert refs[0]() is None and refs[1]() is None
    finally:
        gc.enable()
