"""The parts of observability that need no server: JSON lines, request ids, the accept queue
of a real listening socket, the health board and its verdict, metric labels."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.trust import AddressMatcher
from gunicorn.instrument.access import AccessAtoms, DefaultingAtoms
from gunicorn.instrument.backlog import listener_backlog
from gunicorn.instrument.health import (
    STALE_AFTER,
    HealthBoard,
    PoolFacts,
    SharedSnapshot,
    evaluate,
)
from gunicorn.instrument.jsonlog import JsonFormatter, clean_text
from gunicorn.instrument.live import KeepAliveCount, close_code_label
from gunicorn.instrument.metrics import NULL_METRIC, NullFamilies, status_class
from gunicorn.instrument.metrics_service import exit_reason
from gunicorn.instrument.request_id import RequestIds, plausible, with_header


def record(msg, *args, exc_info=None, **extra):
    rec = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, msg, args or None,
                            exc_info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_hostile_message_is_one_json_line():
    text = 'a"b\\c\td\x01\x1f\x7f\ne \udcff caf\u00e9 \u2603'
    line = JsonFormatter().format(record("%s", text))
    assert "\n" not in line and line.isascii()
    assert json.loads(line)["message"] == text


def test_latin1_request_text_is_read_as_utf8_with_bad_bytes_spelled_out():
    assert clean_text("caf\xc3\xa9 \xff\xfe") == "caf\u00e9 \\xff\\xfe"
    assert clean_text("snow \u2603") == "snow \u2603"  # real Unicode is left alone


def test_arguments_that_do_not_fit_the_format_keep_the_line():
    line = json.loads(JsonFormatter().format(record("%d items", "many")))
    assert line["message"] == "%d items ('many',)"


def test_traceback_and_extra_fields():
    try:
        raise ValueError("bad \x00 thing")
    except ValueError:
        exc_info = sys.exc_info()
    line = json.loads(JsonFormatter(prefix="").format(
        record("failed", exc_info=exc_info, worker=3, metric="gunicorn.x", value=1)))
    assert "ValueError: bad \x00 thing" in line["exception"]
    assert line["worker"] == 3
    assert "metric" not in line and "value" not in line  # statsd plumbing, not content


def test_syslog_prefix_precedes_the_object():
    line = JsonFormatter(prefix="gunicorn.app.error: ").format(record("hi"))
    tag, _, body = line.partition(": ")
    assert tag == "gunicorn.app.error" and json.loads(body)["message"] == "hi"


def test_access_record_has_the_stable_fields():
    resp = SimpleNamespace(status="404 Not Found", status_code=404, sent=7, headers=[])
    req = SimpleNamespace(method="GET", path='/x"\xff', query="a=\\", version=(1, 1),
                          headers=[])
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_USER_AGENT": "ua\t1",
               "gunicorn.request_id": "rid", "REQUEST_METHOD": "GET"}
    rec = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s",
                            (AccessAtoms(resp, req, environ, 0.25),), None)
    line = json.loads(JsonFormatter().format(rec))
    assert line["path"] == '/x"\\xff' and line["query"] == "a=\\"
    assert (line["status"], line["response_bytes"], line["duration"]) == (404, 7, 0.25)
    assert (line["user_agent"], line["referer"], line["request_id"]) == ("ua\t1", None, "rid")
    assert line["message"] == 'GET /x"\\xff?a=\\ HTTP/1.1 404'


def test_a_subclass_atoms_mapping_still_gives_the_fields():
    atoms = DefaultingAtoms({"h": "10.0.0.2", "m": "PUT", "U": "/u", "s": "201", "B": 3,
                             "D": 1500})
    rec = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s", (atoms,),
                            None)
    line = json.loads(JsonFormatter().format(rec))
    assert (line["remote_addr"], line["method"], line["path"]) == ("10.0.0.2", "PUT", "/u")
    assert (line["status"], line["response_bytes"], line["duration"]) == (201, 3, 0.0015)
    assert line["user_agent"] is None and line["request_id"] is None


def test_logconfig_dict_default_formatter_turns_json(tmp_path):
    path = tmp_path / "custom.log"
    config = {"handlers": {"file": {"class": "logging.FileHandler", "filename": str(path),
                                    "formatter": "generic"}},
              "loggers": {"gunicorn.error": {"handlers": ["file"], "propagate": False}}}
    cfg = Config()
    cfg.set("log_format", "json")
    cfg.set("logconfig_dict", config)
    log = Logger(cfg)
    log.error("quote \" here")
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    assert json.loads(path.read_text())["message"] == 'quote " here'


@pytest.mark.parametrize(("value", "ok"), [
    ("abc-123", True), ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("a b", False),
    ('"q"', False), ("back\\slash", False), ("", False), ("x" * 201, False),
    ("caf\xe9", False)])
def test_plausible_request_ids(value, ok):
    assert plausible(value) is ok


def test_inbound_id_only_from_trusted_peers():
    ids = RequestIds("x-request-id", AddressMatcher(["10.0.0.0/8"]))
    assert ids.header_name == "X-REQUEST-ID" and ids.environ_key == "HTTP_X_REQUEST_ID"
    assert ids.pick("abc", ("10.1.2.3", 5)) == "abc"
    assert ids.pick("abc", ("192.0.2.1", 5)) != "abc"
    assert ids.pick("abc", "") == "abc"  # a UNIX-socket peer
    assert ids.for_headers([("X-REQUEST-ID", "abc")], ("10.1.2.3", 5)) == "abc"
    fresh = {ids.pick(None, ("10.1.2.3", 5)) for _ in range(100)}
    assert len(fresh) == 100 and all(len(i) == 16 for i in fresh)


def test_accept_queue_of_a_real_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(17)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        try:
            assert listener_backlog(listener) == (3, 17)
            conn, _ = listener.accept()
            conn.close()
            assert listener_backlog(listener) == (2, 17)
        finally:
            for client in clients:
                client.close()


def test_unix_listeners_report_no_backlog(tmp_path):
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "s"))
        listener.listen(5)
        assert listener_backlog(listener) is None


def test_health_board_is_shared_with_a_forked_reader():
    board = HealthBoard()
    board.publish(0, 0, 2, now=1.0)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reader side, as the metrics sidecar is
        os.close(reader)
        facts = board.read()
        os.write(writer, json.dumps([facts.loop_time, facts.booted, facts.expected]).encode())
        os._exit(0)
    os.close(writer)
    board.publish(2, 2, 2, now=5.0)  # may land before or after the child reads
    seen = json.loads(os.read(reader, 100))
    os.close(reader)
    os.waitpid(pid, 0)
    assert seen in ([1.0, 0, 2], [5.0, 2, 2])
    assert board.read() == PoolFacts(5.0, 2, 2, 2)


@pytest.mark.parametrize(("facts", "alive", "sections", "ok"), [
    (PoolFacts(100.0, 1, 1, 2), True, {}, True),
    (PoolFacts(100.0, 0, 2, 2), True, {}, False),
    (PoolFacts(100.0 - STALE_AFTER - 1, 2, 2, 2), True, {}, False),
    (PoolFacts(100.0, 2, 2, 2), False, {}, False),
    (PoolFacts(0.0, 0, 0, 0), True, {}, False),
    (PoolFacts(100.0, 2, 2, 2), True, {"dirty": {"ok": False, "ready": 0}}, False),
    (PoolFacts(100.0, 2, 2, 2), True, {"dirty": {"ok": True, "ready": 2}}, True),
], ids=["booted", "none-booted", "stale-loop", "master-gone", "no-report", "plugin-down",
        "plugin-up"])
def test_health_verdict(facts, alive, sections, ok):
    report = evaluate(facts, alive, 42, sections, now=100.0)
    assert report.ok is ok
    assert report.body["status"] == ("ok" if ok else "unavailable")
    for name, section in sections.items():
        assert report.body[name] == section


def test_status_classes_and_exit_reasons():
    assert [status_class(c) for c in (101, 204, 302, 404, 503, 0, 600, None)] == [
        "1xx", "2xx", "3xx", "4xx", "5xx", "other", "other", "other"]
    assert exit_reason(0, retiring=True) == "retired"
    assert exit_reason(0, retiring=False) == "exited"
    assert exit_reason(3 << 8, retiring=False) == "boot_error"
    assert exit_reason(9, retiring=False) == "signal_sigkill"


def test_null_families_record_nothing():
    families = NullFamilies()
    counter = families.counter("x_total", "doc", ("a",))
    assert counter is NULL_METRIC
    counter.labels("v").inc()
    families.histogram("h", "doc").observe(1.0)
    with pytest.raises(ValueError):
        families.gauge("g", "doc", aggregate="median")


def test_shared_snapshot_is_written_by_a_forked_writer():
    snapshot = SharedSnapshot(256)
    assert snapshot.read() is None
    assert snapshot.publish({"n": 1})
    pid = os.fork()
    if pid == 0:  # the writer side, as the dirty arbiter is: a child of the maker
        snapshot.publish({"n": 2, "from": "child"})
        os._exit(0)
    os.waitpid(pid, 0)
    assert snapshot.read() == {"n": 2, "from": "child"}
    assert snapshot.publish({"n": 3})  # the parent continues the child's sequence
    assert snapshot.read() == {"n": 3}
    assert not snapshot.publish({"big": "x" * 300})
    assert snapshot.read() == {"n": 3}


def test_shared_snapshot_is_not_read_while_a_write_is_in_progress():
    snapshot = SharedSnapshot(64)
    snapshot.publish({"n": 1})
    snapshot._map[0:8] = (5).to_bytes(8, "little")  # odd: a writer died mid-write
    assert snapshot.read() is None
    assert snapshot.publish({"n": 2})
    assert snapshot.read() == {"n": 2}


class _Gauge:
    def __init__(self):
        self.value = 0

    def inc(self):
        self.value += 1

    def dec(self):
        self.value -= 1


def test_keepalive_count_is_idempotent():
    gauge = _Gauge()
    count = KeepAliveCount(gauge)
    first, second = object(), object()
    count.idle(first)
    count.idle(first)
    count.idle(second)
    assert gauge.value == 2
    count.busy(first)
    count.busy(first)  # every close path may call it
    count.busy(object())
    assert gauge.value == 1 == len(count)


def test_close_code_labels_stay_bounded():
    assert [close_code_label(c) for c in (1000, 1006, 1015, 1016, 3001, 4999, 5000, None)] == [
        "1000", "1006", "1015", "other", "3xxx", "4xxx", "other", "other"]


def test_echo_header_added_once():
    headers = [("Content-Type", "text/plain")]
    assert with_header(headers, "X-Request-ID", "abc") == [*headers, ("X-Request-ID", "abc")]
    assert headers == [("Content-Type", "text/plain")]  # not modified
    own = [("x-request-id", "app")]
    assert with_header(own, "X-Request-ID", "abc") is own
    assert with_header(headers, "X-Request-ID", None) is headers
    broken = [("a", "b", "c")]
    assert with_header(broken, "X-Request-ID", "abc") is broken  # the writer refuses it
