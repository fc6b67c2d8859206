"""The example application served by `make run`.

GET /            a greeting
GET /echo?x=1    the query string and request headers, as JSON
POST /upload     the number of bytes received (try: curl -T somefile localhost:8000/upload)
GET /stream      a chunked response (no Content-Length)
"""

import json


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/echo":
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        body = json.dumps({"query": environ.get("QUERY_STRING", ""), "headers": headers},
                          indent=2).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/upload" and environ["REQUEST_METHOD"] in ("POST", "PUT"):
        size = 0
        stream = environ["wsgi.input"]
        while chunk := stream.read(65536):
            size += len(chunk)
        body = f"received {size} bytes\n".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"line {i}\n".encode() for i in range(10))
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    body = b"Hello from gunicorn-core!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
