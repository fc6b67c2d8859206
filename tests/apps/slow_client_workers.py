"""A gthread worker that keeps no response output for slow readers (every slow write waits on
its pool thread), to test the write_timeout bound of that path: ``-k
slow_client_workers.NoDeferWorker``."""

from gunicorn.workers.gthread import ThreadWorker


class NoDeferWorker(ThreadWorker):
    deferred_output_limit = 0
