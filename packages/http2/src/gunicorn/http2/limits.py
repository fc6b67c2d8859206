"""Bounds the session puts on one HTTP/2 connection, beside h2's own state machines.

* :class:`ResetBudget`: the token bucket every stream reset draws on, the peer's RST_STREAM
  and ours alike (rapid reset, CVE-2023-44487; "MadeYouReset", CVE-2025-8671); ``rate`` per
  second, a burst of twice as many;
* :class:`BoundedConnection`: h2's ``H2Connection`` remembering a bounded number of closed
  streams (:func:`closed_streams_kept`) and leaving the concurrent-stream limit to the session
  (:class:`CeilingSettings`: h2 would end the whole connection where RFC 9113 §5.1.2 lets us
  refuse the one stream).

Sans-IO: time comes in as ``now``.
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.settings

# h2 enforces its own limit on open streams by ending the connection; ours comes first.
H2_STREAM_CEILING = 2**31 - 1
# h2 remembers how each closed stream ended (65,536 records per connection by default, some
# MiB), so that a frame still in flight on a stream we reset is a stream error and not a
# connection error. Frames in flight concern the streams closed in the last round trip: a
# few times the concurrency limit is plenty.
CLOSED_STREAMS_MIN = 1024
CLOSED_STREAMS_MAX = 2**16


def closed_streams_kept(max_concurrent_streams: int) -> int:
    """How many closed streams a connection remembers."""
    return min(max(CLOSED_STREAMS_MIN, 4 * max_concurrent_streams), CLOSED_STREAMS_MAX)


class CeilingSettings(h2.settings.Settings):
    """Local settings announcing our MAX_CONCURRENT_STREAMS while h2 checks a ceiling."""

    @property  # type: ignore[misc]  # h2's is a read-write property
    def max_concurrent_streams(self) -> int:
        return H2_STREAM_CEILING


class BoundedConnection(h2.connection.H2Connection):
    """h2's connection with a bound of our choosing on the closed streams it remembers."""

    def __init__(self, config: h2.config.H2Configuration, closed_streams: int) -> None:
        self.MAX_CLOSED_STREAMS = closed_streams  # read by H2Connection.__init__
        super().__init__(config)


class ResetBudget:
    """Stream resets one connection may cause: ``rate`` per second, bursts of ``2 * rate``
    (0: no limit)."""

    __slots__ = ("rate", "_tokens", "_refill_at")

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self._tokens = float(2 * rate)
        self._refill_at = now

    def spend(self, now: float) -> bool:
        """Charge one reset; False when the budget ran dry (end the connection)."""
        rate = self.rate
        if not rate:
            return True
        self._tokens = min(2.0 * rate, self._tokens + (now - self._refill_at) * rate)
        self._refill_at = now
        self._tokens -= 1
        return self._tokens >= 0
