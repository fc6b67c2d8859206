"""The master process: main loop and signals (arbiter.py), the HTTP worker pool (pool.py),
generic sidecar supervision (sidecars.py), USR2 re-exec (reexec.py), signal plumbing
(signals.py)."""

from gunicorn.arbiter.arbiter import Arbiter

__all__ = ["Arbiter"]
