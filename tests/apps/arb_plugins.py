"""A test plugin with one trivial sidecar that records its pid and the signals it receives."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from gunicorn.plugins import SidecarSpec


def _record(path, text):
    with open(path, "a") as fh:
        fh.write(text + "\n")


def ticker(ctx):
    mark_dir = os.environ["ARB_MARK_DIR"]
    log_path = os.path.join(mark_dir, "sidecar.log")
    stopping = []

    def on_signal(sig, frame):
        _record(log_path, f"{os.getpid()} {signal.Signals(sig).name}")
        if sig in (signal.SIGTERM, signal.SIGQUIT):
            stopping.append(sig)

    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, on_signal)
    with open(os.path.join(mark_dir, "ticker.pid"), "w") as fh:
        fh.write(f"{os.getpid()}\n")
    _record(log_path, f"{os.getpid()} started env={os.environ.get('ARB_SIDECAR_ENV')} "
                      f"master={ctx.master_pid} name={ctx.name}")
    while not stopping and os.getppid() == ctx.master_pid:
        ctx.notify()
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(mark_dir, "ticker.pid"))
    return 0


class SidecarPlugin:
    def sidecars(self, cfg):
        return [SidecarSpec(name="ticker", run=ticker, env={"ARB_SIDECAR_ENV": "yes"},
                            graceful_timeout=5.0, backoff_min=0.2, backoff_max=2.0,
                            orphan_record=True)]

    def worker_environ(self, cfg):
        return {"ARB_FROM_PLUGIN": "1"}


class HeartbeatSidecarPlugin:
    """The ticker, watched by a heartbeat: hung for more than a second means replaced."""

    def sidecars(self, cfg):
        return [SidecarSpec(name="ticker", run=ticker, graceful_timeout=5.0, backoff_min=0.2,
                            backoff_max=2.0, heartbeat_timeout=1.0)]


class EnvPlugin:
    def worker_environ(self, cfg):
        return {"ARB_FROM_PLUGIN": "1"}


def crasher(ctx):
    return 7


class CrashingSidecarPlugin:
    def sidecars(self, cfg):
        return [SidecarSpec(name="crasher", run=crasher, backoff_min=0.1, backoff_max=0.4)]
