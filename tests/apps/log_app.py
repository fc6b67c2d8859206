"""An app for the logging tests: echoes, sets a response header, writes to stdout/stderr."""

import os
import sys


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/print":
        print("app stdout line", flush=True)
        os.write(2, b"app stderr line\n")
        sys.stderr.flush()
    body = f"pid={os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "log-app"),
                              ("Content-Length", str(len(body)))])
    return [body]
