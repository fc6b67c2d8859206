"""Config for test_h2_dos.py's memory test: no cyclic garbage collection in the worker, so a
closed connection that only a full collection would free stays visible."""

import gc


def post_fork(server, worker):
    gc.disable()
