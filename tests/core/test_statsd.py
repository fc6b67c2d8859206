"""StatsD metrics, received on real datagram sockets (UDP on loopback, UNIX under tmp_path)."""

import datetime
import logging
import os
import socket
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.instrument.statsd import Statsd, normalise_prefix, parse_statsd_host


@pytest.fixture(autouse=True)
def clean_logging():
    yield
    for name in ("gunicorn.error", "gunicorn.access"):
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()


@pytest.fixture
def udp_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def make_statsd(host, **settings):
    cfg = Config()
    cfg.set("statsd_host", host)
    cfg.set("errorlog", os.devnull)
    for name, value in settings.items():
        cfg.set(name, value)
    return Statsd(cfg)


def received(sock, count):
    return [sock.recv(4096).decode() for _ in range(count)]


def nothing_more(sock):
    sock.settimeout(0.1)
    try:
        extra = sock.recv(4096)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected datagram {extra!r}")


def response(status="200 OK", code=200):
    return SimpleNamespace(status=status, status_code=code, headers=[], sent=2)


def addr(sock):
    return f"127.0.0.1:{sock.getsockname()[1]}"


def test_config_picks_the_statsd_logger_class():
    cfg = Config()
    cfg.set("statsd_host", "localhost:8125")
    assert cfg.logger_class is Statsd


def test_a_request_sends_duration_count_and_status(udp_server):
    log = make_statsd(addr(udp_server))
    log.access(response("404 Not Found", 404), SimpleNamespace(headers=[]), {},
               datetime.timedelta(milliseconds=12, microseconds=500))
    assert received(udp_server, 3) == [
        "gunicorn.request.duration:12.5|ms",
        "gunicorn.requests:1|c|@1.0",
        "gunicorn.request.status.404:1|c|@1.0",
    ]


def test_float_request_time_and_status_without_code(udp_server):
    log = make_statsd(addr(udp_server))
    log.access(SimpleNamespace(status="503 Busy", headers=[], sent=0), None, {}, 0.25)
    assert received(udp_server, 3) == ["gunicorn.request.duration:250.0|ms",
                                       "gunicorn.requests:1|c|@1.0",
                                       "gunicorn.request.status.503:1|c|@1.0"]


@pytest.mark.parametrize("level", ["critical", "error", "warning", "exception"])
def test_log_levels_are_counted(udp_server, level):
    log = make_statsd(addr(udp_server))
    getattr(log, level)("something %s", "happened")
    assert received(udp_server, 1) == [f"gunicorn.log.{level}:1|c|@1.0"]


def test_info_and_debug_send_nothing(udp_server):
    log = make_statsd(addr(udp_server), loglevel="debug")
    log.info("hello")
    log.debug("details")
    assert nothing_more(udp_server)


@pytest.mark.parametrize(("mtype", "value", "expected"), [
    ("gauge", 3, "gunicorn.workers:3|g"),
    ("gauge", 0, "gunicorn.workers:0|g"),
    ("counter", 2, "gunicorn.workers:2|c|@1.0"),
    ("histogram", 7, "gunicorn.workers:7|h"),
    ("timer", 1.5, "gunicorn.workers:1.5|ms"),
], ids=["gauge", "zero-gauge", "counter", "histogram", "timer"])
def test_metrics_from_log_extra(udp_server, mtype, value, expected):
    log = make_statsd(addr(udp_server))
    log.info("%d workers", value,
             extra={"metric": "gunicorn.workers", "value": value, "mtype": mtype})
    assert received(udp_server, 1) == [expected]


def test_extra_with_none_value_or_unknown_type_is_skipped(udp_server):
    log = make_statsd(addr(udp_server))
    log.info("x", extra={"metric": "m", "value": None, "mtype": "gauge"})
    log.info("x", extra={"metric": "m", "value": 1, "mtype": "set"})
    log.log(logging.INFO, "", extra={"metric": "m", "value": 4, "mtype": "gauge"})
    assert received(udp_server, 1) == ["m:4|g"]
    assert nothing_more(udp_server)


def test_prefix_and_dogstatsd_tags(udp_server):
    log = make_statsd(addr(udp_server), statsd_prefix="myapp..", dogstatsd_tags="env:prod,a:b")
    log.gauge("gunicorn.workers", 2)
    log.decrement("c", 1)
    assert received(udp_server, 2) == ["myapp.gunicorn.workers:2|g|#env:prod,a:b",
                                       "myapp.c:-1|c|@1.0|#env:prod,a:b"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("", ""), ("a", "a."), ("app", "app."), ("app.", "app."), ("app...", "app."),
    ("a.b", "a.b."), (None, ""),
])
def test_normalise_prefix(raw, expected):
    assert normalise_prefix(raw) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("localhost:9125", (socket.AF_INET, ("localhost", 9125))),
    ("localhost", (socket.AF_INET, ("localhost", 8125))),
    ("[::1]:9125", (socket.AF_INET6, ("::1", 9125))),
    ("unix:///run/statsd.sock", (socket.AF_UNIX, "/run/statsd.sock")),
    (("10.0.0.1", 1), (socket.AF_INET, ("10.0.0.1", 1))),
])
def test_parse_statsd_host(value, expected):
    assert parse_statsd_host(value) == expected


def test_unix_datagram_socket(tmp_path):
    path = str(tmp_path / "statsd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        log = make_statsd(f"unix://{path}")
        log.increment("hits", 1)
        assert server.recv(4096) == b"hits:1|c|@1.0"
    finally:
        server.close()


def test_unix_socket_created_after_start_is_reached(tmp_path):
    path = str(tmp_path / "late.sock")
    log = make_statsd(f"unix://{path}")
    log.increment("lost", 1)  # nobody listens yet: dropped silently
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        log.increment("hits", 1)
        assert server.recv(4096) == b"hits:1|c|@1.0"
    finally:
        server.close()


def test_send_errors_never_break_a_request(udp_server, tmp_path):
    port = udp_server.getsockname()[1]
    udp_server.close()  # nothing listens: ICMP port unreachable makes the next send fail
    log = make_statsd(f"127.0.0.1:{port}", errorlog=str(tmp_path / "e.log"))
    for _ in range(5):
        log.access(response(), None, {}, 0.01)
        log.error("still logging")
    assert (tmp_path / "e.log").read_text().count("still logging") == 5


def test_setup_reopens_the_socket_with_the_new_host(udp_server):
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(5)
    try:
        log = make_statsd(addr(udp_server))
        cfg = Config()
        cfg.set("statsd_host", addr(other))
        cfg.set("errorlog", os.devnull)
        log.setup(cfg)
        log.gauge("g", 1)
        assert other.recv(4096) == b"g:1|g"
        assert nothing_more(udp_server)
    finally:
        other.close()


def test_reopening_the_captured_error_log_works_with_the_statsd_logger(udp_server, tmp_path):
    errorlog = tmp_path / "error.log"
    log = make_statsd(f"127.0.0.1:{udp_server.getsockname()[1]}", errorlog=str(errorlog),
                      capture_output=True)
    log.reopen_files()  # USR1: the Logger's _open(setting, path), not the StatsD socket's
    log.info("after reopen")
    assert "after reopen" in errorlog.read_text()
