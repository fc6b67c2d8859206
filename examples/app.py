"""The example application served by `make run`.

GET /            a greeting
GET /echo?x=1    the query string and request headers, as JSON
POST /upload     the number of bytes received (try: curl -T somefile localhost:8000/upload)
GET /stream      a chunked response (no Content-Length)
GET /model                  what the dirty app loaded (runs in a dirty worker)
GET /factorise?n=600851475143  CPU-heavy work done by a dirty worker
GET /progress?n=5           a result streamed from a dirty worker, one line per step
"""

import json

MODEL = "dirty_app:ModelApp"


def _json(start_response, status, obj):
    body = json.dumps(obj).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def dirty(environ, start_response, path):
    from urllib.parse import parse_qs

    # Imported here so the rest of the example runs with gunicorn-core alone.
    from gunicorn.dirty import DirtyError, get_dirty_client

    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    client = get_dirty_client()
    try:
        if path == "/model":
            return _json(start_response, "200 OK", client.execute(MODEL, "info"))
        if path == "/factorise":
            number = int(query.get("n", "600851475143"))
            return _json(start_response, "200 OK",
                         {"n": number, "factors": client.execute(MODEL, "factorise", number)})
        start_response("200 OK", [("Content-Type", "application/x-ndjson")])
        steps = client.stream(MODEL, "count_up", int(query.get("n", "5")))
        return (json.dumps(step).encode() + b"\n" for step in steps)
    except DirtyError as exc:
        return _json(start_response, "503 Service Unavailable", {"error": str(exc)})


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path in ("/model", "/factorise", "/progress"):
        return dirty(environ, start_response, path)
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
