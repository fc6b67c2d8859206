"""The uwsgi packet parser, fed bytes only: whole, byte by byte and in random splits."""

from __future__ import annotations

import struct

import pytest
from gunicorn.http import errors
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, ProxyInfo, Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.uwsgi import (
    MAX_CGI_VARS,
    ForbiddenUWSGIRequest,
    InvalidUWSGIPacket,
    UnsupportedModifier,
    UWSGIParser,
    max_datasize,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NGINX_VARS = [
    (b"QUERY_STRING", b"a=1&b=%20"),
    (b"REQUEST_METHOD", b"GET"),
    (b"CONTENT_TYPE", b""),
    (b"CONTENT_LENGTH", b""),
    (b"REQUEST_URI", b"/caf%C3%A9/x?a=1&b=%20"),
    (b"PATH_INFO", b"/caf\xc3\xa9/x"),
    (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REQUEST_SCHEME", b"http"),
    (b"REMOTE_ADDR", b"192.0.2.7"),
    (b"REMOTE_PORT", b"51006"),
    (b"SERVER_PORT", b"8080"),
    (b"SERVER_NAME", b"example.org"),
    (b"HTTP_HOST", b"example.org:8080"),
    (b"HTTP_USER_AGENT", b"curl/7.88.1"),
    (b"HTTP_X_FOO", b"bar"),
    (b"HTTP_X_FOO", b"baz"),
]


def block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in pairs)


def packet(pairs: list[tuple[bytes, bytes]], body: bytes = b"", modifier1: int = 0,
           modifier2: int = 0) -> bytes:
    data = block(pairs)
    return struct.pack("<BHB", modifier1, len(data), modifier2) + data + body


def post(body: bytes, uri: bytes = b"/echo", **extra: bytes) -> bytes:
    pairs = [(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", uri),
             (b"CONTENT_LENGTH", str(len(body)).encode()),
             (b"CONTENT_TYPE", b"application/octet-stream")]
    pairs += [(k.encode(), v) for k, v in extra.items()]
    return packet(pairs, body)


def events(parser: UWSGIParser, max_data: int | None = None) -> list[object]:
    out: list[object] = []
    while True:
        event = parser.next_event(max_data)
        if event is NEED_DATA:
            return out
        out.append(event)


def merged(evs: list[object]) -> list[object]:
    """Join consecutive Data events, so that different feed patterns compare equal."""
    out: list[object] = []
    for event in evs:
        if type(event) is Data and out and type(out[-1]) is Data:
            out[-1] = Data(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def parse(data: bytes, splits: list[int] | None = None, options: ParserOptions | None = None,
          **kwargs: object) -> list[object]:
    parser = UWSGIParser(options or ParserOptions(), **kwargs)  # type: ignore[arg-type]
    evs: list[object] = []
    # b"" would mean EOF: cuts are strictly inside the data.
    cuts = sorted({c for c in splits or [] if 0 < c < len(data)}) + [len(data)]
    start = 0
    for cut in cuts:
        parser.feed(data[start:cut])
        start = cut
        evs += events(parser)
    return merged(evs)


def head(data: bytes, **kwargs: object) -> Request:
    first = parse(data, **kwargs)[0]
    assert type(first) is Request
    return first


# -- mapping ----------------------------------------------------------------------------------


def test_nginx_get_maps_to_the_same_request_the_http_parser_makes():
    req = head(packet(NGINX_VARS))
    assert (req.method, req.uri, req.path, req.query) == (
        "GET", "/caf%C3%A9/x?a=1&b=%20", "/caf%C3%A9/x", "a=1&b=%20")
    assert req.headers == [("HOST", "example.org:8080"), ("USER-AGENT", "curl/7.88.1"),
                           ("X-FOO", "bar"), ("X-FOO", "baz")]
    assert req.content_length is None and not req.chunked
    assert req.scheme == "http"


def test_every_request_is_reported_as_http_1_0_kept_alive():
    # The hop to nginx speaks HTTP/1.0 responses (no chunked, no 1xx); the front end decides
    # persistence, so Connection: close from the client does not close our connection.
    req = head(packet([(b"REQUEST_URI", b"/"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
                       (b"HTTP_CONNECTION", b"close, upgrade"), (b"HTTP_UPGRADE", b"h2c"),
                       (b"HTTP_EXPECT", b"100-continue")]))
    assert req.version == (1, 0)
    assert req.keep_alive and req.upgrade is None and not req.expect_continue
    assert ("CONNECTION", "close, upgrade") in req.headers


def test_client_address_comes_from_remote_addr():
    req = head(packet(NGINX_VARS + [(b"SERVER_ADDR", b"10.1.1.1")]))
    assert req.proxy == ProxyInfo("192.0.2.7", 51006, "10.1.1.1", 8080, "UWSGI")


@pytest.mark.parametrize(("port", "expected"), [(b"", 0), (b"x1", 0), (b"70000", 0),
                                                (b"443", 443)], ids=["empty", "junk", "big", "ok"])
def test_remote_port_that_is_not_a_port_is_zero(port, expected):
    req = head(packet([(b"REMOTE_ADDR", b"unix:"), (b"REMOTE_PORT", port)]))
    assert req.proxy is not None and req.proxy.src_port == expected


def test_no_remote_addr_keeps_the_socket_peer():
    assert head(packet([(b"REQUEST_URI", b"/")])).proxy is None


def test_path_info_and_query_string_without_request_uri():
    req = head(packet([(b"PATH_INFO", b"/caf\xc3\xa9/100%"), (b"QUERY_STRING", b"q=1")]))
    # "%" is re-encoded so that the environ's percent-decoding gives nginx's PATH_INFO back.
    assert (req.path, req.query, req.uri) == ("/caf\xc3\xa9/100%25", "q=1",
                                              "/caf\xc3\xa9/100%25?q=1")


def test_defaults_are_get_and_slash():
    req = head(packet([]))
    assert (req.method, req.path, req.query, req.headers) == ("GET", "/", "", [])


@pytest.mark.parametrize("https", [b"on", b"ON", b"1", b"true", b"yes"])
def test_https_variable_means_https(https):
    assert head(packet([(b"HTTPS", https)])).scheme == "https"


def test_request_scheme_https_and_tls_socket():
    assert head(packet([(b"REQUEST_SCHEME", b"https")])).scheme == "https"
    assert head(packet([(b"HTTPS", b"off")])).scheme == "http"
    assert head(packet([]), is_ssl=True).scheme == "https"


@pytest.mark.parametrize("name, value", [(b"HTTP_X_FORWARDED_PROTO", b"https"),
                                         (b"HTTP_X_FORWARDED_SSL", b"on"),
                                         (b"HTTP_X_FORWARDED_PROTOCOL", b"ssl")],
                         ids=["proto", "ssl", "protocol"])
def test_a_forwarded_scheme_header_never_sets_the_scheme_even_from_a_trusted_front_end(name, value):
    # nginx's uwsgi_params passes the client's own header through: trusting it lets anyone
    # claim https. The header still reaches the application.
    req = head(packet([(name, value)]), forwarded_trusted=True)
    assert req.scheme == "http"
    assert (name[5:].replace(b"_", b"-").decode(), value.decode()) in req.headers


@pytest.mark.parametrize("value, scheme", [(b"https", "https"), (b"HTTPS", "https"),
                                           (b"http", "http")])
def test_uwsgi_scheme_decides(value, scheme):
    pairs = [(b"REQUEST_SCHEME", b"http" if scheme == "https" else b"https"),
             (b"UWSGI_SCHEME", value)]
    assert head(packet(pairs)).scheme == scheme


def test_a_malformed_uwsgi_scheme_is_400():
    with pytest.raises(InvalidUWSGIPacket, match="UWSGI_SCHEME must be http or https"):
        head(packet([(b"UWSGI_SCHEME", b"gopher")]))


def test_cgi_content_variables_win_over_their_http_twins():
    req = head(packet([(b"CONTENT_TYPE", b"text/plain"), (b"CONTENT_LENGTH", b"0"),
                       (b"HTTP_CONTENT_TYPE", b"text/plain"), (b"HTTP_CONTENT_LENGTH", b"0")]))
    assert sorted(h for h in req.headers if h[0].startswith("CONTENT")) == [
        ("CONTENT-LENGTH", "0"), ("CONTENT-TYPE", "text/plain")]


def test_http_twins_are_a_fallback():
    req = head(packet([(b"HTTP_CONTENT_TYPE", b"text/plain"), (b"HTTP_CONTENT_LENGTH", b"2")],
                      b"hi"))
    assert req.content_length == 2 and req.header("content-type") == "text/plain"


def test_empty_cgi_content_variables_drop_the_twins():
    req = head(packet([(b"CONTENT_TYPE", b""), (b"HTTP_CONTENT_TYPE", b"x/y")]))
    assert req.header("content-type") is None


def test_transfer_encoding_of_the_client_is_dropped():
    # nginx removed the chunked coding and sends CONTENT_LENGTH, but forwards the header.
    evs = parse(post(b"abcdefg", HTTP_TRANSFER_ENCODING=b"chunked"))
    req = evs[0]
    assert type(req) is Request and not req.chunked and req.content_length == 7
    assert req.header("transfer-encoding") is None
    assert evs[1:] == [Data(b"abcdefg"), EndOfMessage([])]


def test_script_name_variable_becomes_the_mount_point_field():
    req = head(packet([(b"SCRIPT_NAME", b"/app"), (b"REQUEST_URI", b"/app/x")]))
    assert ("SCRIPT_NAME", "/app") in req.headers


def test_unknown_variables_are_ignored():
    req = head(packet([(b"UWSGI_SCRIPT", b"x"), (b"DOCUMENT_ROOT", b"/srv")]))
    assert req.headers == []


def test_modifier2_is_ignored():
    assert head(packet([], modifier2=7)).method == "GET"


# -- bodies, keep-alive, pipelining ----------------------------------------------------------


def test_body_by_content_length_then_the_next_packet():
    data = post(b"hello") + packet([(b"REQUEST_URI", b"/second")])
    evs = parse(data)
    assert [type(e) for e in evs] == [Request, Data, EndOfMessage, Request, EndOfMessage]
    assert evs[1] == Data(b"hello") and evs[3].path == "/second"


def test_max_data_bounds_each_data_event():
    parser = UWSGIParser(ParserOptions())
    parser.feed(post(b"x" * 10))
    evs = events(parser, max_data=4)
    assert [len(e.data) for e in evs if type(e) is Data] == [4, 4, 2]


def test_trailing_data_is_what_is_not_parsed_yet():
    parser = UWSGIParser(ParserOptions())
    second = packet([(b"REQUEST_URI", b"/2")])
    parser.feed(packet([]) + second[:3])
    assert type(parser.next_event()) is Request
    assert type(parser.next_event()) is EndOfMessage
    assert parser.next_event() is NEED_DATA
    assert parser.trailing_data() == second[:3]


def test_idle_close_is_incomplete_with_nothing_received():
    parser = UWSGIParser(ParserOptions())
    parser.feed(b"")
    with pytest.raises(errors.IncompleteRequest) as info:
        parser.next_event()
    assert info.value.received == 0 and parser.at_eof


def test_proxy_info_follows_the_latest_request():
    parser = UWSGIParser(ParserOptions())
    parser.feed(packet([(b"REMOTE_ADDR", b"192.0.2.1")]))
    parser.next_event()
    assert parser.proxy_info is not None and parser.proxy_info.src_addr == "192.0.2.1"


FEEDS = {
    "nginx-get": packet(NGINX_VARS),
    "post": post(b"0123456789" * 30, HTTP_X_A=b"1"),
    "pipelined": post(b"abc") + packet(NGINX_VARS) + post(b"", uri=b"/e?x=%41"),
}


@pytest.mark.parametrize("name", FEEDS)
def test_byte_by_byte_equals_whole(name):
    data = FEEDS[name]
    assert parse(data, list(range(1, len(data)))) == parse(data)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FEEDS)), st.lists(st.integers(min_value=0, max_value=800),
                                               max_size=12))
def test_random_splits_equal_whole(name, cuts):
    data = FEEDS[name]
    assert parse(data, [c for c in cuts if c < len(data)]) == parse(data)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10),
                          st.binary(max_size=40).filter(lambda v: all(b >= 0x20 for b in v))),
                max_size=20),
       st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=900), max_size=8))
def test_random_headers_and_bodies_round_trip(fields, body, cuts):
    pairs = [(b"HTTP_X_" + name.encode(), value.replace(b"\x7f", b"")) for name, value in fields]
    data = post(body) + packet(pairs)
    whole = parse(data)
    assert parse(data, [c for c in cuts if c < len(data)]) == whole
    expected = [Data(body), EndOfMessage([])] if body else [EndOfMessage([])]
    assert whole[1:1 + len(expected)] == expected
    second = whole[-2]
    assert type(second) is Request
    assert second.headers == [("X-" + name.replace("_", "-"), value.strip(b" \t").decode("latin-1"))
                              for name, value in ((n.decode()[7:], v) for n, v in pairs)]


# -- malformed packets -------------------------------------------------------------------------


BAD = {
    "modifier1": (packet([], modifier1=5), UnsupportedModifier),
    "key-length-cut": (struct.pack("<BHB", 0, 1, 0) + b"\x05", InvalidUWSGIPacket),
    "key-past-end": (struct.pack("<BHB", 0, 4, 0) + b"\x09\x00AB", InvalidUWSGIPacket),
    "value-past-end": (struct.pack("<BHB", 0, 7, 0) + b"\x01\x00A\x09\x00BC",
                       InvalidUWSGIPacket),
    "empty-name": (packet([(b"", b"x")]), InvalidUWSGIPacket),
    "duplicate-uri": (packet([(b"REQUEST_URI", b"/a"), (b"REQUEST_URI", b"/b")]),
                      InvalidUWSGIPacket),
    "duplicate-length": (packet([(b"CONTENT_LENGTH", b"1"), (b"CONTENT_LENGTH", b"1")], b"x"),
                         InvalidUWSGIPacket),
    "header-name": (packet([(b"HTTP_X(Y", b"1")]), errors.InvalidHeaderName),
    "header-ctl": (packet([(b"HTTP_X", b"a\r\nInjected: 1")]), errors.InvalidHeader),
    "remote-addr-ctl": (packet([(b"REMOTE_ADDR", b"1.2.3.4\n")]), errors.InvalidHeader),
    "content-length": (packet([(b"CONTENT_LENGTH", b"-1")]), errors.InvalidContentLength),
    "content-length-list": (packet([(b"CONTENT_LENGTH", b"1,1")], b"x"),
                            errors.InvalidContentLength),
    "method": (packet([(b"REQUEST_METHOD", b"get")]), errors.InvalidRequestMethod),
    "method-space": (packet([(b"REQUEST_METHOD", b"G T")]), errors.InvalidRequestLine),
    "target-space": (packet([(b"REQUEST_URI", b"/a b")]), errors.InvalidRequestLine),
    "target-form": (packet([(b"REQUEST_URI", b"example.org:80")]), errors.InvalidRequestTarget),
    "duplicate-host": (packet([(b"HTTP_HOST", b"a"), (b"HTTP_HOST", b"b")]),
                       errors.DuplicateHeader),
    "truncated-header": (b"\x00\x10", errors.IncompleteRequest),
    "truncated-vars": (packet([(b"REQUEST_URI", b"/")])[:-1], errors.IncompleteRequest),
    "truncated-body": (post(b"hello")[:-2], errors.IncompleteRequest),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_packet_raises_then_stays_terminal(name):
    data, error = BAD[name]
    parser = UWSGIParser(ParserOptions())
    parser.feed(data)
    parser.feed(b"")
    with pytest.raises(error) as first:
        events(parser)
    with pytest.raises(error) as again:
        parser.next_event()
    assert again.value is first.value
    assert first.value.status in (400, 403, 414, 431, 501)


@pytest.mark.parametrize("name", ["modifier1", "key-past-end", "header-ctl", "method"])
def test_bad_packet_fails_the_same_byte_by_byte(name):
    data, error = BAD[name]
    parser = UWSGIParser(ParserOptions())
    with pytest.raises(error):
        for i in range(len(data)):
            parser.feed(data[i:i + 1])
            events(parser)
        parser.feed(b"")
        events(parser)


def test_modifier_is_refused_from_the_header_alone():
    parser = UWSGIParser(ParserOptions())
    parser.feed(b"\x05\xff\xff\x00")
    with pytest.raises(UnsupportedModifier):
        parser.next_event()


def test_refused_peer_fails_before_any_byte():
    parser = UWSGIParser(ParserOptions(), allowed=False)
    with pytest.raises(ForbiddenUWSGIRequest) as info:
        parser.next_event()
    assert info.value.status == 403


# -- limits ------------------------------------------------------------------------------------


def test_request_line_limit_is_414():
    options = ParserOptions(limit_request_line=40)
    ok = b"/" + b"a" * (40 - len(b"GET  HTTP/1.0") - 1)
    assert head(packet([(b"REQUEST_URI", ok)]), options=options).path == ok.decode()
    with pytest.raises(errors.LimitRequestLine):
        parse(packet([(b"REQUEST_URI", ok + b"a")]), options=options)


def test_long_path_info_alone_is_414():
    options = ParserOptions(limit_request_line=40)
    with pytest.raises(errors.LimitRequestLine):
        parse(packet([(b"PATH_INFO", b"/" + b"a" * 40)]), options=options)


def test_too_many_header_variables_is_431():
    options = ParserOptions(limit_request_fields=3)
    fields = [(b"HTTP_X_%d" % i, b"v") for i in range(3)]
    assert len(head(packet(fields), options=options).headers) == 3
    with pytest.raises(errors.LimitRequestHeaders):
        parse(packet(fields + [(b"HTTP_X_9", b"v")]), options=options)


def test_field_size_counts_name_colon_space_value_and_crlf():
    # "X-A: 12345" is 10 bytes, 12 with the CRLF it stands for over HTTP.
    options = ParserOptions(limit_request_field_size=12)
    assert head(packet([(b"HTTP_X_A", b"12345")]), options=options).headers == [("X-A", "12345")]
    with pytest.raises(errors.LimitRequestHeaders):
        parse(packet([(b"HTTP_X_A", b"123456")]), options=options)


def test_long_cgi_variable_is_431():
    options = ParserOptions(limit_request_field_size=20)
    with pytest.raises(errors.LimitRequestHeaders):
        parse(packet([(b"DOCUMENT_ROOT", b"/" * 20)]), options=options)


def test_too_many_cgi_variables_is_431():
    many = [(b"V%d" % i, b"") for i in range(MAX_CGI_VARS + 1)]
    with pytest.raises(errors.LimitRequestHeaders):
        parse(packet(many))


def test_oversized_block_is_refused_before_it_is_buffered():
    options = ParserOptions(limit_request_line=100, limit_request_fields=2,
                            limit_request_field_size=100)
    limit = max_datasize(options)
    assert limit < 0xFFFF
    parser = UWSGIParser(options)
    parser.feed(struct.pack("<BHB", 0, limit + 1, 0))
    with pytest.raises(errors.LimitRequestHeaders):
        parser.next_event()


def test_unlimited_options_allow_the_format_maximum():
    assert max_datasize(ParserOptions(limit_request_line=0)) == 0xFFFF
    assert max_datasize(ParserOptions()) == 0xFFFF
