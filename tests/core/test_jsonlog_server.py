"""--log-format json through real servers fed hostile requests on raw sockets: every line of
the access and error logs is one JSON object with the documented fields; request ids reach
the application and the access line."""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
from harness import server, wait_until

WORKERS = {
    "sync": ["-k", "sync", "obs_apps:app"],
    "gthread": ["-k", "gthread", "--threads", "2", "obs_apps:app"],
    "asgi": ["-k", "asgi", "obs_apps:asgi_app"],
}
UA = b'q"uote\\back\tslash \'single\' {"json": 1} caf\xc3\xa9'
ACCESS_FIELDS = {"timestamp", "level", "logger", "message", "pid", "remote_addr", "method",
                 "path", "query", "protocol", "status", "response_bytes", "duration",
                 "user_agent", "referer", "request_id"}
HEX_ID = re.compile(r"[0-9a-f]{16}")


def head(target: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: example", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


HOSTILE = [
    head(b'/a"b\\c?x="y"&z=\\\\', b"User-Agent: " + UA, b'Referer: \xff\xfe"\\',
         b'X-Request-ID: "evil"'),
    head(b"/caf\xc3\xa9/\xff\xfe?\xff=1", b"User-Agent: \xfe\xff"),
    head(b"/ctl", b"User-Agent: a\x01b\x1fc\x7fd"),
    head(b"/p\x7fq\x01"),
    head(b"/esc", b"X-Thing: \x1b[31mred"),
    head(b"/boom", b"User-Agent: " + UA),
    head(b"/tab", b"User-Agent: tab\there", b"X-Request-ID: from-proxy-42"),
]


def exchange(srv, raw: bytes) -> bytes:
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def get_json(srv, path, headers):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def json_lines(path):
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("worker", list(WORKERS), ids=list(WORKERS))
def test_every_line_is_json_whatever_the_request_holds(tmp_path, worker):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    with server(["--log-format", "json", "--log-level", "debug", "--access-logfile",
                 str(access), "--error-logfile", str(error), *WORKERS[worker]]) as srv:
        statuses = [exchange(srv, raw).split(b" ", 2)[1] for raw in HOSTILE]
        served = sum(1 for s in statuses if s in (b"200", b"500"))
        wait_until(lambda: len(json_lines(access)) >= served, timeout=10,
                   message="access lines")
        wait_until(lambda: any("boom from" in e.get("exception", "") + e["message"]
                               for e in json_lines(error)), timeout=10, message="the traceback")
    # Read after the stop: the shutdown lines are included, and each must parse.
    access_lines, error_lines = json_lines(access), json_lines(error)
    assert statuses[0] == statuses[1] == b"200" and statuses[5] == b"500", statuses
    assert access_lines and error_lines
    for line in access_lines:
        assert ACCESS_FIELDS <= set(line), line
        assert line["logger"] == "gunicorn.access" and line["level"] == "INFO"
    for line in error_lines:
        assert {"timestamp", "level", "logger", "message", "pid"} <= set(line), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d",
                            line["timestamp"])
    by_path = {line["path"]: line for line in access_lines}
    first = by_path['/a"b\\c']
    assert first["user_agent"] == UA.decode("utf-8")
    assert first["referer"] == '\\xff\\xfe"\\'
    assert first["query"] == 'x="y"&z=\\\\'
    assert first["status"] == 200 and first["method"] == "GET"
    assert HEX_ID.fullmatch(first["request_id"])  # a quoted id is not taken
    assert by_path["/caf\u00e9/\\xff\\xfe"]["user_agent"] == "\\xfe\\xff"
    assert by_path["/tab"]["request_id"] == "from-proxy-42"  # 127.0.0.1 is a trusted peer
    assert by_path["/boom"]["status"] == 500


@pytest.mark.parametrize("worker", ["sync", "asgi"])
def test_request_id_reaches_app_and_text_access_line(tmp_path, worker):
    access = tmp_path / "access.log"
    with server(["--access-logfile", str(access), "--access-logformat",
                 "%(U)s %(request_id)s", *WORKERS[worker]]) as srv:
        bodies = [get_json(srv, path, headers) for path, headers in
                  (("/one", {}), ("/two", {}), ("/given", {"X-Request-ID": "abc-123"}))]
        wait_until(lambda: len(access.read_text().splitlines()) >= 3 if access.exists() else 0,
                   timeout=10, message="access lines")
    ids = [b["request_id"] for b in bodies]
    assert HEX_ID.fullmatch(ids[0]) and HEX_ID.fullmatch(ids[1]) and ids[0] != ids[1]
    assert ids[2] == "abc-123"
    assert access.read_text().splitlines() == [f"/one {ids[0]}", f"/two {ids[1]}",
                                               "/given abc-123"]


@pytest.mark.parametrize("allowed, taken", [("10.9.9.9", False), ("127.0.0.1", True)],
                         ids=["untrusted", "trusted"])
def test_request_id_header_is_taken_from_trusted_peers_only(allowed, taken):
    with server(["--forwarded-allow-ips", allowed, "--request-id-header", "X-Trace",
                 *WORKERS["sync"]]) as srv:
        body = get_json(srv, "/", {"X-Trace": "abc-123", "X-Request-ID": "other"})
    if taken:
        assert body["request_id"] == "abc-123"
    else:
        assert HEX_ID.fullmatch(body["request_id"])
