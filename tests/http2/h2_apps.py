"""WSGI apps served over HTTP/2 by the tests in this directory."""

import json
import time


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/big":
        size = int(query or 0)

        def chunks():
            left = size
            while left:
                n = min(left, 16384)
                left -= n
                yield b"x" * n
        start_response("200 OK", [("Content-Length", str(size))])
        return chunks()
    if path == "/sleep":
        # The tests wait for this line (the request reached the app) instead of sleeping.
        print(f"H2-SLEEP-STARTED {query}", file=environ["wsgi.errors"], flush=True)
        time.sleep(float(query or 0.5))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/trailers":
        environ["gunicorn.http2.send_trailers"]([("x-checksum", "abc")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"body"]
    if path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</s.css>; rel=preload")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hinted"]
    if path == "/error":
        raise RuntimeError("secret detail")
    if path == "/no-start":
        return [b"never started"]  # PEP 3333: start_response first
    if path == "/oserror":
        raise FileNotFoundError("an application error, not a client that left")
    if path == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"only5"]
    if path == "/env":
        keys = ("SERVER_PROTOCOL", "wsgi.url_scheme", "HTTP_HOST", "REQUEST_METHOD",
                "PATH_INFO", "QUERY_STRING", "HTTP_COOKIE", "HTTP_VERSION", "wsgi.multithread")
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/nocontent":
        start_response("204 No Content", [])
        return [b"ignored"]
    body = b"hello " + environ["SERVER_PROTOCOL"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
