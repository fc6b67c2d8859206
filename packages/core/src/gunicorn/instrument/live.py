"""Gauges of what a worker is doing right now: requests in flight, keep-alive connections,
open WebSockets. Drivers move them at their transitions.

A driver gets its objects once, when its worker starts, from :func:`worker_gauges`::

    gauges = worker_gauges(worker.log)        # NULL_GAUGES when --metrics-bind is off
    in_flight = gauges.in_flight              # .inc() before the app runs, .dec() in a finally
    keepalive = gauges.keepalive()            # one KeepAliveCount per driver
    keepalive.idle(conn)                      # conn waits for its next request (keep-alive)
    keepalive.busy(conn)                      # a request arrived on conn, or conn closed
    gauges.websockets.opened() / .closed(close_code)

With metrics off every object records nothing, at the cost of a method call (about 30 ns), so
drivers never ask whether metrics are on. With metrics on each move is one write to the
worker's prometheus_client file (under its lock, about 0.7 µs). The gauges sum over the live
processes; the values of a worker that died go with it (``mark_process_dead``).

**Keep-alive connections** are connections that served a request and wait, idle, for the next
one. A driver calls :meth:`KeepAliveCount.idle` when it puts such a connection aside (gthread:
parked in the poller; asgi: back to its IDLE state) and :meth:`KeepAliveCount.busy` when the
next request begins or the connection closes (both are idempotent: ``busy`` on a connection
that was not idle does nothing, so a driver may call it on every close path). ``idle`` must come
before the connection can be woken by another thread (gthread: before it is re-armed in the
poller). A greenlet-per-connection driver (gevent) calls ``idle`` before it waits for the next
request head and ``busy`` once the wait ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from gunicorn.instrument.metrics import NULL_METRIC


class KeepAliveCount:
    """The connections of one driver that wait between requests, and their gauge."""

    __slots__ = ("_gauge", "_idle")

    def __init__(self, gauge: Any) -> None:
        self._gauge = gauge
        self._idle: set[Hashable] = set()

    def idle(self, conn: Hashable) -> None:
        """``conn`` served a request and now waits for the next one."""
        idle = self._idle
        if conn not in idle:
            idle.add(conn)
            self._gauge.inc()

    def busy(self, conn: Hashable) -> None:
        """``conn`` is no longer waiting (a request began, or it closed); no-op otherwise."""
        try:
            self._idle.remove(conn)
        except KeyError:
            return
        self._gauge.dec()

    def __len__(self) -> int:
        return len(self._idle)


class _NullKeepAlive:
    __slots__ = ()

    def idle(self, conn: Hashable) -> None:
        pass

    def busy(self, conn: Hashable) -> None:
        pass

    def __len__(self) -> int:
        return 0


NULL_KEEPALIVE = _NullKeepAlive()


def close_code_label(code: Any) -> str:
    """The ``close_code`` label of a finished WebSocket: the code itself for the codes of RFC
    6455 §7.4.1 (1000-1015), ``3xxx`` (registered) or ``4xxx`` (private use) for the ranges an
    application fills as it likes (§7.4.2), ``other`` for anything else. So the label stays
    bounded whatever the peer or the application sends."""
    if type(code) is not int:
        return "other"
    if 1000 <= code <= 1015:
        return str(code)
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    return "other"


class WebSocketCount:
    """Accepted WebSockets of one worker: the open ones (a gauge) and those that ended, by
    close code (a counter)."""

    __slots__ = ("_open", "_total", "_worker_class", "_ended")

    def __init__(self, open_gauge: Any, total: Any, worker_class: str) -> None:
        self._open = open_gauge
        self._total = total  # labels (worker_class, close_code)
        self._worker_class = worker_class
        self._ended: dict[str, Any] = {}

    def opened(self) -> None:
        """The application accepted a WebSocket (101 sent)."""
        self._open.inc()

    def closed(self, code: Any) -> None:
        """An accepted WebSocket ended with close code ``code`` (1006 when it just dropped)."""
        self._open.dec()
        label = close_code_label(code)
        child = self._ended.get(label)
        if child is None:
            child = self._ended[label] = self._total.labels(self._worker_class, label)
        child.inc()


class NullWebSockets:
    __slots__ = ()

    def opened(self) -> None:
        pass

    def closed(self, code: Any) -> None:
        pass


NULL_WEBSOCKETS = NullWebSockets()


class WorkerGauges:
    """What the drivers of one worker move (see the module docstring)."""

    __slots__ = ("in_flight", "websockets", "_keepalive_gauge")

    def __init__(self, in_flight: Any, keepalive_gauge: Any, websockets: Any) -> None:
        self.in_flight = in_flight
        self.websockets = websockets
        self._keepalive_gauge = keepalive_gauge

    def keepalive(self) -> KeepAliveCount | _NullKeepAlive:
        """A keep-alive counter for one driver (each tracks its own connections)."""
        gauge = self._keepalive_gauge
        return NULL_KEEPALIVE if gauge is None else KeepAliveCount(gauge)


NULL_GAUGES = WorkerGauges(NULL_METRIC, None, NULL_WEBSOCKETS)


def worker_gauges(log: Any) -> WorkerGauges:
    """The gauges of the worker whose logger is ``log`` (the arbiter attached the request
    metrics to it before forking); :data:`NULL_GAUGES` when metrics are off."""
    metrics = getattr(log, "request_metrics", None)
    if metrics is None:
        return NULL_GAUGES
    core, label = metrics.core, metrics.worker_class
    return WorkerGauges(core.requests_in_flight.labels(label),
                        core.keepalive_connections.labels(label),
                        WebSocketCount(core.websocket_sessions.labels(label),
                                       core.websocket_sessions_closed, label))
