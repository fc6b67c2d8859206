"""Writes to wsgi.errors in the ways applications do (tests/core/test_wsgi_errors.py)."""

import io


def app(environ, start_response):
    errors = environ["wsgi.errors"]
    tag = environ["QUERY_STRING"] or "x"
    errors.write(f"line one {tag}\n")
    errors.write("split ")
    errors.write(f"line {tag}\n")
    errors.writelines([f"listed {tag}\n", b"bytes \xc3\xa9 " + tag.encode() + b"\n"])
    errors.write(f"unterminated {tag}")
    errors.flush()
    print(f"printed {tag}", file=errors)
    body = f"{isinstance(errors, io.TextIOBase)}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
