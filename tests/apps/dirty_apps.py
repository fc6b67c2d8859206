"""Dirty apps used by tests/dirty (loaded with --dirty-app dirty_apps:NAME)."""

import asyncio
import os
import time

from gunicorn.dirty import DirtyApp


class EchoApp(DirtyApp):
    def init(self):
        self.calls = 0

    def echo(self, value):
        self.calls += 1
        return value

    def pid(self):
        return os.getpid()

    def sleep(self, seconds):
        time.sleep(seconds)
        return os.getpid()

    async def asleep(self, seconds):
        await asyncio.sleep(seconds)
        return os.getpid()

    def boom(self, message="boom"):
        raise ValueError(message)

    def unserialisable(self):
        return {1, 2, 3}

    def count(self, n):
        yield from range(n)

    async def acount(self, n):
        for i in range(n):
            yield i

    def fail_after(self, n):
        yield from range(n)
        raise RuntimeError("stream broke")

    def _private(self):
        return "secret"


class LimitedApp(DirtyApp):
    workers = 1

    def pid(self):
        return os.getpid()


class OtherApp(DirtyApp):
    def pid(self):
        return os.getpid()


class BrokenInitApp(DirtyApp):
    def init(self):
        raise RuntimeError("model file missing")

    def pid(self):
        return os.getpid()


class StreamApp(DirtyApp):
    """Streams whose generator records, in a file, that its ``finally`` ran."""

    def numbers(self, n, marker=None, delay=0.0):
        try:
            for i in range(n):
                if delay:
                    time.sleep(delay)
                yield i
        finally:
            if marker:
                with open(marker, "w") as fh:
                    fh.write("closed")

    async def anumbers(self, n, marker=None, delay=0.0):
        try:
            for i in range(n):
                await asyncio.sleep(delay)
                yield i
        finally:
            if marker:
                with open(marker, "w") as fh:
                    fh.write("closed")


class CrashOnBootApp(DirtyApp):
    """Kills its worker process during init: a boot failure the arbiter must back off on."""

    def init(self):
        os._exit(7)

    def pid(self):
        return os.getpid()


class GatedInitApp(DirtyApp):
    """init() waits until the file named by $DIRTY_INIT_GATE exists (a model still loading),
    at most 60 s."""

    def init(self):
        deadline = time.monotonic() + 60
        while not os.path.exists(os.environ["DIRTY_INIT_GATE"]) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pid(self):
        return os.getpid()


class GaugeApp(DirtyApp):
    """Records a prometheus_client gauge of its own in each dirty worker (the server exports
    PROMETHEUS_MULTIPROC_DIR to them with --metrics-bind)."""

    def init(self):
        from prometheus_client import Gauge

        self.gauge = Gauge("test_dirty_app_workers", "Dirty workers holding GaugeApp.",
                           multiprocess_mode="livesum")
        self.gauge.set(1)

    def pid(self):
        return os.getpid()
