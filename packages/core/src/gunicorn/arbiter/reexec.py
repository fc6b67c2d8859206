"""USR2: replace the running master with a freshly exec'd one on the same listening sockets.

::

    old master (pid A) --USR2--> fork --> child: pre_exec hook, exec python with the original
         |                                argv, GUNICORN_PID=A, GUNICORN_FD=3,4 (or LISTEN_*)
         |                                   |
         | keeps serving                     new master "Master.2": adopts fds 3,4,
         |                                   writes <pidfile>.2, spawns its own workers
         |
    TERM A (by the operator) --> A stops gracefully; B sees getppid() change and is
                                 promoted: title reset, <pidfile>.2 renamed to <pidfile>

Both generations accept on the very same sockets in between, so no connection is refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from gunicorn import systemd


@dataclass(frozen=True, slots=True)
class StartContext:
    """How this master was started, captured before anything changes it (for re-exec)."""

    cwd: str
    argv: tuple[str, ...]
    environ: Mapping[str, str]

    @classmethod
    def capture(cls) -> StartContext:
        # sys.orig_argv keeps the interpreter flags and "-m gunicorn"; re-running argv[0] as a
        # script would put the package directory first on sys.path and shadow the stdlib.
        argv = tuple(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
        try:
            cwd = os.getcwd()
        except FileNotFoundError:
            cwd = os.environ.get("PWD", "/")
        return cls(cwd=cwd, argv=argv, environ=dict(os.environ))


@dataclass(frozen=True, slots=True)
class Inheritance:
    """What the environment says about this process's origin.

    ``master_pid`` is the old master's pid when we are a USR2 child (0 otherwise); ``fds`` are
    listening sockets to adopt (None: bind ``cfg.address``); ``systemd`` is True under socket
    activation (those sockets belong to systemd and are never unlinked).
    """

    master_pid: int
    fds: list[int] | None
    systemd: bool


def read_inheritance(environ: MutableMapping[str, str] | None = None) -> Inheritance:
    """Parse (and remove) GUNICORN_PID, GUNICORN_FD and systemd's LISTEN_* variables."""
    env = os.environ if environ is None else environ
    master_pid = _int(env.pop("GUNICORN_PID", ""))
    raw_fds = env.pop("GUNICORN_FD", None)
    fds = [int(part) for part in raw_fds.split(",") if part.strip().isdigit()] if raw_fds else None
    activated = systemd.listen_fds(unset_environment=True, environ=env)
    if activated:
        return Inheritance(master_pid, activated, True)
    return Inheritance(master_pid, fds or None, False)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def exec_new_master(start: StartContext, listeners: Sequence[Any], master_pid: int,
                    under_systemd: bool, extra_env: Mapping[str, str] | None = None) -> None:
    """In the forked child: exec a new master that adopts ``listeners``. Never returns."""
    environ = dict(start.environ)
    environ.update(extra_env or {})
    environ["GUNICORN_PID"] = str(master_pid)
    fds = [listener.fileno() for listener in listeners]
    for fd in fds:
        os.set_inheritable(fd, True)
    if under_systemd:
        environ["LISTEN_PID"] = str(os.getpid())
        environ["LISTEN_FDS"] = str(len(fds))
    else:
        environ["GUNICORN_FD"] = ",".join(str(fd) for fd in fds)
    os.chdir(start.cwd)
    os.execve(sys.executable, [sys.executable, *start.argv[1:]], environ)
