"""The gunicorn-dirty plugin object, loaded by the core from the ``gunicorn.plugins`` group.

It contributes the ``dirty_*`` settings, checks the app specs before anything forks, asks the
core to supervise the dirty arbiter as a sidecar, and exports the arbiter's socket path to HTTP
workers as ``GUNICORN_DIRTY_SOCKET`` (and, with ``dirty_stash_url``, where the stash is in
Redis: ``GUNICORN_DIRTY_STASH_URL`` and ``GUNICORN_DIRTY_STASH_PREFIX``).

Metrics (``--metrics-bind``): the ``metrics`` hook declares the pool's families and the shared
memory the dirty arbiter reports its readiness in; ``health`` turns that report into the
``dirty`` section of ``/healthz`` (see :mod:`gunicorn.dirty.metrics`).

The socket path is chosen once per master (a private ``0700`` directory with a random name,
made and checked by :mod:`gunicorn.private_dir`), so it stays the same when the dirty arbiter is
restarted and running HTTP workers simply reconnect.

With ``user``/``group`` (a root master, as with gunicorn) the dirty arbiter and its workers run
as that user, like the HTTP workers: the arbiter drops its privileges first thing in its
process, before it imports any app module. The master creates the socket directory before
anything forks and gives it to that user (still ``0700``), so the arbiter can bind its socket
there and the HTTP workers can reach it; no other user can enter it.
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.errors import ConfigError
from gunicorn.plugins import SidecarContext, SidecarSpec
from gunicorn.private_dir import make_private_tempdir
from gunicorn.sockets import check_unix_socket_path

if TYPE_CHECKING:
    from gunicorn.config import Registry
    from gunicorn.dirty.metrics import DirtyMetrics
    from gunicorn.dirty.typed_settings import DirtySettings

SOCKET_ENV = "GUNICORN_DIRTY_SOCKET"
SOCKET_NAME = "arbiter.sock"
SOCKET_DIR_PREFIX = "gunicorn-dirty-"
# The master SIGKILLs the sidecar after its graceful timeout; the dirty arbiter needs a moment
# beyond dirty_graceful_timeout to kill late workers and remove its socket.
STOP_MARGIN = 2.0


def enabled(cfg: DirtySettings) -> bool:
    """The pool runs only when there is something to run and somewhere to run it."""
    return bool(cfg.dirty_apps) and cfg.dirty_workers > 0


class DirtyPlugin:
    """Hooks of gunicorn-dirty (see :mod:`gunicorn.plugins` for when the core calls them)."""

    def __init__(self) -> None:
        self._socket_dir: str | None = None
        self._metrics: DirtyMetrics | None = None

    def add_settings(self, registry: Registry) -> None:
        from gunicorn.dirty.settings import SETTINGS

        registry.add_all(SETTINGS)

    def configure(self, cfg: DirtySettings) -> None:
        """Reject malformed ``dirty_apps`` entries, a stash on Redis that cannot work (no redis
        client, or ``dirty_stash_file`` too), and a socket path too long for AF_UNIX: exit 2, one
        line naming the setting, entry or path. Warn when ``dirty_workers`` is set without any
        app to run."""
        from gunicorn.dirty.specs import parse_specs
        from gunicorn.dirty.stash.config import check_settings

        try:
            parse_specs(cfg.dirty_apps)
        except ValueError as exc:
            raise ConfigError("dirty_apps", str(exc)) from None
        if cfg.is_set("dirty_workers") and cfg.dirty_workers > 0 and not cfg.dirty_apps:
            cfg.notice(f"dirty_workers = {cfg.dirty_workers} but no dirty_apps (--dirty-app): "
                       "no dirty pool will start")
        check_settings(cfg)  # dirty_stash_url: the redis extra, not with dirty_stash_file
        if enabled(cfg):
            check_unix_socket_path("TMPDIR", self._planned_socket_path(),
                                   "the dirty arbiter's socket goes in TMPDIR; point TMPDIR "
                                   "to a shorter directory")

    def _planned_socket_path(self) -> str:
        if self._socket_dir is not None:
            return os.path.join(self._socket_dir, SOCKET_NAME)
        # mkdtemp adds 8 random characters to the prefix.
        return os.path.join(tempfile.gettempdir(), f"{SOCKET_DIR_PREFIX}XXXXXXXX", SOCKET_NAME)

    def socket_path(self, cfg: DirtySettings) -> str:
        """The dirty arbiter's socket path; its directory is created on first use in this
        (master) process and belongs to the user the pool runs as (``user``/``group``)."""
        if self._socket_dir is None:
            try:
                self._socket_dir = make_private_tempdir(SOCKET_DIR_PREFIX, cfg.uid, cfg.gid)
            except PermissionError as exc:
                raise ConfigError("user", f"cannot give the dirty arbiter's socket directory "
                                  f"to uid {cfg.uid} / gid {cfg.gid}: {exc.strerror} (running "
                                  "workers as another user needs root)") from exc
        return os.path.join(self._socket_dir, SOCKET_NAME)

    def worker_environ(self, cfg: DirtySettings) -> dict[str, str]:
        from gunicorn.dirty.stash.config import stash_environ

        env = stash_environ(cfg)  # the stash in Redis works with or without a pool
        if enabled(cfg):
            env[SOCKET_ENV] = self.socket_path(cfg)
        return env

    def metrics(self, families: Any) -> None:
        """Declare the dirty and stash metric families (in the master, before any fork)."""
        from gunicorn.dirty.metrics import DirtyMetrics

        self._metrics = DirtyMetrics(families)

    def health(self, cfg: DirtySettings) -> dict[str, Any] | None:
        """The ``dirty`` section of ``/healthz`` (none without a pool)."""
        metrics = self._metrics
        if not enabled(cfg) or metrics is None or metrics.snapshot is None:
            return None
        from gunicorn.dirty.metrics import health_section

        return {"dirty": health_section(metrics.snapshot.read(), time.monotonic())}

    def sidecars(self, cfg: DirtySettings) -> list[SidecarSpec]:
        if not enabled(cfg):
            return []
        path = self.socket_path(cfg)
        return [SidecarSpec(
            name="dirty",
            run=partial(_run_arbiter, path, self._metrics),
            env={SOCKET_ENV: path},
            graceful_timeout=float(cfg.dirty_graceful_timeout) + STOP_MARGIN,
            orphan_record=True,
            # Hung like an HTTP worker after `timeout` seconds without a heartbeat (0: never).
            heartbeat_timeout=float(cfg.timeout),
        )]

    def control_commands(self, cfg: DirtySettings) -> dict[str, Any]:
        """``show dirty``, ``dirty add|remove`` and ``stash ...`` (see docs/ctl.md).

        Without a pool there is nothing to ask: the core's placeholders answer ``show dirty``
        with ``enabled: false`` and ``dirty add|remove`` with an error, and ``stash`` is unknown
        unless the stash is in Redis (``dirty_stash_url``).
        """
        if not enabled(cfg) and not cfg.dirty_stash_url:
            return {}
        from gunicorn.dirty.control import DirtyCommands
        from gunicorn.dirty.stash.config import stash_prefix

        return DirtyCommands(self.socket_path(cfg) if enabled(cfg) else None,
                             stash_url=cfg.dirty_stash_url,
                             stash_prefix=stash_prefix(cfg)).handlers()


def _run_arbiter(socket_path: str, metrics: DirtyMetrics | None, ctx: SidecarContext) -> int:
    # Imported here: the generator of typed_settings imports this module to read the settings.
    from gunicorn.dirty.typed_settings import dirty_settings

    cfg = dirty_settings(ctx.cfg)
    master_uid = os.geteuid()
    # As the HTTP workers do, and before the arbiter imports the apps (it reads their class
    # attributes): no app code runs as root. The dirty workers inherit this.
    util.set_owner_process(cfg.uid, cfg.gid, bool(cfg.initgroups))
    from gunicorn.dirty.arbiter import DirtyArbiter

    return DirtyArbiter(cfg, ctx.log, socket_path, master_pid=ctx.master_pid,
                        notify=ctx.notify, master_uid=master_uid, metrics=metrics).run()
