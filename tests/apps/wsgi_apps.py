"""WSGI apps exercising the server: echo, streaming, errors, early hints, files, slow requests."""

from __future__ import annotations

import json
import os
import time


def _json(start_response, data, status="200 OK", extra=()):
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), *extra])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    handler = ROUTES.get(path)
    if handler is None:
        start_response("404 Not Found", [("Content-Length", "9")])
        return [b"not found"]
    return handler(environ, start_response)


def hello(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def echo_lines(environ, start_response):
    lines = list(environ["wsgi.input"])
    return _json(start_response, {"lines": [line.decode() for line in lines]})


def environ_dump(environ, start_response):
    data = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    return _json(start_response, data)


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for i in range(5):
            yield b"chunk%d\n" % i
    return gen()


def status(environ, start_response):
    code = environ["QUERY_STRING"] or "204"
    reasons = {"204": "No Content", "304": "Not Modified", "200": "OK"}
    start_response(f"{code} {reasons.get(code, 'X')}", [("Content-Length", "4")])
    return [b"body"]


def boom(environ, start_response):
    raise RuntimeError("secret-internal-detail")


def boom_late(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"partial"
        raise RuntimeError("late failure")
    return gen()


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
    return [b"x"]


def hints(environ, start_response):
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
    return hello(environ, start_response)


def file(environ, start_response):
    path = environ["QUERY_STRING"]
    size = os.path.getsize(path)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 8192)


def slow(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("slow request started\n")  # tests wait for this line in the server log
    errors.flush()
    time.sleep(float(environ["QUERY_STRING"] or "1"))
    return hello(environ, start_response)


def pid(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def sized(environ, start_response):
    # /bytes?N: N bytes in one piece (a large response for clients that do not read it).
    body = b"x" * int(environ["QUERY_STRING"] or "0")
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


ROUTES = {
    "/": hello, "/echo": echo, "/lines": echo_lines, "/environ": environ_dump,
    "/stream": stream, "/status": status, "/boom": boom, "/boom_late": boom_late,
    "/bad_header": bad_header, "/hints": hints, "/file": file, "/slow": slow, "/pid": pid,
    "/write": write_callable, "/bytes": sized,
}
