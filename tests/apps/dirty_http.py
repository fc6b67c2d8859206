"""A WSGI app whose endpoints call dirty apps (tests/dirty).

GET /socket                       the GUNICORN_DIRTY_SOCKET the HTTP worker sees
GET /call?app=A&action=X&args=J   execute(A, X, *json(J)) -> {"result": ...} or {"error": ...}
GET /stream?app=A&action=X&args=J a chunked response, one line per streamed chunk
"""

import json
import os
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyError, get_dirty_client


def _reply(start_response, status, obj):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/socket":
        return _reply(start_response, "200 OK", {"socket": os.environ.get(
            "GUNICORN_DIRTY_SOCKET")})
    args = json.loads(query.get("args", "[]"))
    client = get_dirty_client()
    if path == "/call":
        try:
            result = client.execute(query["app"], query["action"], *args)
        except DirtyError as exc:
            return _reply(start_response, "500 Internal Server Error",
                          {"error": type(exc).__name__, "message": str(exc)})
        return _reply(start_response, "200 OK", {"result": result})
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"{item}\n".encode()
                for item in client.stream(query["app"], query["action"], *args))
    return _reply(start_response, "404 Not Found", {"error": "not found"})
