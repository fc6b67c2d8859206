"""What ``/healthz`` answers, and how the master's facts reach the process that answers it.

The master knows which workers have booted (each worker publishes it in its heartbeat's shared
memory, :mod:`gunicorn.workers.heartbeat`); the metrics sidecar, a separate process, answers
the HTTP request. They share a :class:`HealthBoard`: a small anonymous shared mapping made by
the master before it forks the sidecar. The master writes it once per loop turn (about once a
second, no system call); the sidecar reads it per request. Fields are guarded by a sequence
number (odd while a write is in progress), so a reader never sees half a write::

    offset  0  uint64  sequence
    offset  8  double  the master's time.monotonic() at its last loop turn
    offset 16  uint32  workers booted
    offset 20  uint32  workers alive
    offset 24  uint32  workers expected

CLOCK_MONOTONIC is one clock for every process on Linux, so the sidecar can tell how long ago
the master last ran its loop. A master whose loop has not turned for :data:`STALE_AFTER`
seconds is not counted as running (a hook that hangs, a stop in progress).

:class:`SharedSnapshot` is the same idea for a plugin: a JSON object that one of its processes
(a sidecar) publishes and its ``health`` hook reads in the metrics sidecar.
"""

from __future__ import annotations

import json
import mmap
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BOARD = struct.Struct("=QdIII")
STALE_AFTER = 10.0
READ_ATTEMPTS = 100


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """The master's last report about its HTTP workers."""

    loop_time: float = 0.0
    booted: int = 0
    alive: int = 0
    expected: int = 0


class HealthBoard:
    """Shared memory between the master (writer) and the metrics sidecar (reader)."""

    def __init__(self) -> None:
        self._map: mmap.mmap | None = mmap.mmap(-1, BOARD.size)
        self._seq = 0

    def publish(self, booted: int, alive: int, expected: int,
                now: float | None = None) -> None:
        """Master side: record the pool's state (call every loop turn)."""
        if self._map is None:
            return
        now = time.monotonic() if now is None else now
        self._seq += 1  # odd: a write is in progress
        BOARD.pack_into(self._map, 0, self._seq, 0.0, 0, 0, 0)
        self._seq += 1
        BOARD.pack_into(self._map, 0, self._seq, now, booted, alive, max(expected, 0))

    def read(self) -> PoolFacts:
        """Sidecar side: the last complete report (zeros when none was made yet)."""
        if self._map is None:
            return PoolFacts()
        for _ in range(READ_ATTEMPTS):
            seq, loop_time, booted, alive, expected = BOARD.unpack_from(self._map, 0)
            if seq % 2 == 0 and BOARD.unpack_from(self._map, 0)[0] == seq:
                return PoolFacts(loop_time, booted, alive, expected)
        return PoolFacts()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


SNAPSHOT_HEAD = struct.Struct("=QI")  # sequence (odd while writing), length of the JSON


class SharedSnapshot:
    """A JSON object in anonymous shared memory: one process writes it, others read it.

    Make it before the processes that share it fork (a plugin does so in its ``metrics``
    hook, which runs in the master before any sidecar starts): each fork inherits the same
    memory. :meth:`publish` must be called from one process at a time; :meth:`read` never
    sees half a write. ``size`` bounds the encoded object (a bigger one is refused).
    """

    def __init__(self, size: int = 65536) -> None:
        self._map: mmap.mmap | None = mmap.mmap(-1, SNAPSHOT_HEAD.size + size)
        self._size = size
        self._seq = 0

    def publish(self, data: Mapping[str, Any]) -> bool:
        """Replace the object; False (and nothing changed) when it does not fit."""
        body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        if self._map is None or len(body) > self._size:
            return False
        # After a fork the writer may be a new process: continue from the shared sequence.
        seq = max(self._seq, SNAPSHOT_HEAD.unpack_from(self._map, 0)[0])
        SNAPSHOT_HEAD.pack_into(self._map, 0, seq | 1, 0)  # odd: a write is in progress
        self._map[SNAPSHOT_HEAD.size:SNAPSHOT_HEAD.size + len(body)] = body
        self._seq = (seq | 1) + 1
        SNAPSHOT_HEAD.pack_into(self._map, 0, self._seq, len(body))
        return True

    def read(self) -> dict[str, Any] | None:
        """The last complete object, or None when none was published yet."""
        if self._map is None:
            return None
        start = SNAPSHOT_HEAD.size
        for _ in range(READ_ATTEMPTS):
            seq, length = SNAPSHOT_HEAD.unpack_from(self._map, 0)
            if seq % 2:
                continue
            body = self._map[start:start + length]
            if SNAPSHOT_HEAD.unpack_from(self._map, 0)[0] != seq:
                continue
            if not seq:
                return None
            try:
                value = json.loads(body)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
        return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The ``/healthz`` answer: ``ok`` decides 200 or 503, ``body`` is sent as JSON."""

    ok: bool
    body: dict[str, Any]


def evaluate(facts: PoolFacts, master_alive: bool, master_pid: int,
             contributions: Mapping[str, Mapping[str, Any]], now: float) -> HealthReport:
    """Healthy when the master runs (alive, loop not stale), at least one worker has booted,
    and no plugin contribution says ``"ok": False``."""
    age = now - facts.loop_time if facts.loop_time else None
    running = master_alive and age is not None and age <= STALE_AFTER
    ok = running and facts.booted >= 1
    body: dict[str, Any] = {
        "arbiter": {"pid": master_pid, "running": running,
                    "last_loop_age": round(age, 3) if age is not None else None},
        "workers": {"booted": facts.booted, "alive": facts.alive, "expected": facts.expected},
    }
    for name, section in contributions.items():
        body[name] = dict(section)
        if section.get("ok") is False:
            ok = False
    body["status"] = "ok" if ok else "unavailable"
    return HealthReport(ok, body)
