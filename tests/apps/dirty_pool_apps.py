"""Dirty apps for the pool tests of issue 14 (routing, floors, retries, resources, batching).

Apps that must remember something across processes (init attempts, tokens held) write files in
the directory named by $DIRTY_TEST_DIR.
"""

import asyncio
import os
import time
from pathlib import Path

from gunicorn.dirty import DirtyApp, batch

# Read at import: proves the resource environment is set before the module is imported.
IMPORTED_WITH_CUDA = os.environ.get("CUDA_VISIBLE_DEVICES")


def _dir() -> Path:
    return Path(os.environ["DIRTY_TEST_DIR"])


class TwoApp(DirtyApp):
    workers = 2

    def pid(self):
        return os.getpid()


class FlakyInitApp(DirtyApp):
    """init() fails on its first two attempts (counted in a file), then succeeds."""

    def init(self):
        counter = _dir() / "flaky-attempts"
        attempts = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(attempts + 1))
        if attempts < 2:
            raise RuntimeError(f"model weights not there yet (attempt {attempts + 1})")

    def pid(self):
        return os.getpid()


class SlowInitApp(DirtyApp):
    """init() takes $SLOW_INIT seconds (a model being loaded)."""

    def init(self):
        time.sleep(float(os.environ.get("SLOW_INIT", "1.5")))

    def pid(self):
        return os.getpid()


class GpuApp(DirtyApp):
    resources = {"gpu": 1}

    def init(self):
        self.seen = {"pid": os.getpid(), "resources": self.resources,
                     "env": os.environ.get("GUNICORN_DIRTY_RESOURCE_GPU"),
                     "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                     "cuda_at_import": IMPORTED_WITH_CUDA}
        # One file per worker: the tests check no two live workers hold the same token.
        (_dir() / f"token-{os.getpid()}").write_text(",".join(self.resources["gpu"]))

    def tokens(self):
        return self.seen


class BatchApp(DirtyApp):
    """Batched actions that record each batch they get (per worker process)."""

    def init(self):
        self.batches = []

    @batch(max_size=8, max_wait=0.05)
    def double(self, xs):
        self.batches.append(list(xs))
        return [x * 2 for x in xs]

    @batch(max_size=8, max_wait=0.5)
    def tagged(self, xs):
        self.batches.append(list(xs))
        return [[os.getpid(), x] for x in xs]

    @batch(max_size=8, max_wait=0.05)
    async def adouble(self, xs):
        await asyncio.sleep(0)
        self.batches.append(list(xs))
        return [x * 2 for x in xs]

    @batch(max_size=8, max_wait=0.05)
    def boom(self, xs):
        raise ValueError(f"bad batch of {len(xs)}")

    @batch(max_size=8, max_wait=0.05)
    def short(self, xs):
        return xs[:-1]

    @batch(max_size=100, max_wait=0.6)
    def gather_slowly(self, xs):
        self.batches.append(list(xs))
        return [x * 2 for x in xs]

    @batch(max_size=64, max_wait=0.0)
    def noop(self, xs):
        return xs

    def plain_noop(self, x):
        return x

    def seen(self):
        return self.batches
