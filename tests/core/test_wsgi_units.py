"""The WSGI layer on a real Connection over a socketpair: wsgi.input, environ, start_response."""

from __future__ import annotations

import socket
import sys

import pytest
from gunicorn.config.config import Config
from gunicorn.http.dates import DateCache
from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.events import Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from gunicorn.workers.connection import Connection
from gunicorn.wsgi.environ import EnvironBuilder, PathOutsideScriptName, wsgi_path
from gunicorn.wsgi.exchange import Exchange, ResponseNotStarted
from gunicorn.wsgi.input import WSGIInput
from gunicorn.wsgi.response import HTTP1Stream


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def make_conn(sock, cfg=None, peer=("10.0.0.1", 1234), trusted=False, proxy=False):
    cfg = cfg or Config()
    parser = RequestParser(ParserOptions.from_config(cfg), forwarded_trusted=trusted,
                           proxy_trusted=proxy)
    sock.setblocking(False)
    builder = EnvironBuilder(cfg, multithread=False)
    conn = Connection(sock, peer, parser, builder.connection_base(sock, peer), is_ssl=False,
                      io_timeout=5)
    return conn, builder


def head_of(conn):
    while True:
        event = conn.parser.next_event()
        if isinstance(event, Request):
            conn.body_done = False
            conn.continue_pending = event.expect_continue
            return event
        conn.fill(5)


def body_input(pair, raw, pieces=1):
    server, client = pair
    conn, _ = make_conn(server)
    step = max(len(raw) // pieces, 1)
    for i in range(0, len(raw), step):
        client.sendall(raw[i:i + step])
    head_of(conn)
    return WSGIInput(conn), client


CL = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\nline1\nline2\nend!!"
CHUNKED = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nlin\r\n8\r\ne1\nline2\r\n6\r\n\nend!!\r\n0\r\n\r\n")


@pytest.mark.parametrize("raw", [CL, CHUNKED], ids=["length", "chunked"])
@pytest.mark.parametrize("pieces", [1, 5, len(CHUNKED)], ids=["whole", "five", "bytewise"])
def test_input_read_forms(pair, raw, pieces):
    body, _ = body_input(pair, raw, pieces)
    assert body.read(3) == b"lin"
    assert body.readline() == b"e1\n"
    assert body.readline(3) == b"lin"
    assert list(body) == [b"e2\n", b"end!!"]
    assert body.read() == b"" and body.readline() == b""


@pytest.mark.parametrize("raw", [CL, CHUNKED], ids=["length", "chunked"])
def test_input_readlines_and_read_all(pair, raw):
    body, _ = body_input(pair, raw, 3)
    assert body.readlines(2) == [b"line1\n"]
    assert body.read() == b"line2\nend!!"


def test_input_read_none_and_zero(pair):
    body, _ = body_input(pair, CL)
    assert body.read(0) == b""
    assert body.read(None) == b"line1\nline2\nend!!"


def test_expect_continue_sent_on_first_read_only(pair):
    server, client = pair
    conn, _ = make_conn(server)
    client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue"
                   b"\r\n\r\n")
    head_of(conn)
    body = WSGIInput(conn)
    client.sendall(b"ab")
    assert body.read(1) == b"a"
    client.settimeout(5)
    assert client.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.sendall(b"cd")
    assert body.read() == b"bcd"
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)


def build(pair, raw, cfg=None, peer=("10.0.0.1", 1234), trusted=False, proxy=False):
    server, client = pair
    conn, builder = make_conn(server, cfg, peer, trusted, proxy)
    client.sendall(raw)
    req = head_of(conn)
    return builder.build(req, conn.base_environ, WSGIInput(conn), None)


def test_environ_base_keys(pair):
    env = build(pair, b"GET /a%20b?q=1 HTTP/1.0\r\nContent-Type: text/x\r\n"
                      b"Content-Length: 0\r\nX-Y: 1\r\nx-y: 2\r\n\r\n")
    assert env["PATH_INFO"] == "/a b" and env["RAW_URI"] == "/a%20b?q=1"
    assert env["CONTENT_TYPE"] == "text/x" and env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env and env["HTTP_X_Y"] == "1,2"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0" and env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["REMOTE_PORT"] == "1234" and env["wsgi.errors"] is sys.stderr
    assert env["wsgi.version"] == (1, 0) and env["wsgi.run_once"] is False


def test_unix_socket_server_name_from_host(pair):
    # socketpair() sockets are AF_UNIX: the listener has no host or port of its own.
    env = build(pair, b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", peer="")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "8080")
    assert env["REMOTE_ADDR"] == ""


def test_unix_socket_server_name_default_port(pair):
    env = build(pair, b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", peer="")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("[::1]", "80")


def test_script_name_from_trusted_header(pair):
    env = build(pair, b"GET /app/x HTTP/1.1\r\nHost: h\r\nSCRIPT_NAME: /app\r\n\r\n",
                trusted=True)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/x")


def test_script_name_header_from_untrusted_peer_ignored(pair):
    env = build(pair, b"GET /app/x HTTP/1.1\r\nHost: h\r\nSCRIPT_NAME: /app\r\n\r\n")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/app/x")


def test_path_outside_script_name(pair, monkeypatch):
    monkeypatch.setenv("SCRIPT_NAME", "/mount")
    with pytest.raises(PathOutsideScriptName) as info:
        build(pair, b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n")
    assert info.value.status == 500


def test_proxy_protocol_sets_remote_addr(pair):
    cfg = Config()
    cfg.set("proxy_protocol", "v1")
    env = build(pair, b"PROXY TCP4 192.0.2.7 198.51.100.1 4567 443\r\n"
                      b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
                cfg=cfg, proxy=True)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("192.0.2.7", "4567")
    assert (env["PROXY_ADDR"], env["PROXY_PORT"]) == ("198.51.100.1", "443")


def test_wsgi_path_is_latin1():
    assert wsgi_path("/caf%C3%A9") == "/caf\u00c3\u00a9"


# -- start_response -------------------------------------------------------------------------

def make_response(pair, method="GET", version=(1, 1), keep_alive=True):
    server, client = pair
    conn, _ = make_conn(server)
    client.sendall(f"{method} / HTTP/{version[0]}.{version[1]}\r\nHost: x\r\n\r\n".encode())
    request = head_of(conn)
    return Exchange(HTTP1Stream(conn, request, keep_alive, DateCache()), request), client


def received(client):
    client.setblocking(False)
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    return data


def test_head_and_small_body_in_one_send(pair):
    resp, client = make_response(pair)
    resp.start_response("200 OK", [("Content-Length", "2")])
    assert received(client) == b""  # nothing before the body
    resp.send_result([b"hi"])
    data = received(client)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhi")
    assert (resp.status_code, resp.sent, resp.stream.keep_alive) == (200, 2, True)


def test_second_start_response_needs_exc_info(pair):
    resp, _ = make_response(pair)
    resp.start_response("200 OK", [])
    with pytest.raises(AssertionError):
        resp.start_response("500 Oops", [])
    try:
        raise ValueError("x")
    except ValueError:
        resp.start_response("500 Internal Server Error", [], sys.exc_info())
    assert resp.status_code == 500


def test_exc_info_after_headers_sent_reraises(pair):
    resp, _ = make_response(pair)
    resp.start_response("200 OK", [])
    resp.write(b"partial")
    with pytest.raises(KeyError):
        try:
            raise KeyError("late")
        except KeyError:
            resp.start_response("500 Internal Server Error", [], sys.exc_info())


@pytest.mark.parametrize(("status", "headers"), [
    ("OK", []), ("2000 OK", []), ("200 OK", [("Bad Name", "x")]), ("200 OK", [("X", "a\nb")]),
], ids=["no-code", "long-code", "bad-name", "newline-value"])
def test_invalid_status_or_headers(pair, status, headers):
    resp, _ = make_response(pair)
    with pytest.raises(InvalidResponseHeader):
        resp.start_response(status, headers)


def test_write_before_start_response(pair):
    resp, _ = make_response(pair)
    with pytest.raises(ResponseNotStarted):
        resp.write(b"x")
    with pytest.raises(ResponseNotStarted):
        resp.send_result([b"x"])


def test_str_body_rejected(pair):
    resp, _ = make_response(pair)
    resp.start_response("200 OK", [])
    with pytest.raises(TypeError):
        resp.send_result(iter(["text"]))


def test_head_response_drops_body(pair):
    resp, client = make_response(pair, method="HEAD")
    resp.start_response("200 OK", [("Content-Length", "5")])
    resp.send_result([b"hello"])
    data = received(client)
    assert data.endswith(b"Content-Length: 5\r\n\r\n") and resp.body_dropped


def test_http10_without_length_closes(pair):
    resp, client = make_response(pair, version=(1, 0))
    resp.start_response("200 OK", [])
    resp.send_result(iter([b"a", b"b"]))
    assert received(client).endswith(b"\r\n\r\nab") and resp.stream.keep_alive is False
