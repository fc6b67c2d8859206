"""When the dirty arbiter reads and writes ``dirty_stash_file``.

:class:`StashSaver` is the whole persistence policy, so the arbiter only calls three methods:
:meth:`~StashSaver.load` before it serves, :meth:`~StashSaver.tick` from its periodic timer and
:meth:`~StashSaver.save_now` when it stops. Periodic saves snapshot the tables on the caller's
thread (a consistent copy, CPU only) and write the file in a background thread, so the
arbiter's event loop never waits on the disk; the final save is synchronous.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from gunicorn.dirty.errors import StashError
from gunicorn.dirty.stash import persist
from gunicorn.dirty.stash.store import StashStore


class StashSaver:
    """Persist ``store`` to ``path``: load at start, every ``interval`` seconds when something
    changed (0 disables periodic saves), and on stop. Errors are logged on ``log`` (a logger
    with ``info``/``error``/``exception``), never raised: a full disk must not stop the arbiter.
    """

    def __init__(self, store: StashStore, path: str, interval: float, log: Any) -> None:
        self.store = store
        self.path = path
        self.interval = interval
        self.log = log
        self._saved_version = -1
        self._last_save = time.monotonic()
        self._writer: threading.Thread | None = None

    def load(self) -> int:
        """Load the file if it exists; return the number of keys loaded (0 on any error)."""
        try:
            count = self.store.load(self.path)
        except StashError as exc:
            # The next save would replace the corrupt file: keep it aside for inspection.
            kept = self.path + ".corrupt"
            try:
                os.replace(self.path, kept)
            except OSError:
                kept = "not kept"
            self.log.error("Cannot load the stash from %s (%s; %s): starting empty",
                           self.path, exc, kept)
            return 0
        except OSError as exc:
            self.log.error("Cannot read the stash file %s (%s): starting empty", self.path, exc)
            return 0
        self._saved_version = self.store.version
        if count:
            self.log.info("Loaded %d stash keys from %s", count, self.path)
        return count

    def tick(self, now: float) -> None:
        """Start a background save if ``interval`` elapsed since the last one and the tables
        changed. ``now`` is ``time.monotonic()``. Never blocks on the disk."""
        if self.interval <= 0 or now - self._last_save < self.interval:
            return
        if self._writer is not None and self._writer.is_alive():
            return  # a slow disk: the next tick tries again rather than queueing writes
        self._last_save = now
        version = self.store.version
        if version == self._saved_version:
            return
        try:
            data = persist.dumps(self.store, now)
        except StashError as exc:
            self.log.error("Cannot save the stash to %s: %s", self.path, exc)
            return
        self._writer = threading.Thread(target=self._write, args=(data, version),
                                        name="stash-saver", daemon=True)
        self._writer.start()

    def save_now(self) -> bool:
        """Save synchronously (graceful or quick stop); return whether the file was written.

        Waits for a background write in progress first, so the last write wins."""
        if self._writer is not None:
            self._writer.join()
        if self.store.version == self._saved_version:
            return True
        try:
            data = persist.dumps(self.store)
        except StashError as exc:
            self.log.error("Cannot save the stash to %s: %s", self.path, exc)
            return False
        self._write(data, self.store.version)
        return self._saved_version == self.store.version

    def _write(self, data: bytes, version: int) -> None:
        try:
            persist.write_atomic(self.path, data)
        except OSError as exc:
            self.log.error("Cannot write the stash file %s: %s", self.path, exc)
            return
        self._saved_version = version
