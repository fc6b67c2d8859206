"""What every connection of one ASGI worker shares: settings, parser options, trust matchers,
the scope builder, open connections and application tasks, and the request counter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gunicorn.asgi.scope import ScopeBuilder
from gunicorn.asgi.ws_limits import WebSocketLimits
from gunicorn.glogging import records_every_request
from gunicorn.hooks import call_user_hook
from gunicorn.http.dates import DateCache
from gunicorn.http.events import Request
from gunicorn.http.select import ParserFactory
from gunicorn.instrument.live import worker_gauges
from gunicorn.instrument.request_id import RequestIds, response_header
from gunicorn.wsgi.exchange import RequestInfo, is_default_setting

if TYPE_CHECKING:
    pass

_PROTOCOLS: Mapping[tuple[int, int], str] = MappingProxyType(
    {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"})


class WorkerContext:
    """Per-worker state handed to every :class:`~gunicorn.asgi.connection.HTTPConnection`.

    ``open_count`` counts accepted connections, including those still in their TLS handshake:
    it is what ``worker_connections`` caps. ``on_slot_free`` and ``on_stop`` are the worker's
    callbacks (resume accepting; begin the graceful stop).
    """

    def __init__(self, worker: Any, loop: asyncio.AbstractEventLoop, app: Any) -> None:
        cfg = self.cfg = worker.cfg
        self.worker = worker
        self.log = worker.log
        self.loop = loop
        self.app = app
        self.parsers = ParserFactory(cfg)
        self.options = self.parsers.options
        self.forwarded = self.parsers.forwarded
        self.scopes = ScopeBuilder(cfg.root_path or "", RequestIds.from_config(cfg))
        # Plugin protocols (gunicorn.protocols.ProtocolSet) set by the worker; None: HTTP/1.1 only.
        self.protocols: Any = None
        self.dates = DateCache()
        self.keepalive = max(float(cfg.keepalive), 0.0)
        # Slow clients (0: no limit): the whole head of a request once its first byte came
        # (slow loris), and a response the client takes no byte of (slow reader).
        self.header_timeout = float(cfg.header_timeout)
        self.write_timeout = float(cfg.write_timeout)
        self.grace = max(float(cfg.asgi_disconnect_grace_period), 0.0)
        self.is_ssl = bool(cfg.is_ssl)
        self.max_requests = worker.max_requests or 0
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.open_count = 0
        # WebSocket settings and the count of open WebSockets (websocket_max_connections).
        self.websockets = WebSocketLimits.from_config(cfg)
        # Live gauges (instrument/live.py; no-op objects when metrics are off).
        gauges = worker_gauges(self.log)
        self.in_flight = gauges.in_flight
        self.keepalive_count = gauges.keepalive()
        self.websockets.sessions = gauges.websockets
        # request_id_response_header: the request id is echoed in this response header.
        self.echo_header = response_header(cfg)
        self.stopping = False
        self.idle = asyncio.Event()
        self.on_slot_free: Callable[[], None] = _nothing
        self.on_stop: Callable[[], None] = _nothing
        # The default hooks do nothing: skip building their arguments on every request.
        self.pre_request = None if is_default_setting(cfg, "pre_request") else cfg.pre_request
        self.post_request = None if is_default_setting(cfg, "post_request") else cfg.post_request
        self.custom_access = records_every_request(self.log)
        # False when nothing would be done per finished request (the common production case).
        self.logs_requests = bool(self.custom_access or self.post_request is not None
                                  or getattr(self.log, "access_log_enabled", True))

    # -- bookkeeping ----------------------------------------------------------------------------

    def count_request(self) -> bool:
        """Count one request; False once the worker must stop (max_requests or a signal)."""
        worker = self.worker
        worker.nr += 1
        if self.max_requests and worker.nr >= self.max_requests and worker.alive:
            self.log.info("Autorestarting worker after current request.")
            worker.alive = False
            self.on_stop()
        return bool(worker.alive)

    def add_task(self, task: asyncio.Task[Any]) -> None:
        """Track a task the graceful stop waits for; it calls :meth:`task_finished` at its end."""
        self.tasks.add(task)
        task.add_done_callback(self.task_finished)

    def task_finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if self.stopping and not self.tasks and not self.connections:
            self.idle.set()

    def connection_closed(self, conn: Any) -> None:
        """A connection (or an accepted socket that never became one) is gone: free its slot."""
        self.connections.discard(conn)
        self.open_count -= 1
        if self.stopping:
            if not self.tasks and not self.connections:
                self.idle.set()
        else:
            self.on_slot_free()

    def sweep(self, now: float) -> None:
        """Close connections idle past their deadline (keep-alive expiry, slow heads, lingers)."""
        for conn in [c for c in self.connections if c.deadline and c.deadline <= now]:
            conn.expire()

    # -- access log -----------------------------------------------------------------------------

    def log_access(self, cycle: Any, elapsed: float) -> None:
        """The access-log line and the post_request hook of a finished request."""
        log = self.log
        post_request = self.post_request
        enabled = getattr(log, "access_log_enabled", True)
        if not enabled and post_request is None:
            if self.custom_access:
                log.access(cycle, cycle.info, {}, elapsed)
            return
        environ = self._environ(cycle.request, cycle.client, enabled)
        # A broken user hook (or custom logger) must not break the connection.
        call_user_hook(log, "post_request hook", self._access, cycle, environ, elapsed)

    def _access(self, cycle: Any, environ: dict[str, Any], elapsed: float) -> None:
        self.log.access(cycle, cycle.info, environ, elapsed)
        post_request = self.post_request
        if post_request is not None:
            post_request(self.worker, cycle.info, environ, cycle)

    @staticmethod
    def _environ(request: Request, client: Any, full: bool) -> dict[str, Any]:
        # The access log reads a few CGI-style keys; ASGI has no environ, so build just those.
        env: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "RAW_URI": request.uri,
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query,
            "SERVER_PROTOCOL": _PROTOCOLS.get(request.version) or "HTTP/{}.{}".format(*request.version),
        }
        proxy = request.proxy
        if proxy is not None:
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = proxy.src_addr, str(proxy.src_port)
        elif client is not None:
            env["REMOTE_ADDR"] = client[0]
            if client[1] is not None:
                env["REMOTE_PORT"] = str(client[1])
        if full:
            for name, value in request.headers:
                key = "HTTP_" + name.replace("-", "_")
                env[key] = env[key] + "," + value if key in env else value
        return env


class AccessRecord:
    """What the access log and post_request see of a request served outside a
    :class:`~gunicorn.asgi.cycle.RequestCycle` (a websocket session)."""

    __slots__ = ("request", "client", "info", "status", "status_code", "headers", "sent",
                 "request_id")

    def __init__(self, request: Request, client: Any, peer: Any, status_code: int,
                 request_id: str | None = None) -> None:
        self.request_id = request_id
        self.request = request
        self.client = client
        self.info = RequestInfo(request, peer)
        self.status = str(status_code)
        self.status_code = status_code
        self.headers: list[tuple[str, str]] = []
        self.sent = 0


def _nothing() -> None:
    return None
