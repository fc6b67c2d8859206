"""The metrics sidecar: serves ``GET /metrics`` and ``GET /healthz`` on ``metrics_bind``.

Why a sidecar: a scrape aggregates every process's files (prometheus_client's
``MultiProcessCollector``), which reads the disk and can take a while with many workers; in
the master's loop it would delay signal handling and worker supervision, in a worker it would
take a request slot. A process of its own, supervised like any plugin sidecar
(:mod:`gunicorn.arbiter.sidecars`: respawned with backoff, stopped with the server), costs
the master and the workers nothing. Its listener is bound by the master before anything forks
(a bad address stops the server at start) and survives a respawn of the sidecar.

A small thread-per-connection HTTP/1.0 server (``http.server``) is enough: scrapers and load
balancers are few. At most :data:`MAX_CONNECTIONS` are served at once (more are closed at
once) and each must send its request within :data:`REQUEST_TIMEOUT` seconds.

Signals: TERM, INT and QUIT stop it (within :data:`POLL_INTERVAL`), USR1 reopens the log files,
HUP is ignored (the listener is read at start).
"""

from __future__ import annotations

import gzip
import json
import os
import selectors
import signal
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from types import FrameType
from typing import TYPE_CHECKING, Any

from gunicorn.instrument.health import HealthBoard, HealthReport, evaluate
from gunicorn.plugins import SidecarContext

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

MAX_CONNECTIONS = 16
REQUEST_TIMEOUT = 10.0
POLL_INTERVAL = 0.5
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A TCPServer over an already bound and listening socket, with a bounded thread count."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, handler: type[BaseHTTPRequestHandler],
                 app: MetricsApp) -> None:
        super().__init__(sock.getsockname(), handler, bind_and_activate=False)
        self.socket.close()
        # Still non-blocking, as the master made it (the flag is shared with the master's fd):
        # so serve_once() waits in its own selector, not in socketserver's handle_request(),
        # which would take the socket's zero timeout and spin.
        self.socket = sock
        self.app = app
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)

    def serve_once(self, timeout: float) -> None:
        """Accept and hand to a thread at most one connection, waiting up to ``timeout``."""
        if not self._selector.select(timeout):
            return
        try:
            request, client_address = self.get_request()
        except OSError:
            return  # the client went away between select and accept
        if self.verify_request(request, client_address):
            self.process_request(request, client_address)
        else:
            self.shutdown_request(request)

    def server_close(self) -> None:
        self._selector.close()
        super().server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: a scraper will retry
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MetricsApp:
    """The answers: ``/metrics`` from the multiprocess ``directory``, ``/healthz`` from the
    master's :class:`HealthBoard` and the plugins' ``health`` hooks."""

    def __init__(self, directory: str, board: HealthBoard, plugins: Any, cfg: CoreSettings, log: Any,
                 master_pid: int) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=directory)
        self.board = board
        self.plugins = plugins
        self.cfg = cfg
        self.log = log
        self.master_pid = master_pid

    def metrics(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if ``accept`` asks) and its type."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def health(self) -> HealthReport:
        sections: dict[str, Any] = {}
        if self.plugins is not None:
            try:
                sections = self.plugins.health(self.cfg)
            except Exception:  # plugin code answering a probe: report it unhealthy, keep serving
                self.log.exception("A plugin's health hook failed")
                sections = {"plugins": {"ok": False, "error": "a health hook failed"}}
        return evaluate(self.board.read(), os.getppid() == self.master_pid, self.master_pid,
                        sections, time.monotonic())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "gunicorn-metrics"
    sys_version = ""
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0]
        if path == METRICS_PATH:
            try:
                body, content_type = app.metrics(self.headers.get("Accept"))
            except (OSError, ValueError):
                app.log.exception("Cannot collect the metrics")
                self._send(500, b"metrics unavailable\n", "text/plain; charset=utf-8", send_body)
                return
            self._send(200, body, content_type, send_body)
        elif path == HEALTH_PATH:
            report = app.health()
            body = (json.dumps(report.body, sort_keys=True) + "\n").encode("ascii")
            self._send(200 if report.ok else 503, body, "application/json", send_body)
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8",
                       send_body)

    def _send(self, status: int, body: bytes, content_type: str, send_body: bool) -> None:
        gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "") and len(body) > 1024
        if gzipped:
            body = gzip.compress(body, compresslevel=5)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib signature
        self.server.app.log.debug("metrics: %s - " + format, self.address_string(), *args)

    def address_string(self) -> str:
        addr = self.client_address
        return str(addr[0]) if isinstance(addr, tuple) and addr else "unix"


class MetricsSidecar:
    """The ``run`` of the metrics :class:`~gunicorn.plugins.SidecarSpec`."""

    def __init__(self, sock: socket.socket, directory: str, board: HealthBoard,
                 plugins: Any) -> None:
        self.sock = sock
        self.directory = directory
        self.board = board
        self.plugins = plugins
        self._stop = False
        self._reopen = False

    def __call__(self, ctx: SidecarContext) -> int:
        app = MetricsApp(self.directory, self.board, self.plugins, ctx.cfg, ctx.log,
                         ctx.master_pid)
        server = _Server(self.sock, _Handler, app)
        self._install_signals()
        # Liveness for the master's sidecar heartbeat: the loop turns at least every
        # POLL_INTERVAL, and a scrape (one aggregation of the directory) is far below the
        # spec's heartbeat_timeout.
        notify = ctx.notify
        try:
            while not self._stop and os.getppid() == ctx.master_pid:
                notify()
                server.serve_once(POLL_INTERVAL)
                if self._reopen:
                    self._reopen = False
                    ctx.log.reopen_files()
        finally:
            server.server_close()
        return 0

    def _install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._handle_stop)
        signal.signal(signal.SIGUSR1, self._handle_usr1)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _handle_stop(self, sig: int, frame: FrameType | None) -> None:
        self._stop = True

    def _handle_usr1(self, sig: int, frame: FrameType | None) -> None:
        self._reopen = True  # done by the loop: never reopen files inside a signal handler

