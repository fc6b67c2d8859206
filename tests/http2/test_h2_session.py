"""The sans-IO session, driven by an h2 client connection through bytes only."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
from gunicorn.http.options import ParserOptions
from gunicorn.http2.session import (
    BodyChunk,
    BodyEnd,
    ConnectionGone,
    RequestReady,
    Session,
    SessionConfig,
    StreamGone,
    WindowChanged,
)
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame, Frame, GoAwayFrame
from hypothesis import given, settings
from hypothesis import strategies as st

GET = [(":method", "GET"), (":scheme", "http"), (":path", "/a?b=1"), (":authority", "example")]


def make(**kw):
    cfg = SessionConfig(ParserOptions(), **kw)
    server = Session(cfg, trusted=False, is_ssl=False)
    server.initiate()
    client = client_conn()
    client.initiate_connection()
    server.receive(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send(), 0.0)
    return server, client


def client_conn():
    # Outbound validation off: some tests send what a broken client would.
    return h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False))


def pump(server, client, now=0.0):
    """Client bytes -> server events; server bytes -> client events."""
    events = [e for e in server.receive(client.data_to_send(), now)
              if not isinstance(e, WindowChanged)]
    return events, client.receive_data(server.data_to_send())


def split_feed(server, data, cuts):
    events = []
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        events += [e for e in server.receive(data[start:cut], 0.0)
                   if not isinstance(e, WindowChanged)]
        start = cut
    return events


def test_request_maps_like_http11():
    server, client = make()
    client.send_headers(1, GET + [("cookie", "a=1"), ("cookie", "b=2"), ("x-y", "z")],
                        end_stream=True)
    events, _ = pump(server, client)
    (ready,) = events
    assert isinstance(ready, RequestReady) and ready.ended
    req = ready.request
    assert (req.method, req.path, req.query, req.version) == ("GET", "/a", "b=1", (2, 0))
    assert ("HOST", "example") in req.headers
    assert ("COOKIE", "a=1; b=2") in req.headers
    assert req.scheme == "http"


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=12))
@settings(max_examples=60, deadline=None)
def test_request_and_body_in_random_splits(cuts):
    server, client = make()
    client.send_headers(1, [(":method", "POST"), *GET[1:]])
    client.send_data(1, b"0123456789" * 20, end_stream=True)
    data = client.data_to_send()
    events = split_feed(server, data, [c % (len(data) + 1) for c in cuts])
    assert isinstance(events[0], RequestReady)
    body = b"".join(e.data for e in events if isinstance(e, BodyChunk))
    assert body == b"0123456789" * 20
    assert isinstance(events[-1], BodyEnd)


def test_byte_by_byte():
    server, client = make()
    client.send_headers(1, GET, end_stream=True)
    data = client.data_to_send()
    events = split_feed(server, data, list(range(len(data))))
    assert [type(e) for e in events] == [RequestReady]


def test_too_many_streams_refuses_only_the_new_stream():
    # The client opens both streams before it has read the server's SETTINGS.
    server = Session(SessionConfig(ParserOptions(), max_concurrent_streams=1), trusted=False,
                     is_ssl=False)
    server.initiate()
    client = client_conn()
    client.initiate_connection()
    client.send_headers(1, GET, end_stream=True)
    client.send_headers(3, GET, end_stream=True)
    events, client_events = pump(server, client)
    assert [e.stream_id for e in events if isinstance(e, RequestReady)] == [1]
    resets = [e for e in client_events if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(3, ErrorCodes.REFUSED_STREAM)]
    assert not server.closed
    server.send_head(1, 200, [], "date", True)
    server.finish(1)
    pump(server, client)
    client.send_headers(5, GET, end_stream=True)
    events, _ = pump(server, client)
    assert [e.stream_id for e in events if isinstance(e, RequestReady)] == [5]


def test_invalid_pseudo_headers_reset_the_stream_not_the_connection():
    server, client = make()
    for sid, headers in ((1, [(":method", "GET"), (":path", "/")]),  # no :scheme
                         (3, GET + [(":status", "200")])):
        client.send_headers(sid, headers, end_stream=True)
    events, client_events = pump(server, client)
    assert not any(isinstance(e, RequestReady) for e in events)
    codes = {e.stream_id: e.error_code for e in client_events
             if isinstance(e, h2.events.StreamReset)}
    assert codes == {1: ErrorCodes.PROTOCOL_ERROR, 3: ErrorCodes.PROTOCOL_ERROR}
    assert not server.closed


def test_header_policy_error_gets_a_400():
    server, client = make()
    client.send_headers(1, GET + [("content-type", "a"), ("content-type", "b")],
                        end_stream=True)
    events, client_events = pump(server, client)
    assert events == []
    (resp,) = [e for e in client_events if isinstance(e, h2.events.ResponseReceived)]
    assert (b":status", b"400") in resp.headers


def test_credit_is_returned_only_as_the_app_consumes():
    server, client = make()
    client.send_headers(1, [(":method", "POST"), *GET[1:]])
    for _ in range(4):
        client.send_data(1, b"x" * 15000)
    events, _ = pump(server, client)
    assert client.local_flow_control_window(1) == 65535 - 60000
    assert sum(len(e.data) for e in events if isinstance(e, BodyChunk)) == 60000
    server.consumed(1, 60000)
    client.receive_data(server.data_to_send())
    assert client.local_flow_control_window(1) == 65535


def test_response_respects_peer_max_frame_size_and_window():
    server, client = make()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.send_headers(1, GET, end_stream=True)
    pump(server, client)
    pump(server, client)
    server.send_head(1, 200, [], "date", False)
    assert server.send_body(1, b"y" * 5000, True) == 1000
    _, client_events = pump(server, client)
    data = [e for e in client_events if isinstance(e, h2.events.DataReceived)]
    assert sum(len(e.data) for e in data) == 1000
    assert all(len(e.data) <= 16384 for e in data)


def test_rapid_reset_ends_the_connection():
    server, client = make(max_reset_rate=5)
    gone = []
    for i in range(20):
        sid = 1 + 2 * i
        client.send_headers(sid, GET)
        client.reset_stream(sid)
        events, _ = pump(server, client, now=0.0)
        gone += [e for e in events if isinstance(e, ConnectionGone)]
        if gone:
            break
    assert gone and gone[0].code == ErrorCodes.ENHANCE_YOUR_CALM
    assert server.closed


def test_body_cap_answers_413():
    server, client = make(max_request_body=10)
    client.send_headers(1, [(":method", "POST"), *GET[1:], ("content-length", "100")])
    events, client_events = pump(server, client)
    assert not any(isinstance(e, RequestReady) for e in events)
    (resp,) = [e for e in client_events if isinstance(e, h2.events.ResponseReceived)]
    assert (b":status", b"413") in resp.headers


def test_peer_reset_is_reported():
    server, client = make()
    client.send_headers(1, GET)
    pump(server, client)
    client.reset_stream(1, ErrorCodes.CANCEL)
    events, _ = pump(server, client)
    assert events == [StreamGone(1, ErrorCodes.CANCEL)]


def frames(data):
    """Split server bytes into hyperframe frames (the h2 client would stop at GOAWAY)."""
    out = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        out.append(frame)
        data = data[9 + length:]
    return out


def test_graceful_goaway_lets_accepted_streams_finish():
    server, client = make()
    client.send_headers(1, GET, end_stream=True)
    client.send_headers(3, GET, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    server.goaway()
    server.send_head(1, 200, [("x", "y")], "date", False)
    server.send_body(1, b"done", True)
    sent = frames(server.data_to_send())
    kinds = [type(f) for f in sent]
    assert kinds.index(GoAwayFrame) < kinds.index(DataFrame)
    goaway = sent[kinds.index(GoAwayFrame)]
    assert (goaway.last_stream_id, goaway.error_code) == (3, 0)
    assert sent[-1].data == b"done" and "END_STREAM" in sent[-1].flags
    # A stream opened after the GOAWAY is refused.
    client.send_headers(5, GET, end_stream=True)
    events = server.receive(client.data_to_send(), 0.0)
    assert not any(isinstance(e, RequestReady) for e in events)


def test_trailers_end_the_stream():
    server, client = make()
    client.send_headers(1, GET, end_stream=True)
    pump(server, client)
    server.send_head(1, 200, [], "date", False)
    server.send_body(1, b"a", False)
    server.end(1, [("x-sum", "1")])
    _, client_events = pump(server, client)
    (trailers,) = [e for e in client_events if isinstance(e, h2.events.TrailersReceived)]
    assert trailers.headers == [(b"x-sum", b"1")]


def test_header_list_size_zero_is_not_announced():
    cfg = SessionConfig(ParserOptions(), max_header_list_size=0)
    server = Session(cfg, trusted=False, is_ssl=False)
    server.initiate()
    client = client_conn()
    client.initiate_connection()
    server.receive(client.data_to_send(), 0.0)
    events = client.receive_data(server.data_to_send())
    (changed,) = [e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)]
    assert h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE not in changed.changed_settings
    assert changed.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] \
        .new_value == 100


def test_scheme_pseudo_header_trusted_only_from_trusted_peers():
    for trusted, expected in ((False, "http"), (True, "https")):
        server = Session(SessionConfig(ParserOptions()), trusted=trusted, is_ssl=False)
        server.initiate()
        client = client_conn()
        client.initiate_connection()
        client.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":path", "/")],
                            end_stream=True)
        (ready,) = [e for e in server.receive(client.data_to_send(), 0.0)
                    if isinstance(e, RequestReady)]
        assert ready.request.scheme == expected


def test_preface_refusal_is_settings_then_goaway_protocol_error():
    # What an h2-only server tells a cleartext client whose first bytes are no preface.
    from gunicorn.http2.plugin import PREFACE_REFUSAL

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    events = client.receive_data(PREFACE_REFUSAL)
    assert [type(e) for e in events] == [h2.events.RemoteSettingsChanged,
                                         h2.events.ConnectionTerminated]
    assert events[1].error_code == ErrorCodes.PROTOCOL_ERROR and events[1].last_stream_id == 0
