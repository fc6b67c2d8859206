"""The metrics of gunicorn-http2, declared through the core's ``metrics`` plugin hook.

::

    gunicorn_http2_streams_total                 counter  streams accepted (their application ran
                                                          or was about to)
    gunicorn_http2_streams_active                gauge    accepted streams not finished yet (sum
                                                          over the workers)
    gunicorn_http2_resets_total{side,code}       counter  RST_STREAM frames: side=client (received)
                                                          or server (sent), code=the error name
    gunicorn_http2_goaway_total{code}            counter  GOAWAY frames the server sent

The families come from the plugin relay (:meth:`gunicorn.http2.plugin.HTTP2Plugin.metrics`):
prometheus_client objects with ``--metrics-bind``, objects that record nothing otherwise, so the
session records unconditionally. Label children are resolved once per code and cached here:
recording is a dict lookup and an ``inc()``.
"""

from __future__ import annotations

from typing import Any

from h2.errors import ErrorCodes


class _Off:
    """A metric that records nothing (no families were handed to the plugin)."""

    __slots__ = ()

    def labels(self, *values: Any) -> _Off:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass


_OFF = _Off()
_KNOWN_CODES = frozenset(int(code) for code in ErrorCodes)


def code_name(code: int) -> str:
    """The label of an HTTP/2 error code: its RFC 9113 name, or ``other`` (a peer may send any
    32-bit value; the label set stays bounded)."""
    try:
        return ErrorCodes(code).name
    except ValueError:
        return "other"


class H2Metrics:
    """The http2 families of one server (one instance, made in the master, used by every
    worker forked later)."""

    __slots__ = ("streams", "active", "_resets", "_goaways", "_reset_children",
                 "_goaway_children")

    def __init__(self, families: Any = None) -> None:
        if families is None:
            self.streams = self.active = self._resets = self._goaways = _OFF
        else:
            self.streams = families.counter(
                "http2_streams_total", "HTTP/2 streams accepted (refused ones excluded).")
            self.active = families.gauge(
                "http2_streams_active", "HTTP/2 streams accepted and not finished yet.")
            self._resets = families.counter(
                "http2_resets_total", "RST_STREAM frames, by side (client: received, server: "
                "sent) and error code.", ("side", "code"))
            self._goaways = families.counter(
                "http2_goaway_total", "GOAWAY frames sent by the server, by error code.",
                ("code",))
        self._reset_children: dict[tuple[str, int], Any] = {}
        self._goaway_children: dict[int, Any] = {}

    def reset(self, side: str, code: int) -> None:
        """Count one RST_STREAM (``side`` is ``client`` or ``server``)."""
        if self._resets is _OFF:
            return
        key = (side, code if code in _KNOWN_CODES else -1)
        child = self._reset_children.get(key)
        if child is None:
            child = self._reset_children[key] = self._resets.labels(side, code_name(code))
        child.inc()

    def goaway(self, code: int) -> None:
        """Count one GOAWAY sent."""
        if self._goaways is _OFF:
            return
        code = code if code in _KNOWN_CODES else -1
        child = self._goaway_children.get(code)
        if child is None:
            child = self._goaway_children[code] = self._goaways.labels(code_name(code))
        child.inc()


# Metrics off: records nothing, and never fills its caches (reset() and goaway() return first).
NO_METRICS = H2Metrics()
