"""Pid files: the master's ``--pid`` file, and process stamps that prove who a pid is.

The ``--pid`` file (and ``<pidfile>.2`` of a USR2 child) is written atomically (temp file +
rename, mode 0644) so a reader never sees a half-written pid. Start is refused while the pid
named in the file is alive; the file is removed on exit only when it still holds our pid, so a
newer master's file is never deleted by an older one.

Reading any of them follows :mod:`gunicorn.private_dir`'s trusted-file rules: a symbolic link,
a file that is not regular, or one owned by another user (or writable by others) is ignored
with a warning and replaced, never believed. A pid number alone proves nothing (pids are
reused), so where the server would *signal* a recorded pid it records a
:class:`ProcessStamp` instead, and signals only a process whose stamp still matches.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from typing import Any

from gunicorn.errors import HaltServer, UnsafePathError
from gunicorn.private_dir import read_trusted_file, write_file_atomic

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
# /proc/<pid>/stat after the ")" closing the command name: field 3 (state) comes first, so
# field 22 (starttime, clock ticks since boot) is at index 19.
_STATE_INDEX = 0
_START_TIME_INDEX = 19


def parse_pid(data: bytes | None) -> int | None:
    """The pid in a pidfile's content, or None when it is missing, empty or not a number."""
    if data is None:
        return None
    try:
        pid = int(data.strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def read_pid(path: str) -> int | None:
    """The pid stored in the trusted file ``path``, or None (missing, empty, not a number).

    Raises UnsafePathError when the file may not be trusted (see the module docstring).
    """
    try:
        return parse_pid(read_trusted_file(path))
    except IsADirectoryError:
        return None


def pid_is_alive(pid: int) -> bool:
    """True when ``pid`` names a live process (EPERM means alive, just not ours)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name may itself contain ")" and spaces: split after the last one.
    fields = text.rpartition(")")[2].split()
    return fields if len(fields) > _START_TIME_INDEX else None


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID_PATH) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class ProcessStamp:
    """A pid with what makes it unique on this machine: its start time (clock ticks after
    boot, from ``/proc/<pid>/stat``) and the boot it belongs to. Linux only; elsewhere no stamp
    can be taken, and a pid that cannot be proven is never signalled."""

    pid: int
    start_time: int
    boot_id: str

    @classmethod
    def of(cls, pid: int) -> ProcessStamp | None:
        """The stamp of the live process ``pid`` (None when it is gone or /proc is missing)."""
        fields = _proc_stat(pid)
        boot = _boot_id()
        if fields is None or boot is None:
            return None
        return cls(pid, int(fields[_START_TIME_INDEX]), boot)

    def encode(self) -> bytes:
        return f"{self.pid} {self.start_time} {self.boot_id}\n".encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> ProcessStamp | None:
        """Parse :meth:`encode`'s output; None for anything else."""
        parts = data.decode("ascii", "replace").split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        pid = int(parts[0])
        return cls(pid, int(parts[1]), parts[2]) if pid > 0 else None

    def mismatch(self) -> str | None:
        """Why ``pid`` is not (any more) the stamped process; None when it still is."""
        fields = _proc_stat(self.pid)
        if fields is None:
            if _boot_id() is None:
                return "process start times cannot be read here (no /proc)"
            return f"no process has pid {self.pid} any more"
        if fields[_STATE_INDEX] in ("Z", "X"):
            return f"pid {self.pid} has exited"
        boot = _boot_id()
        if boot != self.boot_id:
            return "the machine has rebooted since it was recorded"
        started = int(fields[_START_TIME_INDEX])
        if started != self.start_time:
            return (f"pid {self.pid} is another process now (it started at tick {started}, "
                    f"the recorded one at tick {self.start_time})")
        return None


class Pidfile:
    """One pidfile path. :meth:`create` refuses to overwrite the file of a live server.

    ``log`` (optional) receives the warning when an existing file is not trusted.
    """

    def __init__(self, path: str, log: Any = None) -> None:
        self.path = os.path.abspath(path)
        self.pid: int | None = None
        self._log = log

    def _read(self) -> int | None:
        try:
            return read_pid(self.path)
        except (UnsafePathError, OSError) as exc:
            if self._log is not None:
                self._log.warning("Ignoring the pidfile %s: %s", self.path, exc)
            return None

    def running_pid(self) -> int | None:
        """The live pid other than ours named by the (trusted) file, or None."""
        pid = self._read()
        if pid is None or pid == os.getpid() or not pid_is_alive(pid):
            return None
        return pid

    def create(self, pid: int) -> None:
        """Write ``pid``; raise HaltServer("Already running on PID N ...") if the file's pid lives."""
        other = self.running_pid()
        if other is not None:
            raise HaltServer(f"Already running on PID {other} (or pid file {self.path!r} is stale)")
        self.pid = pid
        self._write(pid)

    def _write(self, pid: int) -> None:
        write_file_atomic(self.path, f"{pid}\n".encode(), 0o644)

    def recreate(self) -> None:
        """Write our pid again (HUP: someone may have removed the file)."""
        if self.pid is not None:
            self._write(self.pid)

    def rename(self, path: str) -> None:
        """Move to ``path`` (a promoted USR2 master takes over the real name)."""
        path = os.path.abspath(path)
        self.unlink()
        self.path = path
        if self.pid is not None:
            self._write(self.pid)

    def unlink(self) -> None:
        """Remove the file, but only if it is trusted and still holds our pid."""
        if self.pid is not None and self._read() == self.pid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
