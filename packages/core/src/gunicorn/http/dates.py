"""IMF-fixdate (RFC 9110 §5.6.7) for the ``Date`` response header."""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(now: float | None = None) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` for ``now`` (seconds since the epoch, default: now)."""
    t = time.gmtime(time.time() if now is None else now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


class DateCache:
    """Format the Date header at most once per second; a worker keeps one for its lifetime."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self, now: float | None = None) -> str:
        """The http-date of ``now`` (default ``time.time()``)."""
        if now is None:
            now = time.time()
        second = int(now)
        if second != self._second:
            self._value = http_date(second)
            self._second = second
        return self._value
