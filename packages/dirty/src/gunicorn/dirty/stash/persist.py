"""The stash file (``dirty_stash_file``): a msgpack snapshot of every table, written atomically.

File layout (one msgpack map)::

    {"format": "gunicorn-dirty-stash", "version": 1, "saved_at": <wall-clock seconds>,
     "tables": {<name>: [[key, value, expires_at | None], ...], ...}}

``expires_at`` is absolute wall-clock time (``time.time()``): the store keeps deadlines on the
monotonic clock, which restarts with the machine, so they are converted here, on the way out and
on the way in. A key whose wall-clock deadline passed while the server was down is not loaded.

Saving is split in two so the arbiter's event loop never blocks on the disk: :func:`dumps`
(CPU only, must run where the store lives) and :func:`write_atomic` (may run in a thread).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from typing import TYPE_CHECKING, Any

import msgpack
from gunicorn.dirty.errors import StashError

if TYPE_CHECKING:
    from gunicorn.dirty.stash.store import StashStore

FORMAT = "gunicorn-dirty-stash"
VERSION = 1


def dumps(store: StashStore, now: float | None = None, wall: float | None = None) -> bytes:
    """Serialise every table of ``store``.

    ``now`` is the store's clock (default ``time.monotonic()``), ``wall`` the matching
    wall-clock time (default ``time.time()``). Raises :class:`StashError` if a value cannot be
    encoded (it cannot happen for values that arrived over the wire).
    """
    now = time.monotonic() if now is None else now
    wall = time.time() if wall is None else wall
    store.expire(now)
    tables = {
        name: [[key, value, None if deadline is None else deadline - now + wall]
               for key, value, deadline in store.entries(name)]
        for name in store.table_names()
    }
    doc = {"format": FORMAT, "version": VERSION, "saved_at": wall, "tables": tables}
    try:
        return msgpack.packb(doc, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise StashError(f"cannot serialise the stash: {exc}") from exc


def loads(store: StashStore, data: bytes, now: float | None = None,
          wall: float | None = None) -> int:
    """Load a snapshot made by :func:`dumps` into ``store``; return the number of keys loaded.

    Each table in the snapshot replaces the table of the same name; other tables are kept
    (tables created by ``DirtyApp.stashes`` stay even when the file predates them). Raises
    :class:`StashError` when ``data`` is not a stash snapshot, leaving ``store`` untouched.
    """
    now = time.monotonic() if now is None else now
    wall = time.time() if wall is None else wall
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise StashError(f"stash file is not valid msgpack: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StashError("not a gunicorn-dirty stash file")
    if doc.get("version") != VERSION:
        raise StashError(f"unsupported stash file version {doc.get('version')!r}")
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise StashError("stash file has no tables map")
    parsed = {name: _entries(name, rows, now, wall) for name, rows in tables.items()}
    # Everything is validated before the first table is touched: a bad file changes nothing.
    loaded = 0
    for name, entries in parsed.items():
        store.restore(name, entries)
        loaded += len(entries)
    return loaded


def _entries(name: Any, rows: Any, now: float,
             wall: float) -> list[tuple[Any, Any, float | None]]:
    if not isinstance(name, str) or not isinstance(rows, list):
        raise StashError(f"malformed table {name!r} in stash file")
    entries: list[tuple[Any, Any, float | None]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 3:
            raise StashError(f"malformed entry in stash table {name!r}")
        key, value, expires_at = row
        if not isinstance(key, (str, int, bytes)) or isinstance(key, bool):
            raise StashError(f"malformed key in stash table {name!r}")
        if expires_at is None:
            entries.append((key, value, None))
        elif isinstance(expires_at, (int, float)):
            if expires_at > wall:
                entries.append((key, value, expires_at - wall + now))
        else:
            raise StashError(f"malformed expiry in stash table {name!r}")
    return entries


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a mix.

    The bytes go to a temporary file in the same directory, which is fsynced and renamed over
    ``path``; the directory is fsynced too so the rename survives a power loss. The file is
    created 0600 (a stash often holds sessions). Raises ``OSError``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".stash-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(store: StashStore, path: str, now: float | None = None,
         wall: float | None = None) -> None:
    """:func:`dumps` then :func:`write_atomic`. Raises ``OSError`` or :class:`StashError`."""
    write_atomic(path, dumps(store, now, wall))


def load(store: StashStore, path: str, now: float | None = None,
         wall: float | None = None) -> int:
    """Load ``path`` into ``store`` if it exists; return the number of keys loaded (0 when there
    is no file yet). Raises :class:`StashError` for a corrupt file, ``OSError`` if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    return loads(store, data, now, wall)
