"""``--reload``: watch the application's source files and call back when one changes.

A reloader is a daemon thread in each worker. It watches the files of every imported module
(including modules imported after it started) plus ``reload_extra_files``, whose glob patterns
(``*``, ``?``, ``[...]`` and recursive ``**``) are expanded again on every check so that files
created later are watched too. On a change it calls ``callback(path)``; the worker then exits
and the arbiter starts a fresh one.

Engines (``reload_engine``):

* ``poll`` -- stat every watched file once a second;
* ``inotify`` -- kernel events on the watched files' directories (needs ``inotify_simple``);
* ``auto`` -- inotify when ``inotify_simple`` is importable, else poll.

What counts as a change: a watched file whose mtime, size or inode changed (editors that save by
renaming change the inode), a watched file that disappeared, and a new file matching an extra
pattern. A module imported after start is only recorded, not reported.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import select
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

Callback = Callable[[str], Any]
_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in pattern)


def module_files() -> set[str]:
    """Absolute source paths of every loaded module (``.pyc`` mapped back to ``.py``)."""
    found: set[str] = set()
    for module in tuple(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        found.add(os.path.abspath(path))
    return found


def _fixed_dir(pattern: str) -> str:
    """``/srv/app/templates/**/*.html`` -> ``/srv/app/templates``."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if is_glob(part):
            return os.sep.join(parts[:i]) or os.sep
    return os.path.dirname(pattern)


def inotify_available() -> bool:
    try:
        import inotify_simple  # noqa: F401
    except ImportError:
        return False
    return sys.platform.startswith("linux")


class Reloader:
    """Base of the engines: the file set, the thread, start()/stop().

    Args:
        extra_files: ``reload_extra_files``: paths and glob patterns.
        callback: called with the changed path, from the reloader thread.
        log: where warnings go (a gunicorn Logger or a stdlib logger); default ``gunicorn.error``.
    """

    def __init__(self, extra_files: Iterable[str], callback: Callback, log: Any = None) -> None:
        self._callback = callback
        self._log = log if log is not None else logging.getLogger("gunicorn.error")
        self._extra_files: set[str] = set()
        self._patterns: set[str] = set()
        for entry in extra_files or ():
            self.add_extra_file(entry)
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_extra_file(self, path: str) -> None:
        """Watch ``path`` too (a glob pattern is allowed), e.g. a file with a SyntaxError."""
        target = self._patterns if is_glob(path) else self._extra_files
        target.add(os.path.abspath(path))

    def extra_files(self) -> set[str]:
        """The extra files and the current expansion of the patterns (warns once per empty one)."""
        found = set(self._extra_files)
        for pattern in self._patterns:
            matches = glob.glob(pattern, recursive=True)
            if not matches and pattern not in self._warned:
                self._warned.add(pattern)
                self._log.warning("reload: pattern %r matches no file", pattern)
            found.update(matches)
        return found

    def watched_files(self) -> set[str]:
        return module_files() | self.extra_files()

    def start(self) -> None:
        """Start the watcher thread (a daemon: it never keeps the worker alive)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded_run, name="gunicorn-reloader",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _wake(self) -> None:
        """Interrupt a blocking wait (engines with one override this)."""

    def _guarded_run(self) -> None:
        try:
            self.run()
        except (OSError, ValueError):
            # stat/select/inotify on a vanished file or a descriptor closed under us: without
            # this log line reloading would end silently for this worker. (The callback's user
            # hook is guarded by the worker, so only our own I/O can fail here.)
            self._log.exception("reloader stopped")

    def run(self) -> None:
        raise NotImplementedError

    def _changed(self, path: str) -> None:
        self._callback(path)


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class PollReloader(Reloader):
    """Stat every watched file each ``interval`` seconds."""

    def __init__(self, extra_files: Iterable[str], callback: Callback, log: Any = None,
                 interval: float = 1.0) -> None:
        super().__init__(extra_files, callback, log)
        self.interval = interval
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._extra_seen: set[str] = set()

    def start(self) -> None:
        # The baseline is taken before start() returns, so an edit made right after is caught.
        self.check()
        super().start()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def check(self) -> list[str]:
        """Compare every watched file with the previous check; report and return the changes."""
        extras = self.extra_files()
        current = module_files() | extras
        first = not self._seen
        changed: list[str] = []
        for path in current:
            sig = _signature(path)
            if path not in self._seen:
                self._seen[path] = sig
                if not first and path in extras and path not in self._extra_seen and sig:
                    changed.append(path)  # a new file matching an extra pattern
            elif sig != self._seen[path]:
                self._seen[path] = sig
                changed.append(path)
        for path in list(self._seen):
            if path not in current:
                # Gone from the set (file deleted, pattern no longer matches): a change if the
                # file existed before.
                if self._seen.pop(path) is not None:
                    changed.append(path)
        self._extra_seen = extras
        for path in sorted(changed):
            self._changed(path)
        return changed


class InotifyReloader(Reloader):
    """Watch the directories of the watched files with inotify (``inotify_simple``)."""

    def __init__(self, extra_files: Iterable[str], callback: Callback, log: Any = None,
                 refresh: float = 1.0) -> None:
        from inotify_simple import INotify, flags

        super().__init__(extra_files, callback, log)
        self._inotify = INotify()
        self._mask = (flags.CREATE | flags.DELETE | flags.DELETE_SELF | flags.MODIFY
                      | flags.MOVE_SELF | flags.MOVED_FROM | flags.MOVED_TO | flags.CLOSE_WRITE
                      | flags.ATTRIB)
        self._ignored = flags.IGNORED
        self._dirs: dict[int, str] = {}
        self._refresh = refresh
        self._wake_r, self._wake_w = os.pipe()
        self._files: set[str] = set()
        self._extras: set[str] = set()

    def start(self) -> None:
        self._refresh_watches()
        super().start()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")

    def _refresh_watches(self) -> set[str]:
        """Pick up newly imported modules and new pattern matches and watch their directories.

        Returns the extra files that appeared since the last refresh: in a directory that was
        not watched yet (a new ``**`` subdirectory) no event could report them.
        """
        extras = self.extra_files()
        appeared = extras - self._extras if self._files else set()
        self._extras = extras
        self._files = module_files() | extras
        wanted = {os.path.dirname(p) for p in self._files}
        wanted.update(os.path.dirname(os.path.realpath(p)) for p in self._files
                      if os.path.islink(p))
        # The fixed leading directory of each pattern, so a first match created later is seen.
        wanted.update(_fixed_dir(p) for p in self._patterns)
        known = set(self._dirs.values())
        for directory in wanted - known:
            if not os.path.isdir(directory):
                continue
            try:
                wd = self._inotify.add_watch(directory, self._mask)
            except OSError as exc:
                self._log.debug("reload: cannot watch %s: %s", directory, exc)
                continue
            self._dirs[wd] = directory
        return appeared

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._inotify, self._wake_r], [], [], self._refresh)
                if self._stop.is_set():
                    break
                reported: set[str] = set()
                if self._inotify in ready:
                    reported = self._dispatch(self._inotify.read(timeout=0))
                for path in sorted(self._refresh_watches() - reported):
                    self._changed(path)
        finally:
            self._inotify.close()

    def stop(self, timeout: float = 5.0) -> None:
        thread = self._thread
        super().stop(timeout)
        # The wake pipe is closed only once the thread is gone: closing it earlier could let
        # the descriptor number be reused by another file while _wake() still writes to it.
        if (thread is None or not thread.is_alive()) and self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _dispatch(self, events: Iterable[Any]) -> set[str]:
        reported: set[str] = set()
        patterns = list(self._patterns)
        for event in events:
            directory = self._dirs.get(event.wd)
            if directory is None:
                continue
            if event.mask & self._ignored:  # the directory went away; a refresh re-adds it
                del self._dirs[event.wd]
                continue
            path = os.path.join(directory, event.name) if event.name else directory
            interesting = path in self._files or any(fnmatch.fnmatch(path, p) for p in patterns)
            if interesting and path not in reported:
                reported.add(path)
                self._changed(path)
        return reported


def make_reloader(cfg: CoreSettings, callback: Callback, log: Any = None) -> Reloader:
    """The reloader ``cfg.reload_engine`` asks for, watching ``cfg.reload_extra_files``.

    ``auto`` picks inotify when ``inotify_simple`` is importable, else poll. Raises
    RuntimeError when ``inotify`` is asked for and not available.
    """
    engine = cfg.reload_engine
    extra = list(cfg.reload_extra_files)
    if engine == "inotify" and not inotify_available():
        raise RuntimeError("reload_engine 'inotify' needs the inotify_simple package "
                           "(pip install gunicorn-core[inotify])")
    if engine == "inotify" or (engine == "auto" and inotify_available()):
        return InotifyReloader(extra, callback, log)
    return PollReloader(extra, callback, log)
