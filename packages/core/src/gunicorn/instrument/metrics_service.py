"""The master's side of metrics: the private directory, the listener, the sidecar, the
arbiter's own metrics and the health board.

The arbiter calls, in this order (all cheap; none waits on another process):

* :meth:`MetricsService.prepare` at start, before ``on_starting`` and any preload or fork:
  with ``metrics_bind`` it makes the private multiprocess directory (``mkdtemp``: mode 0700,
  in ``worker_tmp_dir`` when set, handed to the workers' user), points
  ``PROMETHEUS_MULTIPROC_DIR`` at it (prometheus_client reads it when first imported, and
  every child inherits it), and declares the core's and the plugins' metric families (the
  ``metrics`` plugin hook, called with families that record nothing when metrics are off);
* :meth:`~MetricsService.sidecars` once the HTTP listeners are bound: binds ``metrics_bind``
  and returns the sidecar that serves it (none in a re-exec'd master until it is promoted: the
  old master still holds the address; :meth:`~MetricsService.sidecars` is called again then);
* :meth:`~MetricsService.tick` every loop turn: pool gauges, the health board, listen backlog
  (also the StatsD ``gunicorn.backlog`` metric with ``enable_backlog_metric``);
* the ``worker_*`` methods as workers are forked, killed and reaped (reaping also drops the
  dead process's live gauges, ``mark_process_dead``);
* :meth:`~MetricsService.close` when the master exits: removes the directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.config.address import parse_address
from gunicorn.config.settings.metrics import EXTRA_HINT
from gunicorn.errors import HaltServer
from gunicorn.instrument import backlog
from gunicorn.instrument.health import HealthBoard
from gunicorn.instrument.metrics import (
    CoreMetrics,
    MetricFamilies,
    NullFamilies,
    PrometheusFamilies,
    RequestMetrics,
)
from gunicorn.plugins import SidecarSpec
from gunicorn.sockets import Listener, bind_address
from gunicorn.workers.base import APP_LOAD_ERROR, WORKER_BOOT_ERROR

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
SIDECAR_NAME = "metrics"
CONFIG_ERROR = 2  # what a bad setting exits with (the CLI's convention)


def exit_reason(status: int, retiring: bool) -> str:
    """The ``reason`` label of ``gunicorn_worker_exits_total`` for a wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return "signal_" + signal.Signals(sig).name.lower()
        except ValueError:
            return f"signal_{sig}"
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "retired" if retiring else "exited"
    if code == WORKER_BOOT_ERROR:
        return "boot_error"
    if code == APP_LOAD_ERROR:
        return "app_load_error"
    return "error"


class MetricsService:
    """Owns everything metrics in the master; a no-op (but for the plugin hook) when
    ``metrics_bind`` is unset."""

    def __init__(self, cfg: CoreSettings, log: Any, plugins: Any) -> None:
        self.cfg = cfg
        self.log = log
        self.plugins = plugins
        self.families: MetricFamilies = NullFamilies()
        self.core = CoreMetrics(self.families)
        self.directory: str | None = None
        self.listener: Listener | None = None
        self.board: HealthBoard | None = None
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    # -- start --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the directory and declare every metric family (before anything forks)."""
        if self.cfg.metrics_bind:
            self.directory = self._make_directory()
            previous = os.environ.get(ENV_DIR)
            if previous and previous != self.directory:
                self.log.info("%s=%s replaced by the server's own directory", ENV_DIR, previous)
            os.environ[ENV_DIR] = self.directory
            self.families = self._prometheus_families(self.directory)
            self.core = CoreMetrics(self.families)
            self.board = HealthBoard()
            attach = getattr(self.log, "attach_metrics", None)
            if attach is not None:
                attach(RequestMetrics(self.core, self.cfg.worker_class_str))
            else:  # a logger_class not derived from gunicorn.glogging.Logger
                self.log.warning("logger_class has no attach_metrics(): no request metrics")
        if self.plugins is not None:
            self.plugins.metrics(self.families)

    def _make_directory(self) -> str:
        parent = self.cfg.worker_tmp_dir or None
        try:
            path = tempfile.mkdtemp(prefix="gunicorn-metrics-", dir=parent)  # mode 0700
            # Workers drop privileges after fork and must still write their files there.
            util.chown(path, self.cfg.uid, self.cfg.gid)
        except OSError as exc:
            raise HaltServer(f"metrics_bind: cannot create the metrics directory: {exc}",
                             CONFIG_ERROR) from exc
        return path

    def _prometheus_families(self, directory: str) -> PrometheusFamilies:
        try:
            import prometheus_client.values as values
        except ImportError as exc:
            raise HaltServer(f"metrics_bind: cannot import prometheus_client ({EXTRA_HINT}): "
                             f"{exc}", CONFIG_ERROR) from exc
        # prometheus_client picks single- or multi-process mode when first imported; if the
        # config file imported it before the directory existed, every process would keep its
        # own counts and /metrics would show none of them.
        if not getattr(values.ValueClass, "_multiprocess", False):
            raise HaltServer(
                "metrics_bind: prometheus_client was imported before the server set "
                f"{ENV_DIR} (in the config file?); import it inside hooks or the application "
                "instead", CONFIG_ERROR)
        return PrometheusFamilies(directory)

    def sidecars(self) -> list[SidecarSpec]:
        """Bind ``metrics_bind`` and return the sidecar serving it (empty when off, or while
        this master is a re-exec'd one waiting to be promoted)."""
        bind = self.cfg.metrics_bind
        if not self.enabled or self.listener is not None or bind is None:
            return []
        from gunicorn.instrument.metrics_server import MetricsSidecar

        address = parse_address(bind)
        self.listener = bind_address(address, self.cfg, self.log)
        if self.listener.path:
            os.chmod(self.listener.path, 0o600)
        self.log.info("Metrics at: %s (/metrics, /healthz)", self.listener)
        assert self.directory is not None and self.board is not None
        run = MetricsSidecar(self.listener.sock, self.directory, self.board, self.plugins)
        return [SidecarSpec(name=SIDECAR_NAME, run=run, graceful_timeout=5.0,
                            heartbeat_timeout=30.0)]

    # -- while running ------------------------------------------------------------------------

    def tick(self, arbiter: Any) -> None:
        """Once per loop turn: publish the pool's state and the listen backlog."""
        if self.enabled:
            active = arbiter.active_workers()
            booted = sum(1 for w in active if w.tmp.read_facts().booted)
            alive, expected = len(arbiter.workers), arbiter.num_workers
            core = self.core
            core.workers_alive.set(alive)
            core.workers_booted.set(booted)
            core.workers_expected.set(expected)
            assert self.board is not None
            self.board.publish(booted, alive, expected)
        if self.enabled or self.cfg.enable_backlog_metric:
            self._sample_backlog(arbiter.listeners)

    def _sample_backlog(self, listeners: list[Any]) -> None:
        samples = backlog.sample(listeners)
        for item in samples:
            self.core.listen_backlog.labels(item.listener).set(item.queued)
            self.core.listen_backlog_limit.labels(item.listener).set(item.limit)
        if samples and self.cfg.enable_backlog_metric:
            total = sum(item.queued for item in samples)
            # The statsd logger turns this into its gunicorn.backlog metric.
            self.log.debug("%d connections in the listen backlog", total,
                           extra={"metric": "gunicorn.backlog", "value": total,
                                  "mtype": "histogram"})

    def reloaded(self) -> None:
        self.core.reloads.inc()

    def worker_spawned(self) -> None:
        self.core.worker_spawns.inc()

    def worker_killed(self, reason: str) -> None:
        self.core.worker_kills.labels(reason).inc()

    def worker_exited(self, pid: int, status: int, retiring: bool) -> None:
        """A worker was reaped: count how it ended and forget its live gauges."""
        if not self.enabled:
            return
        reason = exit_reason(status, retiring)
        self.core.worker_exits.labels(reason).inc()
        if not retiring and not self._stopping and reason not in ("boot_error",
                                                                   "app_load_error"):
            self.core.worker_restarts.inc()
        self.process_dead(pid)

    def process_dead(self, pid: int) -> None:
        """Any child that recorded metrics (worker or sidecar) was reaped."""
        if self.enabled:
            with contextlib.suppress(OSError):
                self.families.process_dead(pid)

    def begin_stop(self) -> None:
        """The server is stopping: exits from now on are not restarts."""
        self._stopping = True

    # -- end ----------------------------------------------------------------------------------

    def close_in_child(self) -> None:
        """In a forked HTTP worker: drop the metrics listener (only the sidecar serves it)."""
        if self.listener is not None:
            with contextlib.suppress(OSError):
                socket.socket.close(self.listener.sock)

    def close(self) -> None:
        """The master exits: close the listener and remove the directory."""
        if self.listener is not None:
            self.listener.close(unlink=True)
            self.listener = None
        if self.board is not None:
            self.board.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
