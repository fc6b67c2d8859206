"""The liveness file a worker touches and the arbiter watches.

The arbiter creates the file before forking (so both processes share the open fd) and unlinks
it at once: nothing on disk can go stale. The worker stamps the file's mtime with
``time.monotonic()``; the arbiter reads it with ``fstat`` and compares against its own
``monotonic()``. CLOCK_MONOTONIC is system-wide on Linux, so the two clocks agree, and it never
jumps when the wall clock is changed.

``notify()`` is called on every request and loop turn, so it is rate-limited: at most one
``utime`` per ``min_interval`` seconds.

Next to the file, each heartbeat owns a small anonymous shared memory mapping, made by the
arbiter before the fork and so shared with that one worker. The worker stores there the facts
the master reports on its control socket and that only the worker knows: whether it has booted
and how many requests it served. A memory store costs no system call, so it can be done on every
request; the master reads it when asked. (Not in the file itself: writing to a file, even
through a mapping, sets its mtime to the wall clock and would hide a stuck worker.)::

    offset 0   uint64 native   flags (bit 0: booted)
    offset 8   uint64 native   requests served
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gunicorn import util

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

DEFAULT_MIN_INTERVAL = 0.1
FACTS = struct.Struct("=QQ")
BOOTED = 1


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """What a worker last published about itself."""

    booted: bool = False
    requests: int = 0


class Heartbeat:
    """An unlinked temp file whose mtime is the worker's last sign of life."""

    def __init__(self, cfg: CoreSettings | None = None,
                 min_interval: float = DEFAULT_MIN_INTERVAL) -> None:
        directory = cfg.worker_tmp_dir if cfg is not None else None
        mask = cfg.umask if cfg is not None else 0
        with util.umask(mask):
            fd, path = tempfile.mkstemp(prefix="wgunicorn-", dir=directory)
        try:
            if cfg is not None:
                # The worker drops privileges after fork and must still be able to touch it.
                util.chown(fd, cfg.uid, cfg.gid)
            os.unlink(path)
        except BaseException:
            os.close(fd)
            raise
        util.close_on_exec(fd)
        self._fd = fd
        self._min_interval = min_interval
        self._last = 0.0
        # Anonymous and MAP_SHARED (mmap's default): no fd, shared across the fork.
        self._facts: mmap.mmap | None = mmap.mmap(-1, FACTS.size)
        self.notify(force=True)

    def fileno(self) -> int:
        return self._fd

    def notify(self, force: bool = False) -> None:
        """Record that the worker is alive now (cheap: skipped if done very recently)."""
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        os.utime(self._fd, (now, now))

    def publish(self, booted: bool, requests: int) -> None:
        """Record the worker's facts (worker side; cheap enough for every request)."""
        if self._facts is not None:
            FACTS.pack_into(self._facts, 0, BOOTED if booted else 0, requests)

    def read_facts(self) -> WorkerFacts:
        """The facts last published by the worker (master side)."""
        if self._facts is None:
            return WorkerFacts()
        flags, requests = FACTS.unpack_from(self._facts, 0)
        return WorkerFacts(bool(flags & BOOTED), requests)

    def last_update(self) -> float:
        """The ``time.monotonic()`` value of the last notify (read by the arbiter)."""
        return os.fstat(self._fd).st_mtime

    def close(self) -> None:
        if self._facts is not None:
            self._facts.close()
            self._facts = None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
