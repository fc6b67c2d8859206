"""WSGI hello world for the benchmark suites: the server's own cost, no framework.

``GET /`` answers ``Hello, World!`` (13 bytes of text/plain); ``GET /payload`` 16 KiB.
"""

HELLO = b"Hello, World!"
PAYLOAD = bytes(range(32, 96)) * 256  # 16384 printable bytes

_HEADERS = {
    "/payload": [("Content-Type", "text/plain"), ("Content-Length", str(len(PAYLOAD)))],
}
_HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    headers = _HEADERS.get(path)
    if headers is None:
        start_response("200 OK", list(_HELLO_HEADERS))
        return [HELLO]
    start_response("200 OK", list(headers))
    return [PAYLOAD]
