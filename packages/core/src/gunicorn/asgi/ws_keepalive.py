"""The two liveness clocks of a WebSocket, sans-IO: time comes in as ``now`` (seconds, any
monotonic clock), and each call says when to be called next.

* :class:`Keepalive`: after ``interval`` seconds without a byte from the peer, send a Ping;
  when ``timeout`` more seconds bring no byte either (the Pong, or anything else: any traffic
  proves the peer is there), the peer is gone::

      last byte --interval--> PING --timeout--> GONE (close 1011, drop the transport)
                                   '--any byte--> wait for the next quiet interval

* :class:`WriteProgress`: while the transport refuses more output (``pause_writing``), the
  buffered byte count must shrink now and then; no shrinking for ``timeout`` seconds means the
  peer stopped reading (close 1008, drop the transport).
"""

from __future__ import annotations

import struct
from enum import Enum

__all__ = ["Keepalive", "KeepaliveAction", "WriteProgress"]


class KeepaliveAction(Enum):
    WAIT = 1   # nothing to do until the next deadline
    PING = 2   # send a Ping with :meth:`Keepalive.payload`
    GONE = 3   # the peer did not answer: give the connection up


class Keepalive:
    """Pings a quiet peer every ``interval`` seconds; ``timeout`` > 0 gives up on a peer that
    stays silent that long after a ping (0: ping, never give up). ``interval`` must be > 0.

    Call :meth:`seen` whenever bytes arrive (cheap: it only stores ``now``) and :meth:`poll` at
    the deadline it returned last.
    """

    __slots__ = ("_interval", "_timeout", "_last_seen", "_ping_sent", "_count")

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self._interval = interval
        self._timeout = timeout
        self._last_seen = now
        self._ping_sent: float | None = None
        self._count = 0

    def seen(self, now: float) -> None:
        """Bytes came from the peer at ``now``."""
        self._last_seen = now

    def first_deadline(self) -> float:
        return self._last_seen + self._interval

    def poll(self, now: float) -> tuple[KeepaliveAction, float | None]:
        """What to do at ``now``, and when to poll next (None after :attr:`GONE`)."""
        sent = self._ping_sent
        if sent is not None:
            # >=: a clock with millisecond steps (uvloop's) gives a quick pong the time of the
            # ping. A byte seen before the ping was sent is older than that (interval > 0).
            if self._last_seen >= sent:
                self._ping_sent = None  # answered
            elif now >= sent + self._timeout:
                return KeepaliveAction.GONE, None
            else:
                return KeepaliveAction.WAIT, sent + self._timeout
        due = self._last_seen + self._interval
        if now < due:
            return KeepaliveAction.WAIT, due
        self._count += 1
        if self._timeout > 0:
            self._ping_sent = now
            return KeepaliveAction.PING, now + self._timeout
        return KeepaliveAction.PING, now + self._interval

    def payload(self) -> bytes:
        """The application data of the latest ping (a counter: pings need not be secret,
        RFC 6455 §5.5.2, and the answer is not matched against it)."""
        return struct.pack("!I", self._count & 0xFFFFFFFF)


class WriteProgress:
    """Whether a paused transport still drains. ``timeout`` > 0 seconds.

    :meth:`start` when writing pauses, then :meth:`poll` at the time it returns until writing
    resumes; None from :meth:`poll` means no byte left the buffer for about ``timeout``
    seconds (between ``timeout`` and ``timeout * 1.25``: progress is sampled).
    """

    __slots__ = ("_timeout", "_step", "_since", "_buffered")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._step = timeout / 4
        self._since = 0.0
        self._buffered = 0

    def start(self, now: float, buffered: int) -> float:
        """Writing paused at ``now`` with ``buffered`` bytes waiting; returns the first poll
        time."""
        self._since = now
        self._buffered = buffered
        return now + self._step

    def poll(self, now: float, buffered: int) -> float | None:
        """``buffered`` bytes wait at ``now``: the next poll time, or None when stalled."""
        if buffered < self._buffered:
            self._since = now
        self._buffered = buffered
        if now - self._since >= self._timeout:
            return None
        return min(now + self._step, self._since + self._timeout)
