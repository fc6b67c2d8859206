"""A real nginx in front of a test server, speaking uwsgi to it (``uwsgi_pass``).

    ng_bin = require_nginx()                      # skips the test when nginx cannot be had
    with GunicornServer(["--protocol", "uwsgi", "app:app"]) as srv, \\
            Nginx(tmp_path, f"{srv.host}:{srv.port}") as ng:
        httpx.get(ng.url("/path?q=1"))

nginx runs in the foreground as a single process (``master_process off``: no user switch, no
worker to leak) on a free loopback port, with every path under ``tmp_path``; it is stopped on
exit. When the binary is missing, :func:`require_nginx` runs ``tests/tools/ensure-tool.sh nginx nginx``
once (it installs the Debian package when we are root) and skips with its explanation otherwise.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from harness import REPO, free_port, wait_until

ENSURE_SCRIPT = REPO / "tests" / "tools" / "ensure-tool.sh"
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

# The variables of nginx's stock uwsgi_params, plus SERVER_ADDR; the client's own header fields
# follow as HTTP_* (uwsgi_pass_request_headers is on by default).
UWSGI_PARAMS = """
    uwsgi_param QUERY_STRING    $query_string;
    uwsgi_param REQUEST_METHOD  $request_method;
    uwsgi_param CONTENT_TYPE    $content_type;
    uwsgi_param CONTENT_LENGTH  $content_length;
    uwsgi_param REQUEST_URI     $request_uri;
    uwsgi_param PATH_INFO       $document_uri;
    uwsgi_param DOCUMENT_ROOT   $document_root;
    uwsgi_param SERVER_PROTOCOL $server_protocol;
    uwsgi_param REQUEST_SCHEME  $scheme;
    uwsgi_param HTTPS           $https if_not_empty;
    uwsgi_param REMOTE_ADDR     $remote_addr;
    uwsgi_param REMOTE_PORT     $remote_port;
    uwsgi_param SERVER_ADDR     $server_addr;
    uwsgi_param SERVER_PORT     $server_port;
    uwsgi_param SERVER_NAME     $server_name;
"""

_CONFIG = """
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 16m;
    keepalive_requests 1000;
    upstream gunicorn {{
        server {upstream};
        {keepalive}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            {params}
            uwsgi_pass gunicorn;
            {extra}
        }}
    }}
}}
"""


@functools.cache
def _ensure() -> str:
    """Run ensure-tool.sh once per test session; its explanation of what happened."""
    try:
        done = subprocess.run(["sh", str(ENSURE_SCRIPT), "nginx", "nginx"], capture_output=True,
                              text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ensure-tool.sh failed to run: {exc}"
    return (done.stdout + done.stderr).strip()


def nginx_binary() -> str | None:
    """The nginx executable, or None."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def require_nginx() -> str:
    """The nginx executable; installs it if we can, else skips the calling test with why."""
    import pytest

    binary = nginx_binary()
    if binary is None:
        why = _ensure()
        binary = nginx_binary()
        if binary is None:
            pytest.skip(f"nginx is not available: {why}")
    return binary


class Nginx:
    """One nginx process proxying ``location /`` to ``upstream`` with ``uwsgi_pass``.

    ``upstream`` is ``host:port`` or ``unix:/path``. ``keepalive`` > 0 adds an upstream
    connection cache of that size; ``extra`` is appended inside the location block.
    """

    def __init__(self, tmp_path: Path, upstream: str, *, keepalive: int = 0, extra: str = "",
                 params: str = UWSGI_PARAMS) -> None:
        self.prefix = Path(tmp_path) / f"nginx-{free_port()}"
        self.prefix.mkdir(parents=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(_CONFIG.format(
            prefix=self.prefix, port=self.port, upstream=upstream, params=params, extra=extra,
            keepalive=f"keepalive {keepalive};" if keepalive else ""))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def error_log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> Nginx:
        binary = require_nginx()
        stderr = open(self.prefix / "stderr.log", "wb")
        # -e: nginx opens its compiled-in error log before reading the config; keep it here.
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(self.conf),
             "-e", str(self.prefix / "error.log")],
            stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True)
        stderr.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.prefix / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{log}\n"
                                   f"{self.error_log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(ready, 10.0, message=f"nginx on port {self.port}")
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
