"""StatsD metrics, sent by a logger: ``--statsd-host`` makes this the logger class.

Each metric is one datagram (UDP, or a UNIX datagram socket for ``unix://PATH``)::

    <prefix><name>:<value>|<type>[|@<rate>][|#<dogstatsd tags>]

    type: g (gauge)  c (counter, with @rate)  h (histogram)  ms (timer)

What is measured: every request (``gunicorn.requests``, ``gunicorn.request.duration`` in ms,
``gunicorn.request.status.<code>``), every critical/error/warning/exception log line
(``gunicorn.log.<level>``), and any log call whose ``extra`` carries ``metric``, ``value`` and
``mtype`` -- that is how the arbiter reports the ``gunicorn.workers`` gauge::

    log.info("%d workers", n, extra={"metric": "gunicorn.workers", "value": n, "mtype": "gauge"})

Metrics are best effort: a send that fails is dropped (logged at debug), never raised into the
request that produced it.
"""

from __future__ import annotations

import datetime
import logging
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

GAUGE = "gauge"
COUNTER = "counter"
HISTOGRAM = "histogram"
TIMER = "timer"
DEFAULT_PORT = 8125


def normalise_prefix(prefix: str | None) -> str:
    """``"app"``, ``"app."`` and ``"app.."`` all become ``"app."``; empty stays empty."""
    stripped = (prefix or "").rstrip(".")
    return f"{stripped}." if stripped else ""


def parse_statsd_host(value: Any) -> tuple[int, str | tuple[str, int]]:
    """(address family, address) for ``statsd_host``.

    Accepts ``unix://PATH``, ``HOST:PORT``, ``[V6]:PORT``, ``HOST`` (port 8125), or an already
    split ``(host, port)`` pair. Raises ValueError on a bad port.
    """
    if isinstance(value, (tuple, list)):
        host, port = str(value[0]), int(value[1])
    else:
        text = str(value)
        if text.startswith("unix://"):
            return socket.AF_UNIX, text[len("unix://"):]
        if text.startswith("unix:"):
            return socket.AF_UNIX, text[len("unix:"):]
        if text.startswith("["):
            host, _, tail = text[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else ""
        elif text.count(":") > 1:  # a bare IPv6 address, no port
            host, port_text = text, ""
        else:
            host, _, port_text = text.partition(":")
        if port_text and not port_text.isdigit():
            raise ValueError(f"invalid statsd port {port_text!r}")
        port = int(port_text) if port_text else DEFAULT_PORT
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host or "localhost", port)


class Statsd(Logger):
    """A :class:`~gunicorn.glogging.Logger` that also sends StatsD metrics.

    The metric methods (:meth:`gauge`, :meth:`increment`, :meth:`decrement`, :meth:`timer`,
    :meth:`histogram`) may be called directly, e.g. from server hooks.
    """

    def __init__(self, cfg: CoreSettings) -> None:
        self.sock: socket.socket | None = None
        self._address: str | tuple[str, int] | None = None
        self.prefix = ""
        self.dogstatsd_tags = ""
        super().__init__(cfg)

    def setup(self, cfg: CoreSettings) -> None:
        """Apply the logging settings, then (re)open the StatsD socket."""
        super().setup(cfg)
        self.prefix = normalise_prefix(cfg.statsd_prefix)
        self.dogstatsd_tags = cfg.dogstatsd_tags
        old = self.sock
        self.sock, self._address = self._open_socket(cfg.statsd_host)
        if old is not None:
            old.close()

    def _open_socket(self, host: Any) -> tuple[socket.socket | None, str | tuple[str, int] | None]:
        if not host:
            return None, None
        try:
            family, address = parse_statsd_host(host)
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except (OSError, ValueError) as exc:
            self.warning("statsd disabled: bad statsd_host %r: %s", host, exc)
            return None, None
        sock.setblocking(False)  # a full socket buffer drops a metric instead of a request
        if family != socket.AF_UNIX:
            # Connect once so the host name is resolved once, not per datagram.
            try:
                sock.connect(address)
            except OSError as exc:
                self.debug("statsd: cannot reach %r: %s", host, exc)
                sock.close()
                return None, None
            return sock, None
        # UNIX: sendto each time, so a statsd agent started after us is still reached.
        return sock, address

    # -- logging with metrics -----------------------------------------------------------------

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)
        self.increment("gunicorn.log.critical", 1)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)
        self.increment("gunicorn.log.error", 1)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)
        self.increment("gunicorn.log.warning", 1)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.log(logging.ERROR, msg, *args, **kwargs)
        self.increment("gunicorn.log.exception", 1)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def log(self, lvl: int | str, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log ``msg`` (skipped when empty) and emit the metric ``extra`` describes, if any."""
        extra = kwargs.get("extra")
        if isinstance(extra, Mapping):
            self._emit_extra(extra)
        if msg:
            super().log(lvl, msg, *args, **kwargs)

    def _emit_extra(self, extra: Mapping[str, Any]) -> None:
        metric, value, mtype = extra.get("metric"), extra.get("value"), extra.get("mtype")
        if not metric or value is None or not mtype:
            return  # zero is a value; only a missing one is skipped
        if mtype == GAUGE:
            self.gauge(metric, value)
        elif mtype == COUNTER:
            self.increment(metric, value, extra.get("rate", 1.0))
        elif mtype == HISTOGRAM:
            self.histogram(metric, value)
        elif mtype == TIMER:
            self.timer(metric, value)

    def access(self, resp: Any, req: Any, environ: Mapping[str, Any],
               request_time: datetime.timedelta | float) -> None:
        """Write the access line, then count the request and time it."""
        super().access(resp, req, environ, request_time)
        if isinstance(request_time, datetime.timedelta):
            request_time = request_time.total_seconds()
        self.timer("gunicorn.request.duration", request_time * 1000.0)
        self.increment("gunicorn.requests", 1)
        code = getattr(resp, "status_code", None)
        if code is None:
            status = getattr(resp, "status", None)
            if isinstance(status, bytes):
                status = status.decode("latin-1")
            head = str(status).split(None, 1)[0] if status else ""
            code = int(head) if head.isdigit() else None
        if code is not None:
            self.increment(f"gunicorn.request.status.{int(code)}", 1)

    # -- metrics ------------------------------------------------------------------------------

    def gauge(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|g")

    def increment(self, name: str, value: Any, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:{value}|c|@{sampling_rate}")

    def decrement(self, name: str, value: Any, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:-{value}|c|@{sampling_rate}")

    def timer(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|ms")

    def histogram(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|h")

    def _send(self, line: str) -> None:
        if self.sock is None:
            return
        if self.dogstatsd_tags:
            line = f"{line}|#{self.dogstatsd_tags}"
        data = line.encode("utf-8")
        try:
            if self._address is None:
                self.sock.send(data)
            else:
                self.sock.sendto(data, self._address)
        except OSError as exc:
            # Straight to the stdlib logger: our own debug() would recurse through log().
            self.error_log.debug("statsd: dropped %r: %s", line, exc)
