"""The dirty app of tests/dirty/test_streaming_http.py (``--dirty-app stream_dirty:TokenApp``).

The generators report what happened inside the dirty worker through files the test can see:
``finally`` blocks write a marker, gates wait for a file the test creates, counters record how
far the producer ran. That lets the tests prove orderings with events instead of timing.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from gunicorn.dirty import DirtyApp

APP = "stream_dirty:TokenApp"
GATE_LIMIT = 15.0  # a gate nobody opens fails the stream instead of hanging a test forever


def _mark(path: str | None, text: str = "closed") -> None:
    if path:
        Path(path).write_text(text)


def _read_int(path: str) -> int:
    try:
        return int(Path(path).read_text() or 0)
    except (FileNotFoundError, ValueError):  # not written yet, or caught mid-write
        return 0


class TokenApp(DirtyApp):
    def echo(self, value):
        return value

    def pid(self):
        return os.getpid()

    def gated(self, gate_dir, n):
        """Yield "first", wait until ``gate_dir/go`` exists, yield the rest, note the end."""
        gate = Path(gate_dir)
        try:
            yield "first"
            deadline = time.monotonic() + GATE_LIMIT
            while not (gate / "go").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("nobody opened the gate")
                time.sleep(0.005)
            for i in range(1, n):
                yield f"token-{i}"
            _mark(str(gate / "finished"))
        finally:
            _mark(str(gate / "closed"))

    async def agated(self, gate_dir, n):
        gate = Path(gate_dir)
        try:
            yield "first"
            deadline = time.monotonic() + GATE_LIMIT
            while not (gate / "go").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("nobody opened the gate")
                await asyncio.sleep(0.005)
            for i in range(1, n):
                yield f"token-{i}"
            _mark(str(gate / "finished"))
        finally:
            _mark(str(gate / "closed"))

    def endless(self, marker, delay=0.005):
        try:
            i = 0
            while True:
                yield i
                i += 1
                time.sleep(delay)
        finally:
            _mark(marker)

    async def aendless(self, marker, delay=0.005):
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(delay)
        finally:
            _mark(marker)

    def fail_after(self, n):
        yield from range(n)
        raise ValueError("the model crashed")

    async def afail_after(self, n):
        for i in range(n):
            yield i
        raise ValueError("the model crashed")

    def bad_item(self):
        yield 1
        yield {1, 2}  # a set cannot travel

    def gap(self, seconds):
        yield "before"
        time.sleep(seconds)
        yield "after"

    async def agap(self, seconds):
        yield "before"
        await asyncio.sleep(seconds)
        yield "after"

    def count(self, n):
        yield from range(n)

    async def acount(self, n):
        for i in range(n):
            yield i

    def counted(self, n, size, produced_file, consumed_file, lead_file):
        """``n`` chunks of ``size`` bytes; records how many were produced and the largest lead
        of the producer over the reader (who writes its count to ``consumed_file``)."""
        lead = 0
        try:
            for i in range(n):
                Path(produced_file).write_text(str(i + 1))
                lead = max(lead, i + 1 - _read_int(consumed_file))
                yield bytes(size)
        finally:
            Path(lead_file).write_text(str(lead))
