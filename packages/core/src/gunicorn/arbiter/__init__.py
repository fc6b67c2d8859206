"""The master process: main loop and signals (arbiter.py), the HTTP worker pool (pool.py),
generic sidecar supervision (sidecars.py), USR2 re-exec (reexec.py), signal plumbing
(signals.py)."""

# The first of our modules classic gunicorn's console script imports when its files overwrote
# ours (it ships arbiter.py; this package wins the import): see _gunicorn_launch.
from _gunicorn_launch import exit_if_shadowed

exit_if_shadowed()

from gunicorn.arbiter.arbiter import Arbiter  # noqa: E402

__all__ = ["Arbiter"]
