"""Small process-level helpers shared by the arbiter, workers and sockets.

Nothing here keeps state between calls: process title, ownership, close-on-exec, daemonising.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import random
import sys
from collections.abc import Iterator


def set_process_title(title: str) -> None:
    """Set the title shown by ``ps`` when setproctitle is installed; otherwise do nothing.

    The title is cosmetic, so a missing optional dependency is not an error.
    """
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(f"gunicorn: {title}")


def close_on_exec(fd: int) -> None:
    """Make ``fd`` non-inheritable so an exec'd child (USR2 re-exec, user code) does not hold it."""
    os.set_inheritable(fd, False)


def set_non_blocking(fd: int) -> None:
    os.set_blocking(fd, False)


def username_for(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def lookup_uid(value: int | str) -> int:
    """``1000`` or ``"www-data"`` -> uid; raise KeyError for an unknown name."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    return pwd.getpwnam(str(value)).pw_uid


def lookup_gid(value: int | str) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    return grp.getgrnam(str(value)).gr_gid


def set_owner_process(uid: int | None, gid: int | None, initgroups: bool = False) -> None:
    """Drop the worker's privileges to ``uid``/``gid`` (group first: setgid needs root).

    When the user or group changes, the supplementary groups change too: with ``initgroups``
    they become the user's, otherwise none (a worker started from a root shell must not keep
    root's groups, such as group 0). A uid/gid equal to the current one is a no-op, so an
    unprivileged server never calls set*id or touches its groups.
    """
    new_gid = gid is not None and gid != os.getgid()
    new_uid = uid is not None and uid != os.getuid()
    if not (new_gid or new_uid):
        return
    if os.geteuid() == 0:
        name = username_for(uid) if uid is not None else None
        if initgroups and name is not None:
            os.initgroups(name, gid if gid is not None else os.getgid())
        else:
            os.setgroups([])
    if gid is not None and new_gid:
        os.setgid(gid)
    if uid is not None and new_uid:
        os.setuid(uid)


def check_owner_change(uid: int | None, gid: int | None) -> str | None:
    """Why this process cannot become ``uid``/``gid`` (only root can switch), or None."""
    if os.geteuid() == 0:
        return None
    if uid is not None and uid != os.geteuid():
        return f"switching to uid {uid} needs the server to start as root (it runs as uid " \
               f"{os.geteuid()})"
    if gid is not None and gid != os.getegid() and gid not in os.getgroups():
        return f"switching to gid {gid} needs the server to start as root"
    return None


def chown(path: str | int, uid: int | None, gid: int | None) -> None:
    """Give ``path`` (or an fd) to ``uid``/``gid`` when they differ from ours (-1 keeps a side)."""
    want_uid = -1 if uid is None or uid == os.geteuid() else uid
    want_gid = -1 if gid is None or gid == os.getegid() else gid
    if want_uid == -1 and want_gid == -1:
        return
    if isinstance(path, int):
        os.fchown(path, want_uid, want_gid)
    else:
        os.chown(path, want_uid, want_gid)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Apply ``mask`` for the duration of the block (binding a Unix socket, creating a file)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def reseed_random() -> None:
    """Give a forked child its own random sequence (the parent's state was copied by fork)."""
    random.seed(os.urandom(16))


def daemonize(enable_stdio_inheritance: bool = False) -> None:
    """Detach from the terminal: fork, setsid, fork again; stdio goes to /dev/null.

    With ``enable_stdio_inheritance`` stdout/stderr are kept (stdin is always /dev/null) so a
    supervisor capturing them still sees the logs.
    """
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0o22)
    devnull = os.open(os.devnull, os.O_RDWR)
    targets = (0,) if enable_stdio_inheritance else (0, 1, 2)
    for fd in targets:
        os.dup2(devnull, fd)
    if devnull not in (0, 1, 2):
        os.close(devnull)
    if enable_stdio_inheritance:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def flush_stdio() -> None:
    """Flush Python's stdio buffers before ``os._exit`` (which skips interpreter shutdown)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def system_exit_code(exc: SystemExit) -> int:
    """The process exit status ``sys.exit(code)`` asked for (None -> 0, a message -> 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    return 1
