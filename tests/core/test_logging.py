"""The error log and access log: files, reopening, atomic setup(), logconfig, syslog, capture."""

import fcntl
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.errors import ConfigError
from gunicorn.glogging import OWN_HANDLER_PREFIX, Logger, parse_syslog_address
from harness import wait_until

LINE_RE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[(\w+)\] (.*)$")


@pytest.fixture(autouse=True)
def clean_logging():
    """Loggers are process-wide: give every test a clean gunicorn.* and root state back."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for name in ("gunicorn.error", "gunicorn.access"):
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
        log.disabled = False
    for handler in list(root.handlers):
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def own_handlers(name):
    """Our handlers on a logger (pytest's capture handlers also attach to non-propagating ones)."""
    return [h for h in logging.getLogger(name).handlers
            if (h.get_name() or "").startswith(OWN_HANDLER_PREFIX)]


def make_cfg(**settings):
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def read_lines(path):
    for handler in logging.getLogger("gunicorn.error").handlers + \
            logging.getLogger("gunicorn.access").handlers:
        handler.flush()
    return path.read_text().splitlines() if path.exists() else []


def resp_req_environ():
    resp = SimpleNamespace(status="200 OK", status_code=200, sent=5,
                           headers=[("Content-Type", "text/plain")])
    req = SimpleNamespace(method="GET", uri="/p?q=1", path="/p", query="q=1", version=(1, 1),
                          headers=[("HOST", "example")])
    environ = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": "/p?q=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/p", "QUERY_STRING": "q=1"}
    return resp, req, environ


def test_error_log_lines_have_date_pid_and_level(tmp_path):
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path)))
    log.info("hello %s", "world")
    log.debug("not at info level")
    log.log("warning", "by level name")
    log.log(logging.ERROR, "by level number")
    parsed = [LINE_RE.match(line).groups() for line in read_lines(path)]
    pid = str(os.getpid())
    assert parsed == [(pid, "INFO", "hello world"), (pid, "WARNING", "by level name"),
                      (pid, "ERROR", "by level number")]


def test_loglevel_debug_lets_debug_through(tmp_path):
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path), loglevel="debug"))
    log.debug("details")
    assert read_lines(path)[0].endswith("[DEBUG] details")


def test_exception_logs_the_traceback(tmp_path):
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path)))
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("failed")
    text = path.read_text()
    assert "[ERROR] failed" in text and "Traceback" in text and "KeyError: 'boom'" in text


def test_access_log_is_off_without_accesslog_logconfig_or_syslog(tmp_path):
    log = Logger(make_cfg(errorlog=str(tmp_path / "e.log")))
    assert log.access_log_enabled is False
    log.access(*resp_req_environ(), 0.1)
    assert own_handlers("gunicorn.access") == []


def test_access_log_writes_the_default_format_to_a_file(tmp_path):
    path = tmp_path / "access.log"
    log = Logger(make_cfg(accesslog=str(path), errorlog=str(tmp_path / "e.log")))
    assert log.access_log_enabled is True
    log.access(*resp_req_environ(), 0.25)
    (line,) = read_lines(path)
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "GET /p\?q=1 HTTP/1\.1" 200 5 "-" "-"', line)


def test_access_log_to_stdout(capfd):
    log = Logger(make_cfg(accesslog="-", access_log_format="%(m)s %(U)s %(s)s"))
    log.access(*resp_req_environ(), 0.25)
    assert capfd.readouterr().out.splitlines()[-1] == "GET /p 200"


def test_a_broken_access_format_never_raises(tmp_path):
    log = Logger(make_cfg(accesslog=str(tmp_path / "a.log"), errorlog=str(tmp_path / "e.log"),
                          access_log_format="%(D)d %(h)d"))
    log.access(*resp_req_environ(), 0.25)  # %(h)d on a string: reported, not raised
    assert read_lines(tmp_path / "a.log") == []


def test_reopen_files_after_logrotate_renames_them(tmp_path):
    error, access = tmp_path / "error.log", tmp_path / "access.log"
    log = Logger(make_cfg(errorlog=str(error), accesslog=str(access),
                          access_log_format="%(U)s"))
    log.info("before")
    log.access(*resp_req_environ(), 0.1)
    error.rename(tmp_path / "error.log.1")
    access.rename(tmp_path / "access.log.1")
    log.reopen_files()
    log.info("after")
    log.access(*resp_req_environ(), 0.1)
    assert [line.split("] ")[-1] for line in read_lines(error)] == ["after"]
    assert read_lines(access) == ["/p"]
    assert read_lines(tmp_path / "error.log.1")[0].endswith("before")
    assert read_lines(tmp_path / "access.log.1") == ["/p"]


def test_close_on_exec_marks_the_log_files(tmp_path):
    log = Logger(make_cfg(errorlog=str(tmp_path / "e.log"), accesslog=str(tmp_path / "a.log")))
    log.close_on_exec()
    handlers = own_handlers("gunicorn.error") + own_handlers("gunicorn.access")
    assert len(handlers) == 2
    for handler in handlers:
        assert fcntl.fcntl(handler.stream.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_setup_applies_a_new_config_without_duplicating_handlers(tmp_path):
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    log = Logger(make_cfg(errorlog=str(first)))
    log.setup(make_cfg(errorlog=str(second)))
    log.setup(make_cfg(errorlog=str(second)))
    log.info("only in the second")
    assert len(own_handlers("gunicorn.error")) == 1
    assert read_lines(first) == []
    assert len(read_lines(second)) == 1


def test_setup_with_a_broken_logconfig_dict_raises_and_keeps_the_old_handlers(tmp_path):
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path)))
    broken = {"version": 1,
              "handlers": {"h": {"class": "logging.NoSuchHandler"}},
              "loggers": {"gunicorn.error": {"handlers": ["h"]}}}
    with pytest.raises(ConfigError) as err:
        log.setup(make_cfg(errorlog=str(tmp_path / "new.log"), logconfig_dict=broken))
    assert err.value.setting == "logconfig_dict"
    assert "logging.NoSuchHandler" in str(err.value)
    log.info("still here")
    assert read_lines(path)[-1].endswith("still here")
    assert not (tmp_path / "new.log").exists() or read_lines(tmp_path / "new.log") == []


@pytest.mark.parametrize("settings", [
    {"errorlog": "/nonexistent-dir/error.log"},
    {"accesslog": "/nonexistent-dir/access.log"},
    {"logconfig": "/nonexistent-dir/log.ini"},
    {"syslog": True, "syslog_facility": "nope"},
    {"syslog": True, "syslog_addr": "udp://localhost:port"},
    {"logconfig_dict": {"version": 1, "loggers": {"x": {"level": "LOUD"}}}},
    {"logconfig_dict": {"version": 2}},
], ids=["errorlog", "accesslog", "logconfig", "facility", "syslog-port", "level", "version"])
def test_setup_errors_leave_the_running_log_untouched(tmp_path, settings):
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path)))
    with pytest.raises(ConfigError):
        log.setup(make_cfg(**{"errorlog": str(path), **settings}))
    log.warning("after the failed reload")
    assert read_lines(path)[-1].endswith("[WARNING] after the failed reload")
    assert len(own_handlers("gunicorn.error")) == 1


def test_logconfig_dict_is_merged_with_the_defaults(tmp_path):
    path = tmp_path / "custom.log"
    config = {
        "formatters": {"short": {"format": "%(name)s|%(levelname)s|%(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path),
                              "formatter": "short"}},
        "loggers": {"gunicorn.error": {"handlers": ["file"], "level": "DEBUG",
                                       "propagate": False},
                    "gunicorn.access": {"handlers": ["file"], "level": "INFO",
                                        "propagate": False}},
    }
    log = Logger(make_cfg(logconfig_dict=config, access_log_format="%(s)s %(U)s"))
    assert log.access_log_enabled
    log.error("oops")
    log.access(*resp_req_environ(), 0.1)
    assert read_lines(path) == ["gunicorn.error|ERROR|oops", "gunicorn.access|INFO|200 /p"]


def test_logconfig_dict_handler_targeting_a_later_handler(tmp_path):
    path = tmp_path / "buffered.log"
    config = {
        "handlers": {
            "a_buffer": {"class": "logging.handlers.MemoryHandler", "capacity": 1,
                         "target": "z_file"},
            "z_file": {"class": "logging.FileHandler", "filename": str(path)},
        },
        "loggers": {"gunicorn.error": {"handlers": ["a_buffer"], "propagate": False}},
    }
    log = Logger(make_cfg(logconfig_dict=config))
    log.error("through the buffer")  # capacity 1: flushed to the target at once
    assert "through the buffer" in path.read_text()


def test_dropping_the_logconfig_on_reload_drops_its_handlers(tmp_path):
    custom, plain = tmp_path / "custom.log", tmp_path / "plain.log"
    config = {"handlers": {"file": {"class": "logging.FileHandler", "filename": str(custom)}},
              "loggers": {"gunicorn.error": {"handlers": ["file"]}}}
    log = Logger(make_cfg(logconfig_dict=config))
    log.info("one")
    log.setup(make_cfg(errorlog=str(plain)))
    log.info("two")
    assert read_lines(custom) == ["one"]
    assert read_lines(plain)[-1].endswith("[INFO] two")


def test_default_logconfig_does_not_print_twice(capfd):
    log = Logger(make_cfg(logconfig_dict={"root": {"level": "INFO", "handlers": ["console"]}}))
    log.info("once")
    captured = capfd.readouterr()
    assert (captured.out + captured.err).count("once") == 1


def test_logconfig_json_file(tmp_path):
    path = tmp_path / "json.log"
    conf = tmp_path / "log.json"
    conf.write_text(json.dumps({
        "version": 1,
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path),
                              "formatter": "plain"}},
        "loggers": {"gunicorn.error": {"handlers": ["file"], "level": "INFO",
                                       "propagate": False}},
    }))
    log = Logger(make_cfg(logconfig_json=str(conf)))
    log.info("from json")
    assert read_lines(path) == ["from json"]


def test_logconfig_ini_file_with_here_default(tmp_path):
    conf = tmp_path / "log.ini"
    conf.write_text(textwrap.dedent("""\
        [loggers]
        keys=root,error

        [handlers]
        keys=file

        [formatters]
        keys=plain

        [logger_root]
        level=WARNING
        handlers=

        [logger_error]
        level=INFO
        handlers=file
        propagate=0
        qualname=gunicorn.error

        [handler_file]
        class=FileHandler
        formatter=plain
        args=('%(here)s/ini.log', 'a')

        [formatter_plain]
        format=ini %(message)s
        """))
    log = Logger(make_cfg(logconfig=str(conf)))
    log.info("works")
    assert read_lines(tmp_path / "ini.log") == ["ini works"]


def test_broken_logconfig_ini_raises_config_error(tmp_path):
    conf = tmp_path / "log.ini"
    conf.write_text("[loggers]\nkeys=root\n\n[handlers]\nkeys=h\n\n[formatters]\nkeys=\n\n"
                    "[logger_root]\nhandlers=h\n\n[handler_h]\nclass=NoSuchHandler\nargs=()\n")
    path = tmp_path / "error.log"
    log = Logger(make_cfg(errorlog=str(path)))
    with pytest.raises(ConfigError) as err:
        log.setup(make_cfg(errorlog=str(path), logconfig=str(conf)))
    assert err.value.setting == "logconfig"
    log.info("unchanged")
    assert read_lines(path)[-1].endswith("unchanged")


@pytest.fixture
def syslog_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def drain(sock):
    sock.settimeout(0.2)
    got = []
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        return got


def test_syslog_over_udp_carries_prefix_facility_and_access_lines(syslog_server):
    port = syslog_server.getsockname()[1]
    log = Logger(make_cfg(syslog=True, syslog_addr=f"udp://127.0.0.1:{port}",
                          syslog_prefix="myapp", syslog_facility="local0",
                          access_log_format="%(m)s %(U)s", errorlog=os.devnull))
    assert log.access_log_enabled  # syslog redirects the access log too
    log.error("boom")
    log.access(*resp_req_environ(), 0.1)
    # priority = facility * 8 + severity: local0 (16) / err (3), local0 / info (6)
    assert syslog_server.recv(4096).decode() == f"<131>gunicorn.myapp.error: [{os.getpid()}] boom\x00"
    assert syslog_server.recv(4096).decode() == f"<134>gunicorn.myapp.access: [{os.getpid()}] GET /p\x00"


def test_syslog_handlers_are_not_duplicated_on_setup(syslog_server):
    port = syslog_server.getsockname()[1]
    cfg = make_cfg(syslog=True, syslog_addr=f"udp://127.0.0.1:{port}",
                   disable_redirect_access_to_syslog=True, errorlog=os.devnull)
    log = Logger(cfg)
    log.setup(cfg)
    log.setup(cfg)
    assert log.access_log_enabled is False
    log.warning("once")
    log.access(*resp_req_environ(), 0.1)
    got = drain(syslog_server)
    # user facility (1) / warning (4); the prefix defaults to the process name
    assert got == [f"<12>gunicorn.gunicorn.error: [{os.getpid()}] once\x00"]


@pytest.mark.parametrize(("addr", "expected"), [
    ("udp://localhost:514", (socket.SOCK_DGRAM, ("localhost", 514))),
    ("udp://Example.org", (socket.SOCK_DGRAM, ("example.org", 514))),
    ("tcp://10.0.0.1:1514", (socket.SOCK_STREAM, ("10.0.0.1", 1514))),
    ("udp://[::1]:5514", (socket.SOCK_DGRAM, ("::1", 5514))),
    ("unix:///dev/log", (None, "/dev/log")),
    ("unix:///dev/log#dgram", (socket.SOCK_DGRAM, "/dev/log")),
    ("unix:///dev/log#stream", (socket.SOCK_STREAM, "/dev/log")),
], ids=lambda v: v if isinstance(v, str) else "")
def test_parse_syslog_address(addr, expected):
    assert parse_syslog_address(addr) == expected


@pytest.mark.parametrize("addr", ["udp://host:port", "http://x", "unix://", "/dev/log"])
def test_parse_syslog_address_rejects(addr):
    with pytest.raises(ValueError):
        parse_syslog_address(addr)


def test_capture_output_sends_stdout_and_stderr_to_the_error_log(tmp_path):
    # fd 1 and 2 are redirected for the whole process, so this runs in a child process.
    path = tmp_path / "error.log"
    script = textwrap.dedent(f"""\
        import os, sys
        from gunicorn.config import Config
        from gunicorn.glogging import Logger
        cfg = Config()
        cfg.set("errorlog", {str(path)!r})
        cfg.set("capture_output", True)
        log = Logger(cfg)
        print("printed", flush=True)
        os.write(2, b"raw stderr\\n")
        log.info("logged")
        os.rename({str(path)!r}, {str(path)!r} + ".1")
        log.reopen_files()
        print("after reopen", flush=True)
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""
    rotated = (tmp_path / "error.log.1").read_text().splitlines()
    assert rotated[:2] == ["printed", "raw stderr"] and rotated[2].endswith("[INFO] logged")
    wait_until(lambda: path.exists(), timeout=5, message="reopened error log")
    assert path.read_text() == "after reopen\n"
