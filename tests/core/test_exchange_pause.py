"""The exchange's pause: a stream whose send() returns True stops the pull of an iterable body
(HTTP/2 flow control keeps the pool thread free); the rest goes on when resumed."""

from __future__ import annotations

from gunicorn.http.events import Request
from gunicorn.wsgi.exchange import Exchange


class KeepingStream:
    """An ExchangeStream whose peer takes nothing until ``opened`` (what it keeps is the
    stream's business; it reports that it kept some)."""

    peer = ("10.0.0.1", 1)
    can_sendfile = False

    def __init__(self):
        self.sent = []
        self.opened = False

    def start(self, status, headers):
        return int(status.split()[0]), None

    def send(self, data, end):
        self.sent.append((data, end))
        return not self.opened

    def end(self, trailers):
        self.sent.append(("trailers", trailers))


def request():
    return Request("GET", "/", "/", "", "", (1, 1), [], "http", None, False, True, False,
                   None, False, None)


def test_iterable_body_pauses_and_resumes_where_it_stopped():
    stream = KeepingStream()
    exchange = Exchange(stream, request())
    exchange.start_response("200 OK", [])
    pulled = []

    def body():
        for chunk in (b"a", b"b", b"c"):
            pulled.append(chunk)
            yield chunk
    rest = exchange.send_result(body())
    assert rest is not None and pulled == [b"a"]  # nothing pulled past the kept chunk
    stream.opened = True
    assert exchange.send_chunks(rest) is None
    assert pulled == [b"a", b"b", b"c"]
    assert stream.sent == [(b"a", False), (b"b", False), (b"c", False), (b"", True)]


def test_list_bodies_and_write_never_pause():
    stream = KeepingStream()
    exchange = Exchange(stream, request())
    write = exchange.start_response("200 OK", [])
    assert write(b"x") is None  # the PEP 3333 write() callable returns nothing
    assert exchange.send_result([b"y"]) is None
    assert stream.sent == [(b"x", False), (b"y", True)]
