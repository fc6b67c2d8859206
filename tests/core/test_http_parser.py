"""Parser behaviour beyond the corpus: streaming, connection state, options, trust, errors."""

from __future__ import annotations

import time

import gunicorn.http as http_api
import pytest
from gunicorn.config import Config
from gunicorn.errors import GunicornError
from gunicorn.http import errors
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, ProxyInfo, Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from gunicorn.http.trust import AddressMatcher
from gunicorn.http.writer import ResponseFramer
from hypothesis import given, settings
from hypothesis import strategies as st


def events_of(parser: RequestParser) -> list:
    out = []
    while (event := parser.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_body_is_streamed_before_it_is_complete():
    parser = RequestParser(ParserOptions())
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
    [request] = events_of(parser)
    assert request.expect_continue and request.content_length == 10
    parser.feed(b"abcd")
    assert events_of(parser) == [Data(b"abcd")]
    parser.feed(b"efghij")
    assert events_of(parser) == [Data(b"efghij"), EndOfMessage([])]


def test_chunked_data_is_streamed_per_arrival():
    parser = RequestParser(ParserOptions())
    parser.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc")
    assert events_of(parser)[1:] == [Data(b"abc")]
    parser.feed(b"defghij\r\n0\r\n\r\n")
    assert events_of(parser) == [Data(b"defghij"), EndOfMessage([])]


def test_max_data_bounds_each_data_event():
    parser = RequestParser(ParserOptions())
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
    assert type(parser.next_event()) is Request
    assert [parser.next_event(max_data=4) for _ in range(3)] == [
        Data(b"0123"), Data(b"4567"), Data(b"89")]


def test_trailing_data_after_upgrade_request():
    parser = RequestParser(ParserOptions())
    parser.feed(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                b"\x81\x05hello")
    request, end = events_of(parser)[:2]
    assert request.upgrade == "websocket" and type(end) is EndOfMessage
    assert parser.trailing_data() == b"\x81\x05hello"


def test_proxy_info_is_kept_for_every_request():
    parser = RequestParser(ParserOptions(proxy_protocol="v1"), proxy_trusted=True)
    parser.feed(b"PROXY TCP4 192.0.2.1 198.51.100.7 51000 443\r\nGET /1 HTTP/1.1\r\n\r\n")
    first = events_of(parser)[0]
    parser.feed(b"GET /2 HTTP/1.1\r\n\r\n")
    second = events_of(parser)[0]
    expected = ProxyInfo("192.0.2.1", 51000, "198.51.100.7", 443, "TCP4")
    assert first.proxy == second.proxy == parser.proxy_info == expected


def test_eof_after_only_blank_lines_owes_no_response():
    parser = RequestParser(ParserOptions())
    parser.feed(b"\r\n\r\n")
    parser.feed(b"")
    with pytest.raises(errors.IncompleteRequest) as info:
        parser.next_event()
    assert info.value.received == 0


def test_error_is_terminal_and_reraised():
    parser = RequestParser(ParserOptions())
    parser.feed(b"BAD\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    with pytest.raises(errors.InvalidRequestLine) as first:
        parser.next_event()
    with pytest.raises(errors.InvalidRequestLine) as again:
        parser.next_event()
    assert again.value is first.value


def test_request_header_lookup():
    parser = RequestParser(ParserOptions())
    parser.feed(b"GET / HTTP/1.1\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n")
    request = events_of(parser)[0]
    assert request.header("x-THING") == "1" and request.header("missing") is None


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nX: " + b"v" * 300_000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 8000 + b"\r\nx\r\n0\r\n"
    + b"".join(b"T%d: v\r\n" % i for i in range(5000)) + b"\r\n",
], ids=["huge-header", "long-extension-and-trailers"])
def test_byte_by_byte_feeding_stays_linear(raw):
    parser = RequestParser(ParserOptions(limit_request_field_size=400_000,
                                         limit_request_fields=10_000))
    started = time.perf_counter()
    count = 0
    for i in range(len(raw)):
        parser.feed(raw[i:i + 1])
        while (event := parser.next_event()) is not NEED_DATA:
            count += type(event) is EndOfMessage
    assert count == 1
    assert time.perf_counter() - started < 5


def test_options_from_config_reads_gunicorn_settings():
    cfg = Config()
    cfg.set("limit_request_line", 100)
    cfg.set("header_map", "refuse")
    cfg.set("forwarder_headers", "SCRIPT_NAME,X_CUSTOM")
    cfg.set("proxy_protocol", "v2")
    cfg.set("permit_obsolete_folding", True)
    options = ParserOptions.from_config(cfg)
    assert options.limit_request_line == 100
    assert options.header_map == "refuse"
    assert options.forwarder_headers == frozenset({"SCRIPT_NAME", "X_CUSTOM"})
    assert options.proxy_protocol == "v2" and options.permit_obsolete_folding
    assert dict(options.secure_scheme_headers) == {
        "X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}
    assert ParserOptions.from_config(Config()) == ParserOptions()


@pytest.mark.parametrize("kwargs", [dict(header_map="bogus"), dict(proxy_protocol="v3"),
                                    dict(limit_request_line=-1)])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        ParserOptions(**kwargs)


@pytest.mark.parametrize("allowed,peer,trusted", [
    (["127.0.0.1", "::1"], ("127.0.0.1", 5000), True),
    (["127.0.0.1", "::1"], ("::1", 5000, 0, 0), True),
    (["127.0.0.1", "::1"], ("10.0.0.1", 5000), False),
    ("10.0.0.0/8, 192.168.1.1", ("10.20.30.40", 1), True),
    ("10.0.0.0/8, 192.168.1.1", ("192.168.1.2", 1), False),
    (["10.0.0.0/8"], ("::ffff:10.1.2.3", 1, 0, 0), True),
    (["fe80::/10"], ("fe80::1%eth0", 1, 0, 2), True),
    (["*"], ("203.0.113.9", 1), True),
    ([], ("127.0.0.1", 1), False),
    ([], "", True),
    ([], b"\x00abstract", True),
    ([], None, True),
    (["127.0.0.1"], ("not-an-ip", 1), False),
])
def test_address_matcher(allowed, peer, trusted):
    matcher = AddressMatcher(allowed)
    assert matcher.allows(peer) is trusted
    assert matcher.allows(peer) is trusted  # cached answer


def test_address_matcher_rejects_bad_entries():
    with pytest.raises(ValueError):
        AddressMatcher(["not-an-ip"])


def test_error_tree_and_statuses():
    assert issubclass(errors.HTTPError, GunicornError)
    statuses = {errors.LimitRequestLine: 414, errors.LimitRequestHeaders: 431,
                errors.ExpectationFailed: 417, errors.UnsupportedTransferCoding: 501,
                errors.ForbiddenProxyRequest: 403, errors.InvalidResponseHeader: 500,
                errors.InvalidHeader: 400, errors.IncompleteRequest: 400}
    for cls, status in statuses.items():
        assert cls.status == status and cls.reason
    assert issubclass(errors.InvalidResponseHeader, errors.ResponseError)
    assert not issubclass(errors.InvalidResponseHeader, errors.RequestError)
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.HTTPError) and obj is not errors.HTTPError:
            assert name in errors.__doc__, f"{name} missing from the tree in the docstring"


def test_public_surface_is_sorted_and_complete():
    assert http_api.__all__ == sorted(http_api.__all__)
    for name in http_api.__all__:
        assert hasattr(http_api, name)


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), max_size=8),
       trailers=st.lists(st.tuples(st.sampled_from(["X-Sum", "X-Count", "Server-Timing"]),
                                   st.text(alphabet="abc =;,0123456789", max_size=20)),
                         max_size=3),
       cuts=st.lists(st.integers(0, 4000), max_size=10))
def test_chunked_round_trip_through_framer_and_parser(pieces, trailers, cuts):
    framer = ResponseFramer("POST", (1, 1), True)
    framer.start("200 OK", [], date="Sun, 06 Nov 1994 08:49:37 GMT")
    wire = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    wire += b"".join(framer.body(p) for p in pieces) + framer.end(trailers)
    parser = RequestParser(ParserOptions())
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    body, end = bytearray(), None
    for a, b in zip(points, points[1:], strict=False):
        parser.feed(wire[a:b])
        for event in events_of(parser):
            if type(event) is Data:
                body += event.data
            elif type(event) is EndOfMessage:
                end = event
    assert bytes(body) == b"".join(pieces) and framer.body_bytes == len(body)
    assert end is not None
    assert end.trailers == [(name.upper(), value.strip()) for name, value in trailers]
