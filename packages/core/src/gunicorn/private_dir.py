"""Private directories, and the files the server believes when it reads them back.

The server keeps a few things on disk that it later acts on: the records of its sidecars (a
pid it may signal), its pidfiles, the directories of its Unix sockets. Whoever can write such a
file or swap such a directory can make a root server signal any process, or put their own
socket where clients expect ours. So every one of them goes through this module, and these
rules hold:

* A **private directory** is a real directory (never a symbolic link), owned by this process's
  effective user (or root), with no permission bit for group or others. A missing one is
  created with mode 0700 (missing parents too, each 0700); an existing one is checked, never
  loosened, tightened or adopted. A root master preparing a directory for the processes it
  runs as another user (``user``/``group``: the dirty arbiter) names that **owner**
  explicitly: a directory it creates is given to the owner, and an existing one must belong to
  the owner (or root). The rule is the same, only whose directory it is changes.
* A **trusted directory** (one we only place a socket in, such as ``$XDG_RUNTIME_DIR``) is a
  real directory owned by us or root and not writable by group or others: whoever else could
  write there could replace our socket.
* A **trusted file** is opened without following a symbolic link (``O_NOFOLLOW``), then checked
  on the open descriptor (``fstat``, so nothing can be swapped between check and read): a
  regular file owned by us or root, not writable by group or others.

Root counts as trusted everywhere: a file root planted is no attack on anyone. Checks work on
file descriptors (``openat`` style, ``dir_fd=``) where the work allows it; a socket can only be
bound by path, which is why its directory must be private or trusted.

Every refusal is an :class:`~gunicorn.errors.UnsafePathError` whose message says which path and
why, ready for one log line or one ``Error:`` line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import tempfile

from gunicorn import util
from gunicorn.errors import UnsafePathError

PRIVATE_MODE = 0o700
MAX_TRUSTED_FILE = 64 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted in place of the file must not hang the master.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def runtime_dir() -> str:
    """The server's private directory for its own records: ``<tmp>/gunicorn-<euid>``.

    ``<tmp>`` is ``tempfile.gettempdir()`` (``$TMPDIR``, else ``/tmp``). The name is stable so a
    restarted master finds what the previous one left; the directory is created and checked by
    :func:`open_private_dir`, so a directory of that name made by another user is refused.
    """
    return os.path.join(tempfile.gettempdir(), f"gunicorn-{os.geteuid()}")


def uid_is_trusted(uid: int) -> bool:
    """Root and this process's effective user: the owners (of files, of socket peers) the
    server believes."""
    return uid in (os.geteuid(), 0)


def describe_owner(uid: int) -> str:
    """``uid 65534 (nobody)``, or ``uid 65533`` without a passwd entry (for messages)."""
    name = util.username_for(uid)
    return f"uid {uid} ({name})" if name else f"uid {uid}"


def _trusted_owners(owner: int | None) -> str:
    euid = os.geteuid()
    if owner is not None and owner != euid:
        return "root" if owner == 0 else f"{describe_owner(owner)} or root"
    if euid == 0:
        return "this server's user (root)"
    return f"this server's user ({describe_owner(euid)}) or root"


def _owner_is_trusted(uid: int, owner: int | None) -> bool:
    return uid == 0 or uid == (os.geteuid() if owner is None else owner)


def check_directory(path: str, st: os.stat_result, private: bool,
                    owner: int | None = None) -> None:
    """Raise UnsafePathError unless ``st`` (from ``lstat`` or ``fstat`` of ``path``) is an
    acceptable private (``private=True``) or trusted directory.

    ``owner`` is the uid it must belong to (besides root); None means this process's
    effective uid.
    """
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a directory")
    _check_owner_and_mode(path, st, private, owner)


def _check_owner_and_mode(path: str, st: os.stat_result, private: bool,
                          owner: int | None = None) -> None:
    """Owned by ``owner`` (default: us) or root; no permission for others at all
    (``private``) or at least no write permission for them."""
    if not _owner_is_trusted(st.st_uid, owner):
        raise UnsafePathError(f"{path} is owned by {describe_owner(st.st_uid)}, "
                              f"not by {_trusted_owners(owner)}")
    mode = stat.S_IMODE(st.st_mode)
    if private and mode & 0o077:
        raise UnsafePathError(f"{path} has mode {mode:04o}; a private directory must be 0700")
    if mode & 0o022:
        raise UnsafePathError(f"{path} is writable by {_who_writes(mode)} (mode {mode:04o})")


def _who_writes(mode: int) -> str:
    both = mode & 0o020 and mode & 0o002
    return "group and others" if both else ("its group" if mode & 0o020 else "others")


def open_private_dir(path: str, owner: int | None = None, group: int | None = None) -> int:
    """Create (if missing) and check the private directory ``path``; return an fd on it.

    The fd (close-on-exec) lets callers create and read files in the directory with
    ``dir_fd=``, so a directory renamed or replaced after the check cannot redirect them.

    ``owner`` and ``group`` (default: this process's effective ids) say whose directory it is:
    one created here (missing parents too) is given to them, an existing one must be owned by
    ``owner`` or root. Raises UnsafePathError, or OSError when the directory cannot be created
    or given away (only root may give a directory to another user).
    """
    path = os.path.abspath(path)
    created = False
    try:
        os.mkdir(path, PRIVATE_MODE)  # mkdir never follows a symlink at its last component
        created = True
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        os.close(open_private_dir(parent, owner, group))
        return open_private_dir(path, owner, group)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        st = _lstat_or_none(path)
        if st is not None:
            # says "symbolic link" or "not a directory"
            check_directory(path, st, private=True, owner=owner)
        raise UnsafePathError(f"{path} cannot be opened as a directory: "
                              f"{exc.strerror or exc}") from exc
    try:
        if created:
            os.fchmod(fd, PRIVATE_MODE)  # mkdir's mode went through the umask
            util.chown(fd, owner, group)
        check_directory(path, os.fstat(fd), private=True, owner=owner)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private_dir(path: str, owner: int | None = None, group: int | None = None) -> str:
    """:func:`open_private_dir` for callers that need the path (binding a socket)."""
    os.close(open_private_dir(path, owner, group))
    return os.path.abspath(path)


def make_private_tempdir(prefix: str, owner: int | None = None, group: int | None = None,
                         parent: str | None = None) -> str:
    """A new private directory with a random name in ``parent`` (default
    ``tempfile.gettempdir()``), given to ``owner``/``group`` (see :func:`open_private_dir`)
    before anyone learns its name.

    Raises OSError when it cannot be created or given away (it is then removed again).
    """
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)  # 0700, a fresh name: ours alone
    try:
        fd = os.open(path, _DIR_FLAGS)
        try:
            util.chown(fd, owner, group)
            check_directory(path, os.fstat(fd), private=True, owner=owner)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        raise
    return path


def check_trusted_dir(path: str) -> None:
    """Raise UnsafePathError unless the existing ``path`` is a trusted directory (see above).

    FileNotFoundError propagates: the caller decides whether to create it (privately).
    """
    check_directory(path, os.lstat(path), private=False)


def _lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def read_trusted_file(name: str, dir_fd: int | None = None,
                      limit: int = MAX_TRUSTED_FILE) -> bytes | None:
    """The content of a trusted file, or None when there is none.

    ``name`` is relative to ``dir_fd`` when that is given. Raises UnsafePathError for a
    symbolic link, a non-regular file, a file owned by someone else or writable by others, or
    one larger than ``limit`` bytes.
    """
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise UnsafePathError(f"{name} is a symbolic link") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{name} is not a regular file")
        _check_owner_and_mode(name, st, private=False)
        if st.st_size > limit:
            raise UnsafePathError(f"{name} is larger than {limit} bytes")
        return os.read(fd, limit + 1)[:limit]
    finally:
        os.close(fd)



def write_file_atomic(name: str, data: bytes, mode: int, dir_fd: int | None = None) -> None:
    """Write ``data`` to ``name`` through a new temporary file and a rename.

    A reader never sees a half-written file, and whatever was at ``name`` (a symbolic link
    included) is replaced, never written through.
    """
    directory = os.path.dirname(name) if dir_fd is None else ""
    base = os.path.basename(name)
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)  # the creation mode went through the umask
        os.write(fd, data)
        os.close(fd)
        fd = -1
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
