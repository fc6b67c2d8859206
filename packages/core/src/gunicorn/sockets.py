"""Listening sockets: bind what ``-b`` names, or adopt sockets inherited from a parent.

Sources of listeners, in the order the arbiter tries them:

* fds handed over by an old master on USR2 (``GUNICORN_FD=3,4``) or by systemd socket
  activation (``LISTEN_FDS``): adopted as they are, never unlinked by us;
* ``cfg.address`` (a list of :class:`~gunicorn.config.address.BindAddress`): ``tcp`` (IPv4 or
  IPv6, ``SO_REUSEADDR``, optional ``SO_REUSEPORT``), ``unix`` (bound under ``cfg.umask`` and
  given to ``cfg.uid``/``cfg.gid``; unlinked on stop) and ``fd`` (an fd opened by whoever
  started us).

Every listener is non-blocking: several workers select on the same socket and only one of them
wins each connection; a blocking ``accept`` would park the losers.

:func:`check_unix_socket_path` is the one length check for every Unix socket path the server
creates (``bind = unix:...``, the control socket, a plugin's socket such as the dirty pool's):
a path too long for AF_UNIX is a clear exit 2 before anything forks, never a crash loop.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.errors import ConfigError, HaltServer

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

BIND_RETRIES = 5
BIND_RETRY_DELAY = 1.0
# sockaddr_un.sun_path holds 108 bytes on Linux; one is kept for the NUL terminator that C
# clients (curl, nginx, libpq...) write after the path, so every client can reach the socket.
UNIX_PATH_MAX = 107
UCRED = struct.Struct("3i")


def peer_credentials(sock: Any) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of the connected Unix socket
    ``sock`` (SO_PEERCRED, Linux), as the kernel recorded them at ``connect``.

    Used by every Unix socket server of ours (control socket, dirty arbiter) to obey only the
    server's own users, whatever the file mode says; decide with
    :func:`gunicorn.private_dir.uid_is_trusted`.
    """
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)
    pid, uid, gid = UCRED.unpack(raw)
    return pid, uid, gid


def check_unix_socket_path(setting: str, path: str, hint: str = "") -> None:
    """Raise ConfigError(``setting``) when ``path`` is too long to bind as an AF_UNIX socket.

    The message names the path, its length in bytes and the limit; ``hint`` (e.g. "set
    TMPDIR to a shorter directory") is appended in parentheses.
    """
    length = len(os.fsencode(path))
    if length > UNIX_PATH_MAX:
        advice = f" ({hint})" if hint else ""
        raise ConfigError(setting, f"the Unix socket path {path} is {length} bytes long; "
                                   f"AF_UNIX socket paths are limited to {UNIX_PATH_MAX} "
                                   f"bytes{advice}")


def check_bind_paths(cfg: CoreSettings) -> None:
    """:func:`check_unix_socket_path` for every ``unix:`` address in ``bind``."""
    for address in cfg.address:
        if address.kind == "unix" and address.path is not None:
            check_unix_socket_path("bind", address.path, "bind a shorter path")


class Listener:
    """One bound, listening socket.

    ``address`` is the configured :class:`BindAddress` when we bound it, or a display string for
    an inherited socket. ``inherited`` sockets (USR2, systemd, ``fd://``) are never unlinked:
    another process owns their lifetime.
    """

    def __init__(self, sock: socket.socket, address: Any, inherited: bool = False) -> None:
        self.sock = sock
        self.address = address
        self.inherited = inherited
        self.family = sock.family

    @property
    def is_unix(self) -> bool:
        return self.family == socket.AF_UNIX

    @property
    def path(self) -> str | None:
        """The filesystem path of a Unix socket (None for TCP or abstract sockets)."""
        if not self.is_unix:
            return None
        name = self.sock.getsockname()
        return name if isinstance(name, str) and name else None

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def accept(self) -> tuple[socket.socket, Any]:
        return self.sock.accept()

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:
        # gunicorn's listeners delegate to the socket, and third-party workers rely on it
        # (uvicorn hands them to loop.create_server, which reads .type and calls .setblocking).
        if name == "sock":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.sock, name)

    def close(self, unlink: bool = False) -> None:
        """Close the socket; remove a Unix socket file we created when ``unlink`` is true.

        Workers close their copy with a plain ``close()`` (uvicorn's does): that must never
        remove the file the master and the other workers still serve on.
        """
        path = self.path if unlink and not self.inherited else None
        with contextlib.suppress(OSError):
            self.sock.close()
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def __str__(self) -> str:
        """How the address is shown in "Listening at: ..." lines."""
        if self.sock.fileno() < 0:
            return str(self.address)
        if self.is_unix:
            return f"unix:{self.path or self.address}"
        host, port = self.sock.getsockname()[:2]
        if self.family == socket.AF_INET6:
            return f"http://[{host}]:{port}"
        return f"http://{host}:{port}"

    def __repr__(self) -> str:
        return f"<Listener {self} fd={self.sock.fileno()}>"


def _tcp_socket(host: str, port: int, cfg: CoreSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if cfg.reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    """Unlink ``path`` if it is a socket nobody listens on; refuse to touch anything else.

    A live socket is left alone (bind then fails with EADDRINUSE) so that starting a second
    server never steals the first one's address.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise HaltServer(f"{path!r} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        pass  # alive: bind will report the address in use
    finally:
        probe.close()


def _unix_socket(path: str, cfg: CoreSettings) -> socket.socket:
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with util.umask(cfg.umask):
            sock.bind(path)
        util.chown(path, cfg.uid, cfg.gid)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind(address: Any, cfg: CoreSettings) -> Listener:
    if address.kind == "unix":
        sock = _unix_socket(address.path, cfg)
        inherited = False
    elif address.kind == "fd":
        sock = socket.socket(fileno=address.fd)
        inherited = True
    else:
        sock = _tcp_socket(address.host, address.port, cfg)
        inherited = False
    try:
        sock.listen(cfg.backlog)
        sock.setblocking(False)
        util.close_on_exec(sock.fileno())
    except BaseException:
        if not inherited:
            sock.close()
        raise
    return Listener(sock, address, inherited=inherited)


def bind_address(address: Any, cfg: CoreSettings, log: Any, retries: int = BIND_RETRIES,
                 delay: float = BIND_RETRY_DELAY) -> Listener:
    """Bind one address, retrying while it is in use; raise HaltServer when it cannot be had."""
    for attempt in range(1, retries + 1):
        try:
            return _bind(address, cfg)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.error("Connection in use: %s", address)
            elif exc.errno == errno.EADDRNOTAVAIL:
                log.error("Invalid address: %s", address)
            else:
                raise HaltServer(f"Could not bind {address}: {exc}") from exc
            if attempt < retries:
                log.error("Retrying in %s second%s.", delay, "" if delay == 1 else "s")
                time.sleep(delay)
    raise HaltServer(f"Could not bind {address}: address in use or not available "
                     f"after {retries} attempts")


def adopt_fds(fds: Iterable[int], cfg: CoreSettings) -> list[Listener]:
    """Wrap inherited listening fds (USR2 re-exec, systemd) as listeners."""
    listeners = []
    for fd in fds:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        util.close_on_exec(fd)
        name = sock.getsockname()
        display = f"unix:{name}" if sock.family == socket.AF_UNIX else str(name)
        listeners.append(Listener(sock, display, inherited=True))
    return listeners


def create_listeners(cfg: CoreSettings, log: Any, fds: Sequence[int] | None = None,
                     retries: int = BIND_RETRIES) -> list[Listener]:
    """Return the listening sockets for ``cfg``.

    ``fds``, when given (inherited from an old master or from systemd), are adopted instead of
    binding ``cfg.address``. Raises HaltServer with one clear line when an address cannot be
    bound after ``retries`` attempts (one second apart) or when nothing is configured.
    """
    if fds:
        return adopt_fds(fds, cfg)
    listeners: list[Listener] = []
    try:
        for address in cfg.address:
            listeners.append(bind_address(address, cfg, log, retries=retries))
    except BaseException:
        close_listeners(listeners, unlink=True)
        raise
    if not listeners:
        raise HaltServer("No sockets to listen on (check --bind)")
    return listeners


def rebind_for_worker(listeners: Sequence[Listener], cfg: CoreSettings, log: Any) -> list[Listener]:
    """With ``reuse_port``, give a worker its own TCP sockets on the same addresses.

    The kernel then spreads connections across workers instead of waking all of them. Unix and
    inherited sockets are shared as they are.
    """
    result = []
    for listener in listeners:
        if listener.inherited or listener.is_unix:
            result.append(listener)
            continue
        host, port = listener.getsockname()[:2]
        sock = _tcp_socket(host, port, cfg)
        sock.listen(cfg.backlog)
        sock.setblocking(False)
        result.append(Listener(sock, listener.address))
        listener.close(unlink=False)
    return result


def close_listeners(listeners: Iterable[Listener], unlink: bool = True) -> None:
    for listener in listeners:
        listener.close(unlink=unlink)
