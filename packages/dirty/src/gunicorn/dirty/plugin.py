"""The gunicorn-dirty plugin object, loaded by the core from the ``gunicorn.plugins`` group.

It contributes the ``dirty_*`` settings, checks the app specs before anything forks, asks the
core to supervise the dirty arbiter as a sidecar, and exports the arbiter's socket path to HTTP
workers as ``GUNICORN_DIRTY_SOCKET``.

The socket path is chosen once per master (a private ``0700`` directory made by
``tempfile.mkdtemp``), so it stays the same when the dirty arbiter is restarted and running HTTP
workers simply reconnect.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn.errors import ConfigError
from gunicorn.plugins import SidecarContext, SidecarSpec

if TYPE_CHECKING:
    from gunicorn.config import Config, Registry

SOCKET_ENV = "GUNICORN_DIRTY_SOCKET"
SOCKET_NAME = "arbiter.sock"
# The master SIGKILLs the sidecar after its graceful timeout; the dirty arbiter needs a moment
# beyond dirty_graceful_timeout to kill late workers and remove its socket.
STOP_MARGIN = 2.0


def enabled(cfg: Config) -> bool:
    """The pool runs only when there is something to run and somewhere to run it."""
    return bool(cfg.dirty_apps) and cfg.dirty_workers > 0


class DirtyPlugin:
    """Hooks of gunicorn-dirty (see :mod:`gunicorn.plugins` for when the core calls them)."""

    def __init__(self) -> None:
        self._socket_dir: str | None = None

    def add_settings(self, registry: Registry) -> None:
        from gunicorn.dirty.settings import SETTINGS

        registry.add_all(SETTINGS)

    def configure(self, cfg: Config) -> None:
        """Reject malformed ``dirty_apps`` entries (exit 2, one line naming the entry); warn
        when ``dirty_workers`` is set without any app to run."""
        from gunicorn.dirty.specs import parse_specs

        try:
            parse_specs(cfg.dirty_apps)
        except ValueError as exc:
            raise ConfigError("dirty_apps", str(exc)) from None
        if cfg.is_set("dirty_workers") and cfg.dirty_workers > 0 and not cfg.dirty_apps:
            cfg.notice(f"dirty_workers = {cfg.dirty_workers} but no dirty_apps (--dirty-app): "
                       "no dirty pool will start")

    def socket_path(self) -> str:
        """The dirty arbiter's socket path, created on first use in this (master) process."""
        if self._socket_dir is None:
            self._socket_dir = tempfile.mkdtemp(prefix="gunicorn-dirty-")
            os.chmod(self._socket_dir, 0o700)
        return os.path.join(self._socket_dir, SOCKET_NAME)

    def worker_environ(self, cfg: Config) -> dict[str, str]:
        if not enabled(cfg):
            return {}
        return {SOCKET_ENV: self.socket_path()}

    def sidecars(self, cfg: Config) -> list[SidecarSpec]:
        if not enabled(cfg):
            return []
        path = self.socket_path()
        return [SidecarSpec(
            name="dirty",
            run=partial(_run_arbiter, path),
            env={SOCKET_ENV: path},
            graceful_timeout=float(cfg.dirty_graceful_timeout) + STOP_MARGIN,
            pidfile=pidfile_path(cfg),
        )]

    def control_commands(self, cfg: Config) -> dict[str, Any]:
        """``show dirty``, ``dirty add|remove`` and ``stash ...`` (see docs/ctl.md).

        Without a pool there is nothing to ask: the core's placeholders answer ``show dirty``
        with ``enabled: false`` and ``dirty add|remove`` with an error, and ``stash`` is unknown.
        """
        if not enabled(cfg):
            return {}
        from gunicorn.dirty.control import DirtyCommands

        return DirtyCommands(self.socket_path()).handlers()


def pidfile_path(cfg: Config) -> str:
    """Where the master records the dirty arbiter's pid, to kill an orphan on the next start.

    Keyed by the proc name *and* the bind addresses and working directory, so two different
    servers on one host never take each other's dirty arbiter for an orphan.
    """
    name = (cfg.proc_name or "gunicorn").replace("/", "_").replace(" ", "_")
    identity = "|".join([os.getcwd(), *map(str, cfg.bind or [])])
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:10]
    return os.path.join(tempfile.gettempdir(), f"gunicorn-dirty-{name}-{digest}.pid")


def _run_arbiter(socket_path: str, ctx: SidecarContext) -> int:
    from gunicorn.dirty.arbiter import DirtyArbiter

    return DirtyArbiter(ctx.cfg, ctx.log, socket_path, master_pid=ctx.master_pid).run()
