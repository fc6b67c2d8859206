"""The WebSocket opening handshake: detection, validation and the HTTP answers (bytes only)."""

from __future__ import annotations

import pytest
from gunicorn.asgi.errors import ProtocolViolation
from gunicorn.asgi.ws_errors import HandshakeRefused
from gunicorn.asgi.ws_handshake import (
    DenialResponse,
    accept_response,
    accept_token,
    check_handshake,
    is_websocket_upgrade,
    refusal_response,
)
from gunicorn.http.events import Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = {"Host": "example.com", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}


def parse(head: bytes) -> Request:
    parser = RequestParser(ParserOptions())
    parser.feed(head)
    request = parser.next_event()
    assert isinstance(request, Request)
    return request


def handshake(method: str = "GET", version: str = "HTTP/1.1", drop: tuple[str, ...] = (),
              **extra: str) -> Request:
    fields = {k: v for k, v in GOOD.items() if k not in drop}
    fields.update({k.replace("_", "-"): v for k, v in extra.items()})
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return parse(f"{method} /chat {version}\r\n{lines}\r\n".encode("latin-1"))


def head_of(data: bytes) -> tuple[str, dict[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return head[0], {k.lower(): v for k, v in (line.split(": ", 1) for line in head[1:])}


def test_rfc6455_sample_accept_token():
    assert accept_token(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("kwargs,expected", [
    ({}, True),
    ({"Upgrade": "WebSocket"}, True),
    ({"Upgrade": "h2c, websocket"}, True),
    ({"Connection": "keep-alive, Upgrade"}, True),
    ({"Upgrade": "h2c"}, False),
    ({"Connection": "keep-alive"}, False),
    ({"method": "POST"}, False),
    ({"version": "HTTP/1.0"}, False),
], ids=["plain", "case", "token-list", "connection-list", "other-protocol", "no-conn-upgrade",
        "post", "http10"])
def test_is_websocket_upgrade(kwargs, expected):
    method = kwargs.pop("method", "GET")
    version = kwargs.pop("version", "HTTP/1.1")
    assert is_websocket_upgrade(handshake(method, version, **kwargs)) is expected


def test_plain_request_is_not_an_upgrade():
    assert not is_websocket_upgrade(parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))


def test_valid_handshake_returns_the_key():
    assert check_handshake(handshake()) == KEY


@pytest.mark.parametrize("drop,extra,status", [
    (("Sec-WebSocket-Key",), {}, 400),
    ((), {"Sec_WebSocket_Key": "c2hvcnQ="}, 400),
    ((), {"Sec_WebSocket_Key": "not base64!!!!!!!!!!!!=="}, 400),
    (("Sec-WebSocket-Version",), {}, 400),
    ((), {"Sec_WebSocket_Version": "8"}, 426),
    (("Host",), {}, 400),
    ((), {"Content_Length": "5"}, 400),
], ids=["no-key", "short-key", "bad-base64", "no-version", "version-8", "no-host", "body"])
def test_bad_handshakes_are_refused(drop, extra, status):
    with pytest.raises(HandshakeRefused) as info:
        check_handshake(handshake(drop=drop, **extra))
    assert info.value.status == status
    if status == 426:
        assert info.value.headers == (("Sec-WebSocket-Version", "13"),)


def test_duplicate_key_is_refused():
    head = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + KEY.encode() +
            b"\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n\r\n")
    with pytest.raises(HandshakeRefused):
        check_handshake(parse(head))


def test_426_refusal_names_the_supported_version():
    data = refusal_response(426, "Upgrade Required", [("Sec-WebSocket-Version", "13")])
    status, headers = head_of(data)
    assert status == "HTTP/1.1 426 Upgrade Required"
    assert headers["sec-websocket-version"] == "13" and headers["connection"] == "close"
    body = data.split(b"\r\n\r\n", 1)[1]
    assert int(headers["content-length"]) == len(body)


def test_403_refusal_closes():
    status, headers = head_of(refusal_response(403, "Forbidden"))
    assert status == "HTTP/1.1 403 Forbidden" and headers["connection"] == "close"


def test_accept_response():
    data = accept_response(KEY, "chat", ["superchat", "chat"], [(b"x-extra", b"1")])
    assert data.endswith(b"\r\n\r\n")
    status, headers = head_of(data)
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert headers["upgrade"] == "websocket" and headers["connection"] == "upgrade"
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers["sec-websocket-protocol"] == "chat" and headers["x-extra"] == "1"
    assert "content-length" not in headers and "transfer-encoding" not in headers


def test_accept_without_subprotocol():
    _, headers = head_of(accept_response(KEY, None, ["chat"], None))
    assert "sec-websocket-protocol" not in headers


@pytest.mark.parametrize("subprotocol,headers", [
    ("other", []),
    (b"chat", []),
    (None, [(b"Sec-WebSocket-Accept", b"forged")]),
    (None, [(b"sec-websocket-extensions", b"permessage-deflate")]),
    (None, [(b"x-bad", b"a\r\nb")]),
    (None, [(b"bad name", b"v")]),
    (None, [("x-str", "str")]),
    (None, [(b"x-one",)]),
], ids=["not-offered", "bytes-subprotocol", "reserved", "extensions", "crlf-value", "bad-name",
        "str-header", "not-a-pair"])
def test_accept_refuses_bad_application_input(subprotocol, headers):
    with pytest.raises(ProtocolViolation):
        accept_response(KEY, subprotocol, ["chat"], headers)


def test_denial_response_chunked_body():
    denial = DenialResponse()
    data = denial.start({"type": "websocket.http.response.start", "status": 401,
                         "headers": [(b"content-type", b"text/plain")]})
    data += denial.body({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    assert not denial.finished
    data += denial.body({"type": "websocket.http.response.body", "body": b"entry"})
    assert denial.finished and denial.status == 401
    status, headers = head_of(data)
    assert status == "HTTP/1.1 401 Unauthorized" and headers["connection"] == "close"
    assert data.endswith(b"3\r\nno \r\n5\r\nentry\r\n0\r\n\r\n")


def test_denial_response_with_length():
    denial = DenialResponse()
    data = denial.start({"status": 418, "headers": [(b"content-length", b"2")]})
    data += denial.body({"body": b"ok"})
    assert data.startswith(b"HTTP/1.1 418 ")
    assert data.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("status", [101, 100, "403", 600, None], ids=str)
def test_denial_refuses_bad_status(status):
    with pytest.raises(ProtocolViolation):
        DenialResponse().start({"status": status})


def test_denial_refuses_non_bytes_body():
    denial = DenialResponse()
    denial.start({"status": 403})
    with pytest.raises(ProtocolViolation):
        denial.body({"body": "text"})
