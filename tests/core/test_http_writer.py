"""Response framing rules, checked on the bytes produced."""

from __future__ import annotations

import pytest
from gunicorn.http.dates import DateCache, http_date
from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.writer import ResponseFramer, error_response
from gunicorn.version import SERVER_SOFTWARE

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


def head_of(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = data.decode("latin-1")
    assert text.endswith("\r\n\r\n")
    status, *lines = text[:-4].split("\r\n")
    return status, [tuple(line.split(": ", 1)) for line in lines]


def names(headers) -> list[str]:
    return [n.lower() for n, _ in headers]


def test_head_has_server_date_connection_and_app_headers():
    framer = ResponseFramer("GET", (1, 1), True)
    status, headers = head_of(framer.start("200 OK", [("Content-Type", "text/plain"),
                                                      ("Content-Length", "2")], date=DATE))
    assert status == "HTTP/1.1 200 OK"
    assert headers == [("Server", SERVER_SOFTWARE), ("Date", DATE), ("Connection", "keep-alive"),
                       ("Content-Type", "text/plain"), ("Content-Length", "2")]
    assert framer.status_code == 200 and framer.headers_sent and framer.keep_alive


@pytest.mark.parametrize("name", ["Connection", "Keep-Alive", "Proxy-Authenticate",
                                  "Proxy-Authorization", "TE", "Trailers", "Transfer-Encoding",
                                  "Upgrade", "Server", "Date"])
def test_hop_by_hop_and_server_headers_are_dropped(name):
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [(name, "x"), ("Content-Length", "0")], date=DATE))
    assert names(headers).count(name.lower()) == (1 if name.lower() in ("server", "date",
                                                                        "connection") else 0)
    assert (name, "x") not in headers


def test_websocket_upgrade_headers_are_kept_on_101():
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("101 Switching Protocols", [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "abc")],
        date=DATE))
    assert ("Upgrade", "websocket") in headers
    assert names(headers).count("connection") == 1 and ("Connection", "upgrade") in headers
    assert framer.upgraded and not framer.keep_alive
    assert framer.body(b"data") == b""


def test_upgrade_header_dropped_when_not_switching():
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [("Upgrade", "websocket"), ("Content-Length", "0")],
                                      date=DATE))
    assert "upgrade" not in names(headers) and not framer.upgraded


def test_content_length_framing_truncates_writes():
    framer = ResponseFramer("GET", (1, 1), True)
    framer.start("200 OK", [("Content-Length", "5")], date=DATE)
    assert framer.body(b"hel") == b"hel"
    assert framer.body(b"lo world") == b"lo"
    assert framer.body(b"more") == b""
    assert framer.end() == b""
    assert framer.body_bytes == 5 and framer.keep_alive


def test_short_content_length_body_closes_connection():
    framer = ResponseFramer("GET", (1, 1), True)
    framer.start("200 OK", [("Content-Length", "10")], date=DATE)
    framer.body(b"abc")
    framer.end()
    assert not framer.keep_alive


def test_http11_without_length_is_chunked():
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [], date=DATE))
    assert ("Transfer-Encoding", "chunked") in headers and framer.chunked
    out = framer.body(b"hello") + framer.body(b"") + framer.body(b"x" * 17) + framer.end()
    assert out == b"5\r\nhello\r\n11\r\n" + b"x" * 17 + b"\r\n0\r\n\r\n"
    assert framer.body_bytes == 22 and framer.keep_alive


def test_chunked_trailers():
    framer = ResponseFramer("POST", (1, 1), True)
    framer.start("200 OK", [], date=DATE)
    assert framer.end([("X-Sum", "1")]) == b"0\r\nX-Sum: 1\r\n\r\n"


def test_http10_without_length_is_close_delimited():
    framer = ResponseFramer("GET", (1, 0), True)
    status, headers = head_of(framer.start("200 OK", [], date=DATE))
    assert status == "HTTP/1.1 200 OK"
    assert ("Connection", "close") in headers and "transfer-encoding" not in names(headers)
    assert framer.body(b"raw") == b"raw" and framer.end() == b""
    assert not framer.keep_alive


def test_http10_keep_alive_with_length():
    framer = ResponseFramer("GET", (1, 0), True)
    _, headers = head_of(framer.start("200 OK", [("Content-Length", "1")], date=DATE))
    assert ("Connection", "keep-alive") in headers and framer.keep_alive


def test_client_close_gives_connection_close():
    framer = ResponseFramer("GET", (1, 1), False)
    _, headers = head_of(framer.start("200 OK", [("Content-Length", "0")], date=DATE))
    assert ("Connection", "close") in headers and not framer.keep_alive


@pytest.mark.parametrize("method,status,keeps_length", [
    ("HEAD", "200 OK", True), ("GET", "304 Not Modified", True),
    ("GET", "204 No Content", False), ("GET", "103 Early Hints", False),
])
def test_bodiless_responses(method, status, keeps_length):
    framer = ResponseFramer(method, (1, 1), True)
    _, headers = head_of(framer.start(status, [("Content-Length", "5")], date=DATE))
    assert ("content-length" in names(headers)) is keeps_length
    assert "transfer-encoding" not in names(headers)
    assert framer.body(b"hello") == b"" and framer.body_dropped
    assert framer.end() == b"" and framer.keep_alive and framer.body_bytes == 0


def test_head_without_length_is_not_chunked():
    framer = ResponseFramer("HEAD", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [], date=DATE))
    assert "transfer-encoding" not in names(headers)


@pytest.mark.parametrize("headers", [
    [("Bad Name", "x")], [("X-A", "a\r\nInjected: 1")], [("X-A", "a\nb")], [("X-A", "nul\x00")],
    [("X-A", "\u20ac")], [("", "x")], [("X-A", 1)], [(b"X-A", "x")], [("X-A",)],
    [("Content-Length", "abc")], [("Content-Length", "1"), ("Content-Length", "2")],
])
def test_invalid_headers_raise_and_leave_framer_unstarted(headers):
    framer = ResponseFramer("GET", (1, 1), True)
    with pytest.raises(InvalidResponseHeader) as info:
        framer.start("200 OK", headers, date=DATE)
    assert info.value.status == 500 and not framer.headers_sent
    framer.start("500 Internal Server Error", [("Content-Length", "0")], date=DATE)


@pytest.mark.parametrize("status", ["OK", "20 OK", "2000 OK", "200\r\nX: y", "099 Low"])
def test_invalid_status_raises(status):
    with pytest.raises(InvalidResponseHeader):
        ResponseFramer("GET", (1, 1), True).start(status, [], date=DATE)


def test_status_without_reason_keeps_the_space():
    framer = ResponseFramer("GET", (1, 1), True)
    assert framer.start("200", [("Content-Length", "0")], date=DATE).startswith(b"HTTP/1.1 200 \r\n")


def test_identical_duplicate_content_length_is_collapsed():
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [("Content-Length", "1"), ("content-length", "1")],
                                      date=DATE))
    assert names(headers).count("content-length") == 1


def test_informational_responses():
    framer = ResponseFramer("POST", (1, 1), True)
    assert framer.informational("100 Continue", []) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert framer.informational("103 Early Hints", [("Link", "</a.css>; rel=preload")]) == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
    with pytest.raises(InvalidResponseHeader):
        framer.informational("200 OK", [])
    with pytest.raises(InvalidResponseHeader):
        framer.informational("101 Switching Protocols", [])
    framer.start("200 OK", [("Content-Length", "0")], date=DATE)
    with pytest.raises(RuntimeError):
        framer.informational("100 Continue", [])


def test_no_informational_for_http10():
    assert ResponseFramer("POST", (1, 0), True).informational("100 Continue", []) == b""


def test_start_twice_and_body_before_start_are_errors():
    framer = ResponseFramer("GET", (1, 1), True)
    with pytest.raises(RuntimeError):
        framer.body(b"x")
    framer.start("200 OK", [], date=DATE)
    with pytest.raises(RuntimeError):
        framer.start("200 OK", [], date=DATE)


def test_error_response_is_a_small_closing_html_page():
    data = error_response(400, "Bad Request", date=DATE)
    head, body = data.split(b"\r\n\r\n", 1)
    status, headers = head_of(head + b"\r\n\r\n")
    assert status == "HTTP/1.1 400 Bad Request"
    assert ("Connection", "close") in headers
    assert ("Content-Length", str(len(body))) in headers
    assert b"400 Bad Request" in body and body.count(b"<") < 20


def test_error_response_escapes_and_validates_reason():
    assert b"&lt;x&gt;" in error_response(500, "<x>", date=DATE)
    with pytest.raises(ValueError):
        error_response(400, "Bad\r\nX: y")


def test_framer_error_response_marks_close():
    framer = ResponseFramer("GET", (1, 1), True)
    data = framer.error_response(431, "Request Header Fields Too Large", date=DATE)
    assert data.startswith(b"HTTP/1.1 431 ")
    assert not framer.keep_alive and framer.status_code == 431 and framer.headers_sent
    assert framer.body_bytes == len(data.split(b"\r\n\r\n", 1)[1])


def test_http_date_format_and_cache():
    assert http_date(784111777) == DATE
    cache = DateCache()
    assert cache.get(784111777.2) == DATE
    assert cache.get(784111777.9) is cache.get(784111777.0)
    assert cache.get(784111778) == "Sun, 06 Nov 1994 08:49:38 GMT"


def test_default_date_is_now():
    framer = ResponseFramer("GET", (1, 1), True)
    _, headers = head_of(framer.start("200 OK", [("Content-Length", "0")]))
    assert dict(headers)["Date"].endswith(" GMT")
