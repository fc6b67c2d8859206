"""--reload: the poll and inotify engines on real files under tmp_path."""

import importlib
import logging
import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from gunicorn.reloader import (
    InotifyReloader,
    PollReloader,
    inotify_available,
    make_reloader,
)
from harness import wait_until

needs_inotify = pytest.mark.skipif(not inotify_available(), reason="inotify_simple not installed")


class Changes:
    """The callback: records the paths it was called with (from the reloader thread)."""

    def __init__(self):
        self.paths = []
        self._lock = threading.Lock()

    def __call__(self, path):
        with self._lock:
            self.paths.append(path)

    def seen(self, path):
        with self._lock:
            return str(path) in self.paths


def touch(path):
    """Move the mtime one second ahead: no reliance on the filesystem's timestamp granularity."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def make_engine(engine, extra, changes):
    if engine == "poll":
        return PollReloader(extra, changes, interval=0.05)
    return InotifyReloader(extra, changes, refresh=0.1)


ENGINES = [pytest.param("poll"), pytest.param("inotify", marks=needs_inotify)]


@pytest.fixture
def reloader_factory():
    started = []

    def start(engine, extra, changes):
        reloader = make_engine(engine, [str(p) for p in extra], changes)
        reloader.start()
        started.append(reloader)
        return reloader

    yield start
    for reloader in started:
        reloader.stop()


@pytest.mark.parametrize("engine", ENGINES)
def test_touched_extra_file_is_reported(tmp_path, reloader_factory, engine):
    watched = tmp_path / "settings.toml"
    watched.write_text("a = 1\n")
    changes = Changes()
    reloader_factory(engine, [watched], changes)
    touch(watched)
    wait_until(lambda: changes.seen(watched), timeout=5, message=f"{engine} reload of {watched}")


@pytest.mark.parametrize("engine", ENGINES)
def test_rewritten_file_is_reported(tmp_path, reloader_factory, engine):
    watched = tmp_path / "conf.ini"
    watched.write_text("x")
    changes = Changes()
    reloader_factory(engine, [watched], changes)
    # Editors save by writing a new file and renaming it over the old one.
    (tmp_path / "conf.ini.swp").write_text("xy")
    os.replace(tmp_path / "conf.ini.swp", watched)
    wait_until(lambda: changes.seen(watched), timeout=5, message="rename-over reported")
    assert not changes.seen(tmp_path / "conf.ini.swp")


@pytest.mark.parametrize("engine", ENGINES)
def test_recursive_glob_pattern(tmp_path, reloader_factory, engine):
    (tmp_path / "templates" / "deep").mkdir(parents=True)
    old = tmp_path / "templates" / "deep" / "page.html"
    old.write_text("<p>")
    (tmp_path / "templates" / "notes.txt").write_text("ignored")
    changes = Changes()
    reloader_factory(engine, [tmp_path / "templates" / "**" / "*.html"], changes)
    touch(tmp_path / "templates" / "notes.txt")
    touch(old)
    wait_until(lambda: changes.seen(old), timeout=5, message="glob match reported")
    # The pattern is expanded again on every check: a file created later is watched too.
    new = tmp_path / "templates" / "deep" / "new.html"
    new.write_text("<b>")
    wait_until(lambda: changes.seen(new), timeout=5, message="new glob match reported")
    assert not changes.seen(tmp_path / "templates" / "notes.txt")


@pytest.mark.parametrize("engine", ENGINES)
def test_imported_module_is_watched(tmp_path, reloader_factory, engine, monkeypatch):
    module = tmp_path / "reload_target_mod.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    changes = Changes()
    reloader_factory(engine, [], changes)
    # Imported after the reloader started: it is picked up on a later check.
    importlib.import_module("reload_target_mod")
    try:
        def edited_and_seen():
            touch(module)
            return changes.seen(module)
        wait_until(edited_and_seen, timeout=5, interval=0.2, message="module change reported")
    finally:
        sys.modules.pop("reload_target_mod", None)


def test_pattern_matching_nothing_only_warns(tmp_path, caplog):
    log = logging.getLogger("test.reloader")
    with caplog.at_level(logging.WARNING, logger="test.reloader"):
        reloader = PollReloader([str(tmp_path / "*.nothing")], Changes(), log=log, interval=0.05)
        reloader.start()
        try:
            wait_until(lambda: "matches no file" in caplog.text, timeout=5, message="warning")
            time.sleep(0.2)  # several more checks: the warning is not repeated
        finally:
            reloader.stop()
    assert caplog.text.count("matches no file") == 1


def test_poll_check_reports_deleted_and_unchanged_files(tmp_path):
    a, b = tmp_path / "a.cfg", tmp_path / "b.cfg"
    a.write_text("1")
    b.write_text("2")
    changes = Changes()
    reloader = PollReloader([str(a), str(b)], changes)
    assert reloader.check() == []  # the first check only takes the baseline
    assert reloader.check() == []
    b.unlink()
    assert reloader.check() == [str(b)]
    assert reloader.check() == []


@pytest.mark.parametrize("engine", ENGINES)
def test_stop_is_prompt(tmp_path, engine):
    reloader = make_engine(engine, [], Changes())
    if engine == "poll":
        reloader.interval = 30.0
    reloader.start()
    started = time.monotonic()
    reloader.stop()
    assert time.monotonic() - started < 2


def cfg(engine, extra=()):
    return SimpleNamespace(reload_engine=engine, reload_extra_files=list(extra))


def test_make_reloader_poll():
    assert isinstance(make_reloader(cfg("poll"), Changes()), PollReloader)


@needs_inotify
@pytest.mark.parametrize("engine", ["auto", "inotify"])
def test_make_reloader_prefers_inotify(engine):
    reloader = make_reloader(cfg(engine), Changes())
    assert isinstance(reloader, InotifyReloader)
    reloader.stop()


def test_make_reloader_auto_falls_back_to_poll(monkeypatch):
    monkeypatch.setitem(sys.modules, "inotify_simple", None)  # import now raises ImportError
    assert isinstance(make_reloader(cfg("auto"), Changes()), PollReloader)
    with pytest.raises(RuntimeError, match="inotify_simple"):
        make_reloader(cfg("inotify"), Changes())


def test_make_reloader_reads_extra_files_from_the_real_config(tmp_path):
    from gunicorn.config import Config

    config = Config()
    config.set("reload_engine", "poll")
    config.set("reload_extra_files", [str(tmp_path / "x.txt")])
    reloader = make_reloader(config, Changes())
    assert str(tmp_path / "x.txt") in reloader.extra_files()
