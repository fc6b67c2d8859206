"""Logging, StatsD and --reload through a real gunicorn server (tests/harness.py)."""

import http.client
import os
import re
import signal
import socket

import pytest
from harness import APPS, server, wait_until


def get(srv, path, headers=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def text(path):
    return path.read_text() if path.exists() else ""


def test_access_log_file_with_custom_atoms(tmp_path):
    access = tmp_path / "access.log"
    fmt = '%(h)s "%(r)s" %(s)s %(b)s %({x-app}o)s %({user-agent}i)s %(U)s %(q)s %(p)s'
    with server(["--access-logfile", str(access), "--access-logformat", fmt,
                 "log_app:app"]) as srv:
        status, body = get(srv, "/hello?x=1", {"User-Agent": "probe/1"})
        assert status == 200
        wait_until(lambda: "/hello" in text(access), timeout=5, message="access line")
    worker_pid = body.split("=")[1]
    line = text(access).splitlines()[0]
    assert line == (f'127.0.0.1 "GET /hello?x=1 HTTP/1.1" 200 {len(body)} log-app probe/1 '
                    f"/hello x=1 <{worker_pid}>")


@pytest.mark.parametrize("worker", [["-k", "sync", "log_app:app"],
                                    ["-k", "gthread", "log_app:app"],
                                    ["-k", "asgi", "asgi_apps:app"]],
                         ids=["sync", "gthread", "asgi"])
def test_usr1_reopens_the_logs_after_logrotate(tmp_path, worker):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    with server(["--access-logfile", str(access), "--error-logfile", str(error),
                 "--access-logformat", "%(U)s", *worker]) as srv:
        get(srv, "/before")
        wait_until(lambda: "/before" in text(access), timeout=5, message="first access line")
        access.rename(tmp_path / "access.log.1")
        error.rename(tmp_path / "error.log.1")
        srv.send_signal(signal.SIGUSR1)
        # Worker and master reopen asynchronously; poll until a request lands in the new file.
        def reopened():
            get(srv, "/after")
            return "/after" in text(access)
        wait_until(reopened, timeout=10, interval=0.2, message="access log reopened")
        srv.send_signal(signal.SIGTTIN)  # the master writes to the reopened error log
        wait_until(lambda: "Booting worker" in text(error), timeout=10,
                   message="master writes to the new error log")
    assert "/before" in text(tmp_path / "access.log.1")
    assert "/before" not in text(access)


def test_capture_output_puts_app_prints_in_the_error_log(tmp_path):
    error = tmp_path / "error.log"
    with server(["--error-logfile", str(error), "--capture-output", "log_app:app"]) as srv:
        get(srv, "/print")
        wait_until(lambda: "app stderr line" in text(error), timeout=5, message="captured")
    assert "app stdout line" in text(error)


def test_syslog_receives_the_error_and_access_logs(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    lines = []
    try:
        with server(["--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}",
                     "--log-syslog-prefix", "it", "--access-logformat", "%(m)s %(U)s",
                     "log_app:app"]) as srv:
            get(srv, "/via-syslog")
            while not any("GET /via-syslog" in line for line in lines):
                lines.append(receiver.recv(4096).decode())
    finally:
        receiver.close()
    assert any(line.startswith("<14>gunicorn.it.error: ") and "Booting worker" in line
               for line in lines)
    assert any(line.startswith("<14>gunicorn.it.access: ") for line in lines)


def test_statsd_metrics_from_a_real_request(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    got = []
    try:
        with server(["--statsd-host", f"127.0.0.1:{port}", "--statsd-prefix", "svc",
                     "log_app:app"]) as srv:
            get(srv, "/missing")
            while not any("request.status" in m for m in got):
                got.append(receiver.recv(4096).decode())
    finally:
        receiver.close()
    assert "svc.gunicorn.requests:1|c|@1.0" in got
    assert "svc.gunicorn.request.status.200:1|c|@1.0" in got
    assert any(re.fullmatch(r"svc\.gunicorn\.request\.duration:[\d.]+\|ms", m) for m in got)


@pytest.mark.parametrize("engine", ["poll", "auto"])
def test_reload_restarts_the_worker_when_a_watched_file_changes(tmp_path, engine):
    watched = tmp_path / "conf" / "app.toml"
    watched.parent.mkdir()
    watched.write_text("v = 1\n")
    with server(["--reload", "--reload-engine", engine,
                 "--reload-extra-file", str(tmp_path / "conf" / "*.toml"),
                 "log_app:app"], cwd=APPS) as srv:
        (first,) = srv.wait_workers(1)
        get(srv, "/")  # the worker is up and its reloader has its baseline
        st = os.stat(watched)
        os.utime(watched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        wait_until(lambda: (pids := srv.worker_pids()) and first not in pids, timeout=10,
                   message="worker replaced after the edit")
        srv.wait_for_log(r"Worker reloading: .*app\.toml modified")
        assert get(srv, "/")[0] == 200


def test_hup_with_a_broken_logconfig_keeps_the_current_logging(tmp_path):
    error = tmp_path / "error.log"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(f"errorlog = {str(error)!r}\n")
    with server(["-c", str(conf), "log_app:app"]) as srv:
        wait_until(lambda: "Booting worker" in text(error), timeout=10, message="error log")
        conf.write_text(f"errorlog = {str(tmp_path / 'new.log')!r}\n"
                        "logconfig_dict = {'version': 1, 'handlers': "
                        "{'h': {'class': 'logging.NoSuchHandler'}}}\n")
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: "keeping the previous one" in text(error), timeout=10,
                   message="reload failure reported in the current error log")
        assert get(srv, "/")[0] == 200
    assert "NoSuchHandler" in text(error)
    assert text(tmp_path / "new.log") == ""
