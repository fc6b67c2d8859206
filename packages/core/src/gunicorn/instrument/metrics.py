"""Metric families: how the core and plugins declare metrics, and the core's own.

Everything goes through a :class:`MetricFamilies` object, handed to plugins by the ``metrics``
hook of the plugin relay (:mod:`gunicorn.plugins`):

* :class:`PrometheusFamilies` (``--metrics-bind`` on) makes prometheus_client metrics in its
  multiprocess mode: each process writes its own files in the server's private directory,
  aggregated when ``/metrics`` is scraped (see :mod:`gunicorn.instrument.metrics_server`);
* :class:`NullFamilies` (metrics off) makes metrics whose methods do nothing, so code that
  records metrics never has to ask whether metrics are on.

Names get the ``gunicorn_`` prefix (``"dirty_calls_total"`` is exported as
``gunicorn_dirty_calls_total``). Gauges always use a ``live`` multiprocess mode: the value of a
process that died disappears once the arbiter (or whoever forked it) calls
:meth:`MetricFamilies.process_dead`; ``aggregate`` says how the live processes' values combine.
Counters and histograms of dead processes are kept, so totals never go back.

:class:`CoreMetrics` declares the core's families (the table is in docs/metrics.md);
:class:`RequestMetrics` records one finished request from the access-log seam
(:meth:`gunicorn.glogging.Logger.access`), cheaply: its label children are cached.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

PREFIX = "gunicorn_"
GAUGE_MODES: Mapping[str, str] = MappingProxyType({
    "sum": "livesum", "max": "livemax", "min": "livemin", "all": "liveall",
    "mostrecent": "livemostrecent"})
# Request durations in seconds: prometheus_client's default buckets, which fit web requests.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                    10.0)
# The method label is bounded: anything else (a client can send any token) counts as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                           "CONNECT", "TRACE"})
STATUS_CLASSES: Mapping[int, str] = MappingProxyType(
    {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"})


class _NullMetric:
    """A metric (or label child) that records nothing."""

    __slots__ = ()

    def labels(self, *args: Any, **kwargs: Any) -> _NullMetric:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


NULL_METRIC = _NullMetric()


class MetricFamilies:
    """The metric factory given to the ``metrics`` plugin hook (this base records nothing).

    Each method returns an object with prometheus_client's interface: ``labels(*values)`` for a
    labelled family, then ``inc()`` (counter), ``set()``/``inc()``/``dec()`` (gauge) or
    ``observe()`` (histogram). Declare families once, in the master (the hook runs there before
    anything forks), and keep the objects: every process forked later records into them.
    """

    enabled = False

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        """A counter (exported with a ``_total`` suffix, added when ``name`` lacks it)."""
        return NULL_METRIC

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = (),
              aggregate: str = "sum") -> Any:
        """A gauge; ``aggregate`` (sum, max, min, all, mostrecent) combines the values of the
        live processes (``all`` keeps one series per process, with a ``pid`` label)."""
        if aggregate not in GAUGE_MODES:
            raise ValueError(f"unknown gauge aggregate {aggregate!r}")
        return NULL_METRIC

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = DURATION_BUCKETS) -> Any:
        """A histogram with the given upper bounds (``+Inf`` is added)."""
        return NULL_METRIC

    def process_dead(self, pid: int) -> None:
        """Forget the gauges of process ``pid``, which exited (call it when reaping a child
        process that recorded metrics)."""


class NullFamilies(MetricFamilies):
    """Metrics off: every family records nothing."""


class PrometheusFamilies(MetricFamilies):
    """prometheus_client metrics in multiprocess mode, files under ``directory``.

    Must be created after ``PROMETHEUS_MULTIPROC_DIR`` is set to ``directory`` and before the
    first fork (see :class:`gunicorn.instrument.metrics_service.MetricsService`).
    """

    enabled = True

    def __init__(self, directory: str) -> None:
        import prometheus_client  # optional dependency: only with --metrics-bind

        self.directory = directory
        self._client = prometheus_client
        self._declared: dict[str, tuple[str, tuple[str, ...], Any]] = {}

    def _make(self, kind: str, name: str, labels: Sequence[str], build: Any) -> Any:
        full = name if name.startswith(PREFIX) else PREFIX + name
        key = full.removesuffix("_total") if kind == "counter" else full
        labels = tuple(labels)
        known = self._declared.get(key)
        if known is not None:
            if known[:2] != (kind, labels):
                raise ValueError(f"metric {full!r} is already declared as a {known[0]} with "
                                 f"labels {known[1]}")
            return known[2]
        # registry=None: in multiprocess mode the exposition reads the files, never a registry.
        metric = build(full, labels)
        self._declared[key] = (kind, labels, metric)
        return metric

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        return self._make("counter", name, labels, lambda full, names: self._client.Counter(
            full, documentation, names, registry=None))

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = (),
              aggregate: str = "sum") -> Any:
        mode = GAUGE_MODES.get(aggregate)
        if mode is None:
            raise ValueError(f"unknown gauge aggregate {aggregate!r}")
        return self._make("gauge", name, labels, lambda full, names: self._client.Gauge(
            full, documentation, names, registry=None, multiprocess_mode=mode))

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = DURATION_BUCKETS) -> Any:
        return self._make("histogram", name, labels, lambda full, names: self._client.Histogram(
            full, documentation, names, registry=None, buckets=tuple(buckets)))

    def process_dead(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.directory)


class CoreMetrics:
    """The core's metric families, declared on ``families``."""

    def __init__(self, families: MetricFamilies) -> None:
        f = families
        self.families = families
        self.requests = f.counter(
            "requests_total", "Requests answered, by worker class, method and status class.",
            ("worker_class", "method", "status_class"))
        self.request_duration = f.histogram(
            "request_duration_seconds", "Time from the request head to the end of the "
            "response (as in the access log).", ("worker_class",))
        self.request_bytes = f.counter(
            "request_body_bytes_total", "Request body bytes: declared by Content-Length, or "
            "read by the application from a chunked body.", ("worker_class",))
        self.response_bytes = f.counter(
            "response_body_bytes_total", "Response body bytes sent.", ("worker_class",))
        # Moved by the drivers as requests and connections come and go (instrument/live.py).
        self.requests_in_flight = f.gauge(
            "requests_in_flight", "Requests whose application is running.", ("worker_class",))
        self.keepalive_connections = f.gauge(
            "keepalive_connections", "Connections that wait, idle, for their next request.",
            ("worker_class",))
        self.websocket_sessions = f.gauge(
            "websocket_sessions", "WebSockets open (accepted, not closed yet).",
            ("worker_class",))
        self.websocket_sessions_closed = f.counter(
            "websocket_sessions_closed_total", "Accepted WebSockets that ended, by close code.",
            ("worker_class", "close_code"))
        self.workers_alive = f.gauge("workers_alive", "HTTP worker processes, retiring "
                                     "ones included.")
        self.workers_booted = f.gauge("workers_booted", "HTTP workers that loaded the "
                                      "application and serve.")
        self.workers_expected = f.gauge("workers_expected", "The number of HTTP workers the "
                                        "master aims for (workers, TTIN/TTOU).")
        self.worker_spawns = f.counter("worker_spawns_total", "HTTP workers forked.")
        self.worker_restarts = f.counter(
            "worker_restarts_total", "HTTP workers that exited while not asked to (crash, "
            "max_requests, timeout kill) and were replaced.")
        self.worker_exits = f.counter("worker_exits_total", "HTTP worker exits, by how they "
                                      "ended.", ("reason",))
        self.worker_kills = f.counter(
            "worker_kills_total", "Workers the master killed for being late, by reason: "
            "timeout (SIGABRT), timeout_kill (SIGKILL after an ignored SIGABRT), "
            "graceful_timeout (SIGKILL of a retiring worker).", ("reason",))
        self.reloads = f.counter("reloads_total", "Configuration reloads (HUP).")
        self.listen_backlog = f.gauge(
            "listen_backlog", "Connections waiting in a listener's accept queue (TCP on "
            "Linux).", ("listener",))
        self.listen_backlog_limit = f.gauge(
            "listen_backlog_limit", "The accept queue size of a listener (TCP on Linux).",
            ("listener",))


def status_class(code: Any) -> str:
    """``"2xx"`` for 200..299 and so on; ``"other"`` for anything else (no response)."""
    if type(code) is int:
        return STATUS_CLASSES.get(code // 100, "other") if code < 600 else "other"
    return "other"


class RequestMetrics:
    """Records finished requests into :class:`CoreMetrics` (called by the access-log seam).

    ``worker_class`` is the label value; :meth:`configure` changes it after a reload.
    """

    __slots__ = ("_core", "_worker_class", "_requests", "_duration", "_in_bytes", "_out_bytes")

    def __init__(self, core: CoreMetrics, worker_class: str) -> None:
        self._core = core
        self._requests: dict[tuple[str, str], Any] = {}
        self.configure(worker_class)

    @property
    def core(self) -> CoreMetrics:
        return self._core

    @property
    def worker_class(self) -> str:
        return self._worker_class

    def configure(self, worker_class: str) -> None:
        core = self._core
        self._worker_class = worker_class
        self._requests = {}
        self._duration = core.request_duration.labels(worker_class)
        self._in_bytes = core.request_bytes.labels(worker_class)
        self._out_bytes = core.response_bytes.labels(worker_class)

    def record(self, resp: Any, req: Any, environ: Mapping[str, Any],
               request_time: datetime.timedelta | float) -> None:
        """Count one request: ``resp``/``req``/``request_time`` as the access log gets them."""
        method = getattr(req, "method", None) or environ.get("REQUEST_METHOD") or ""
        if method not in KNOWN_METHODS:
            method = "other"
        code = getattr(resp, "status_code", None)
        key = (method, status_class(code))
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self._core.requests.labels(
                self._worker_class, key[0], key[1])
        child.inc()
        if type(request_time) is not float:
            request_time = (request_time.total_seconds()
                            if isinstance(request_time, datetime.timedelta)
                            else float(request_time))
        self._duration.observe(request_time)
        sent = getattr(resp, "sent", None)
        if sent:
            self._out_bytes.inc(sent)
        request = getattr(req, "request", req)
        length = getattr(request, "content_length", None)
        if length is None and getattr(request, "chunked", False):
            length = _chunked_bytes(resp, environ)
        if length:
            self._in_bytes.inc(length)


def _chunked_bytes(resp: Any, environ: Mapping[str, Any]) -> int:
    """Bytes the application read of a chunked request body: counted by ``wsgi.input``
    (:class:`~gunicorn.wsgi.input.WSGIInput`) or by an ASGI cycle (``body_received``)."""
    received = getattr(resp, "body_received", None)
    if received is None:
        received = getattr(environ.get("wsgi.input"), "received", None)
    return received if type(received) is int else 0
