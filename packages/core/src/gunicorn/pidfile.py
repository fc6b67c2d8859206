"""The master's pidfile (``--pid``).

Written atomically (temp file + rename, mode 0644) so a reader never sees a half-written pid.
Start is refused while the pid already named in the file is alive; the file is removed on exit
only when it still holds our pid, so a newer master's file is never deleted by an older one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile

from gunicorn.errors import HaltServer


def read_pid(path: str) -> int | None:
    """The pid stored in ``path``, or None when the file is missing, empty or not a number."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    try:
        return int(text)
    except ValueError:
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


class Pidfile:
    """One pidfile path. :meth:`create` refuses to overwrite the file of a live server."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: int | None = None

    def running_pid(self) -> int | None:
        """The live pid other than ours named by the file, or None."""
        pid = read_pid(self.path)
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
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".gunicorn-pid-", dir=directory)
        try:
            os.fchmod(fd, 0o644)
            os.write(fd, f"{pid}\n".encode())
            os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

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
        """Remove the file, but only if it still holds our pid."""
        if self.pid is not None and read_pid(self.path) == self.pid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
