"""Creating, checking and removing the control socket file.

Rules, in order:

1. The parent directory is created with mode 0700 if it is missing (see
   :mod:`gunicorn.private_dir`). An existing one (``$XDG_RUNTIME_DIR``, a directory the user
   named) is used only if it is trusted: a real directory owned by us or root and writable by
   nobody else, since whoever can write there can swap the socket for their own. A bad one is
   refused by :func:`check_control_socket` before anything forks (exit 2).
2. A file already at the path is probed with ``connect``: a refused connection means a stale
   socket from a dead server, which is removed; a live answer means another server owns it,
   and it is *not* stolen (this server logs a warning and runs without a control socket).
   Anything that is not a socket is never removed.
3. The socket is bound under a umask of 0177 (never wider than 0600 for an instant), then
   chmod'ed to ``control_socket_mode``.
4. On close the file is unlinked only if it is still the one we bound (same device and inode):
   after a USR2 upgrade the new master may own the path by then.

Once running (a HUP, a directory changed after the start-up check), any ``OSError`` (EROFS,
EACCES, no home directory) or unsafe directory becomes one warning; the server keeps serving
without a control socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.control.paths import resolve_socket_path
from gunicorn.errors import ConfigError, UnsafePathError
from gunicorn.private_dir import check_trusted_dir, ensure_private_dir
from gunicorn.sockets import check_unix_socket_path

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

BACKLOG = 16
PROBE_TIMEOUT = 1.0


class ControlSocket:
    """The bound, listening control socket of this master."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> socket.socket | None:
        """A new connection (non-blocking), or None when nobody is waiting."""
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in (errno.ECONNABORTED, errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                             errno.ENOMEM):
                return None  # transient: the peer left, or we are short of fds for now
            raise
        conn.setblocking(False)
        return conn

    def close(self, unlink: bool = True) -> None:
        """Stop listening; remove the file if it is still ours."""
        with contextlib.suppress(OSError):
            self.sock.close()
        if unlink and self.owns_path():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def close_in_child(self) -> None:
        """In a forked child: drop our copy of the fd, touch nothing shared."""
        with contextlib.suppress(OSError):
            os.close(self.sock.detach())

    def owns_path(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity


def check_control_socket(cfg: CoreSettings) -> None:
    """Refuse, before anything forks, a control socket path that cannot work or cannot be
    trusted: too long for AF_UNIX, or in an existing directory owned by another user or
    writable by others. Raises ConfigError("control_socket", ...)."""
    if cfg.control_socket_disable:
        return
    path = resolve_socket_path(cfg.control_socket, cwd=cfg.chdir or None)
    if path is None:
        return  # no default location: the server warns and runs without one
    origin = "" if cfg.control_socket else "the default comes from $XDG_RUNTIME_DIR or $HOME; "
    check_unix_socket_path("control_socket", path,
                           f"{origin}set control_socket to a shorter path, or "
                           "--no-control-socket")
    try:
        check_trusted_dir(os.path.dirname(path))
    except OSError:
        return  # missing: created private (0700) at open; unusable: one warning at open
    except UnsafePathError as exc:
        raise ConfigError("control_socket", (
            f"{exc}: another user could replace the socket ({origin}put control_socket in a "
            "private directory, or --no-control-socket)")) from None


def open_control_socket(path: str, mode: int, log: Any) -> ControlSocket | None:
    """Bind and listen on ``path``; None (after one warning) when that is not possible."""
    try:
        _make_dir(os.path.dirname(path))
        if not _clear_path(path, log):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with util.umask(0o177):
                sock.bind(path)
            # Listening before the chmod: a client that sees the file can connect at once.
            sock.listen(BACKLOG)
            os.chmod(path, mode)
            sock.setblocking(False)
            return ControlSocket(sock, path)
        except BaseException:
            sock.close()
            raise
    except UnsafePathError as exc:
        log.warning("Control socket disabled: %s: another user could replace the socket (put "
                    "control_socket in a private directory, or --no-control-socket)", exc)
        return None
    except OSError as exc:
        log.warning("Control socket disabled: cannot create %s: %s (set control_socket to a "
                    "writable path, or --no-control-socket)", path, exc.strerror or exc)
        return None


def _make_dir(directory: str) -> None:
    try:
        check_trusted_dir(directory)
    except FileNotFoundError:
        ensure_private_dir(directory)


def _clear_path(path: str, log: Any) -> bool:
    """True when ``path`` is free to bind (removing a stale socket); False to give up."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISSOCK(st.st_mode):
        log.warning("Control socket disabled: %s exists and is not a socket; not removing it",
                    path)
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # nobody listens: a stale file from a server that died
        return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("Control socket disabled: cannot probe the existing %s: %s", path,
                    exc.strerror or exc)
        return False
    finally:
        probe.close()
    log.warning("Control socket disabled: another server is listening on %s; running without "
                "one (give each server its own control_socket)", path)
    return False
