"""Apps for benchmarks/dirty_batch.py: one no-op action, batched and not.

``BATCH_MAX_SIZE`` / ``BATCH_MAX_WAIT`` (environment) set the batch parameters.
"""

import os

from gunicorn.dirty import DirtyApp, batch

MAX_SIZE = int(os.environ.get("BATCH_MAX_SIZE", "16"))
MAX_WAIT = float(os.environ.get("BATCH_MAX_WAIT", "0.01"))


class BatchBench(DirtyApp):
    def init(self):
        self.calls = 0
        self.invocations = 0

    @batch(max_size=MAX_SIZE, max_wait=MAX_WAIT)
    def noop(self, items):
        self.calls += len(items)
        self.invocations += 1
        return items

    def plain_noop(self, item):
        self.calls += 1
        self.invocations += 1
        return item

    def stats(self, reset=False):
        out = {"calls": self.calls, "invocations": self.invocations}
        if reset:
            self.calls = self.invocations = 0
        return out


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]
