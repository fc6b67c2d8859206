"""The master's records of its sidecars, and how a sidecar left behind by a crashed master is
found and stopped on the next start.

A sidecar (the dirty arbiter) normally exits within a second of its master's death. One that
does not (it hung, or was stopped) would hold its resources forever, so a master that starts
fresh stops the sidecar a previous master of the *same server* left. Signalling a pid read from
a file is dangerous, so:

* the records live in the private directory :func:`gunicorn.private_dir.runtime_dir` (0700,
  owned by the server's user, never a symlink), one file per sidecar named after the server
  (proc name, working directory, bind addresses) and the sidecar;
* a record is a :class:`~gunicorn.pidfile.ProcessStamp` (pid, start time, boot id), written
  atomically right after the fork, and read back only if it is a trusted file;
* a process is signalled only while its start time still matches the record, checked again
  before the final SIGKILL; anything else is logged with the reason and left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from gunicorn.errors import UnsafePathError
from gunicorn.pidfile import ProcessStamp
from gunicorn.private_dir import open_private_dir, read_trusted_file, runtime_dir, write_file_atomic

ORPHAN_GRACE = 1.0
_POLL = 0.05


def server_identity(proc_name: str | None, cwd: str, bind: Sequence[Any]) -> str:
    """A short name telling this server apart from another on the same host and user."""
    name = (proc_name or "gunicorn").replace("/", "_").replace(" ", "_")
    digest = hashlib.sha1("|".join([cwd, *map(str, bind)]).encode(),
                          usedforsecurity=False).hexdigest()[:10]
    return f"{name}-{digest}"


class SidecarRecords:
    """The sidecar records of one server. ``directory`` defaults to the runtime directory,
    looked up when first needed (``$TMPDIR`` may be set by a test or a launcher)."""

    def __init__(self, log: Any, identity: Callable[[], str],
                 directory: str | None = None) -> None:
        self.log = log
        self._identity = identity
        self._directory = directory
        self._warned = False

    @property
    def directory(self) -> str:
        return self._directory or runtime_dir()

    def path_of(self, name: str) -> str:
        return os.path.join(self.directory, self._file_name(name))

    def _file_name(self, name: str) -> str:
        return f"sidecar-{self._identity()}-{name.replace('/', '_')}.pid"

    def _open_dir(self) -> int | None:
        try:
            return open_private_dir(self.directory)
        except (UnsafePathError, OSError) as exc:
            if not self._warned:
                self._warned = True
                self.log.warning("Sidecar records disabled (no orphan clean-up after a crash): "
                                 "%s", exc)
            return None

    # -- writing ------------------------------------------------------------------------------

    def record(self, name: str, pid: int) -> None:
        """Remember that ``pid`` is the sidecar ``name`` (right after its fork)."""
        stamp = ProcessStamp.of(pid)
        dir_fd = self._open_dir()
        if stamp is None or dir_fd is None:
            return
        try:
            write_file_atomic(self._file_name(name), stamp.encode(), 0o600, dir_fd=dir_fd)
        except OSError as exc:
            self.log.warning("Cannot record sidecar %s (pid:%s) in %s: %s", name, pid,
                             self.directory, exc)
        finally:
            os.close(dir_fd)

    def forget(self, name: str, pid: int) -> None:
        """Remove the record of ``name`` if it still names ``pid``."""
        dir_fd = self._open_dir()
        if dir_fd is None:
            return
        try:
            stamp = self._read(name, dir_fd)
            if stamp is not None and stamp.pid == pid:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._file_name(name), dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def _read(self, name: str, dir_fd: int) -> ProcessStamp | None:
        try:
            data = read_trusted_file(self._file_name(name), dir_fd=dir_fd)
        except (UnsafePathError, OSError) as exc:
            self.log.warning("Ignoring the sidecar record %s: %s", self.path_of(name), exc)
            return None
        return ProcessStamp.decode(data) if data is not None else None

    # -- orphans ------------------------------------------------------------------------------

    def stop_orphan(self, name: str) -> None:
        """Stop the sidecar ``name`` a previous master left running, if the record proves it."""
        dir_fd = self._open_dir()
        if dir_fd is None:
            return
        try:
            file_name = self._file_name(name)
            try:
                data = read_trusted_file(file_name, dir_fd=dir_fd)
            except (UnsafePathError, OSError) as exc:
                self.log.warning("Not stopping any orphaned sidecar %s: the record %s is not "
                                 "trusted (%s); leaving it alone", name, self.path_of(name), exc)
                return
            if data is None:
                return
            stamp = ProcessStamp.decode(data)
            if stamp is None:
                self.log.warning("Ignoring the malformed sidecar record %s", self.path_of(name))
            elif stamp.pid == os.getpid():
                pass
            else:
                why = stamp.mismatch()
                if why is None:
                    self.log.warning("Killing orphaned sidecar %s (pid:%s)", name, stamp.pid)
                    terminate(stamp, self.log)
                else:
                    self.log.warning("Not signalling pid %s from the sidecar record %s: it is not "
                                  "an orphaned sidecar %s (%s)", stamp.pid,
                                  self.path_of(name), name, why)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(file_name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


def terminate(stamp: ProcessStamp, log: Any, grace: float = ORPHAN_GRACE) -> None:
    """SIGTERM the stamped process, then SIGKILL it if it is still the same process after
    ``grace`` seconds. Not a child of ours: it cannot be reaped, only watched."""
    _signal(stamp, signal.SIGTERM)
    # A stopped process (SIGSTOP, a debugger) keeps TERM pending; CONT lets it act on it.
    _signal(stamp, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if stamp.mismatch() is not None:
            return
        time.sleep(_POLL)
    if stamp.mismatch() is None:
        log.warning("Orphaned sidecar (pid:%s) ignored SIGTERM; killing it", stamp.pid)
        _signal(stamp, signal.SIGKILL)


def _signal(stamp: ProcessStamp, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(stamp.pid, sig)
