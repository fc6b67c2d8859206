"""wsgi.errors writes to the error log, one record per line, on both workers."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest
from gunicorn.wsgi.errorlog import ErrorLogStream
from harness import GunicornServer, wait_until


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_wsgi_errors_lines_reach_the_error_logfile(tmp_path, worker):
    errlog = tmp_path / "error.log"
    args = ["-w", "1", "-k", worker, "--error-logfile", str(errlog), "wsgi_errors_app:app"]
    with GunicornServer(args).start() as srv:
        resp = httpx.get(f"{srv.url}/?q7", timeout=5)
        assert (resp.status_code, resp.text) == (200, "True")
        expected = ["line one q7", "split line q7", "listed q7", "bytes é q7", "unterminated q7",
                    "printed q7"]
        wait_until(lambda: "printed q7" in errlog.read_text(), message="printed line in log")
        lines = errlog.read_text().splitlines()
        logged = [line.split("] ", 3)[-1] for line in lines if " q7" in line]
        assert logged == expected
        assert all("[ERROR]" in line for line in lines if " q7" in line)
        # The application's lines went to the error log, not to the worker's stderr.
        assert "line one q7" not in srv.log()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def records():
    log = logging.getLogger("test.wsgi_errors")
    handler = _Records()
    log.addHandler(handler)
    log.propagate = False
    yield log, handler.messages
    log.removeHandler(handler)


def test_partial_lines_wait_for_newline_or_flush(records):
    log, messages = records
    stream = ErrorLogStream(log)
    assert stream.write("a") == 1 and messages == []
    stream.write("b\r\nc\n\nd")
    assert messages == ["ab", "c", ""]
    stream.flush()
    assert messages == ["ab", "c", "", "d"]
    stream.flush()
    stream.close()
    stream.write("still usable after close\n")
    assert messages[-1] == "still usable after close"


def test_threads_keep_their_partial_lines_apart(records):
    log, messages = records
    stream = ErrorLogStream(log)
    first_half = threading.Barrier(2)

    def writer(name: str) -> None:
        stream.write(f"{name}-start ")
        first_half.wait(timeout=5)
        stream.write(f"{name}-end\n")

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(messages) == ["t1-start t1-end", "t2-start t2-end"]
