"""``wsgi.errors``: a text stream whose lines go to the server's error log.

PEP 3333 asks for a text-mode file with ``write``, ``writelines`` and ``flush``. What an
application writes there belongs in the error log (``--error-logfile``, syslog, a logconfig
handler), not on whatever the worker's stderr happens to be (often /dev/null once daemonised).

Each complete line becomes one error-log record; ``flush()`` also logs an unfinished line, so
``write("x"); flush()`` is not lost, while ``write("a"); write("b\\n")`` stays one record. The
stream is shared by the threads of a gthread worker: a lock keeps their partial lines apart
(per thread), so two requests writing at once never splice into one record.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from typing import Any


class ErrorLogStream(io.TextIOBase):
    """A write-only text stream logging each line through ``log.error``.

    Args:
        log: a gunicorn Logger or a stdlib logger (needs ``error``).

    ``bytes`` are accepted too (decoded as UTF-8, bad bytes replaced): PEP 3333 asks for text,
    but some applications write bytes to stderr-like streams and should not crash for it.
    """

    def __init__(self, log: Any) -> None:
        super().__init__()
        self._log = log
        self._lock = threading.Lock()
        # Unfinished line per thread id: lines of concurrent requests must not interleave.
        self._partial: dict[int, str] = {}

    def writable(self) -> bool:
        return True

    def write(self, s: str | bytes) -> int:
        text = s.decode("utf-8", "replace") if isinstance(s, (bytes, bytearray)) else str(s)
        if not text:
            return 0
        key = threading.get_ident()
        with self._lock:
            pending = self._partial.pop(key, "") + text
            *lines, rest = pending.split("\n")
            if rest:
                self._partial[key] = rest
        for line in lines:
            self._log.error("%s", line.rstrip("\r"))
        return len(text)

    def writelines(self, lines: Iterable[str | bytes]) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            rest = self._partial.pop(threading.get_ident(), "")
        if rest:
            self._log.error("%s", rest.rstrip("\r"))

    def close(self) -> None:
        # The stream is shared by every request of the worker: an application closing it must
        # not break the next request; closing only flushes this thread's unfinished line.
        self.flush()

    def __repr__(self) -> str:
        return "<wsgi.errors: the error log>"
