"""Private directories and trusted files (gunicorn.private_dir), and pidfiles read through them.

"Another user" is the real ``nobody`` account: the tests run as root and chown to it.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest
from gunicorn.errors import UnsafePathError
from gunicorn.pidfile import Pidfile, ProcessStamp, read_pid
from gunicorn.private_dir import (
    check_trusted_dir,
    ensure_private_dir,
    make_private_tempdir,
    open_private_dir,
    read_trusted_file,
    write_file_atomic,
)

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")


def test_a_missing_private_dir_is_created_0700_with_its_parents_whatever_the_umask(tmp_path):
    path = tmp_path / "a" / "b"
    old = os.umask(0o777)
    try:
        ensure_private_dir(str(path))
    finally:
        os.umask(old)
    for p in (path, path.parent):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700


def test_an_existing_private_dir_is_accepted_and_left_as_is(tmp_path):
    path = tmp_path / "p"
    path.mkdir(0o700)
    fd = open_private_dir(str(path))
    try:
        assert os.fstat(fd).st_ino == path.stat().st_ino
    finally:
        os.close(fd)


def test_a_symlink_in_place_of_the_private_dir_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(0o700)
    (tmp_path / "p").symlink_to(target)
    with pytest.raises(UnsafePathError, match="is a symbolic link"):
        ensure_private_dir(str(tmp_path / "p"))


def test_a_file_in_place_of_the_private_dir_is_refused(tmp_path):
    (tmp_path / "p").write_text("")
    with pytest.raises(UnsafePathError, match="is not a directory"):
        ensure_private_dir(str(tmp_path / "p"))


@needs_root
def test_a_private_dir_owned_by_another_user_is_refused(tmp_path):
    path = tmp_path / "p"
    path.mkdir(0o700)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=r"owned by uid 65534 \(nobody\)"):
        ensure_private_dir(str(path))


@needs_root
def test_a_private_dir_made_for_another_owner_is_given_to_it_before_its_name_is_known(tmp_path):
    path = make_private_tempdir("gtest-owner-", owner=NOBODY, group=NOBODY, parent=str(tmp_path))
    assert os.path.dirname(path) == str(tmp_path)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o700)


@needs_root
def test_missing_private_dirs_made_for_another_owner_belong_to_it_parents_too(tmp_path):
    path = tmp_path / "a" / "b"
    ensure_private_dir(str(path), owner=NOBODY, group=NOBODY)
    for p in (path, path.parent):
        st = p.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o700)
    ensure_private_dir(str(path), owner=NOBODY)  # an existing one of that owner is accepted


@needs_root
def test_with_an_explicit_owner_a_directory_of_anyone_else_is_still_refused(tmp_path):
    path = tmp_path / "p"
    path.mkdir(0o700)
    os.chown(path, NOBODY - 1, NOBODY - 1)
    with pytest.raises(UnsafePathError,
                       match=r"owned by uid 65533, not by uid 65534 \(nobody\) or root"):
        ensure_private_dir(str(path), owner=NOBODY)
    os.chown(path, NOBODY, NOBODY)
    os.chmod(path, 0o750)
    with pytest.raises(UnsafePathError, match="must be 0700"):
        ensure_private_dir(str(path), owner=NOBODY)


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770], ids=["group-read", "other-read", "group-write"])
def test_a_private_dir_open_to_others_is_refused_not_chmodded(tmp_path, mode):
    path = tmp_path / "p"
    path.mkdir()
    os.chmod(path, mode)
    with pytest.raises(UnsafePathError, match="must be 0700"):
        ensure_private_dir(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_trusted_dir_may_be_readable_but_not_writable_by_others(tmp_path):
    path = tmp_path / "d"
    path.mkdir()
    os.chmod(path, 0o755)
    check_trusted_dir(str(path))
    os.chmod(path, 0o1777)
    with pytest.raises(UnsafePathError, match=r"writable by group and others \(mode 1777\)"):
        check_trusted_dir(str(path))


def test_read_trusted_file_refuses_a_symlink(tmp_path):
    (tmp_path / "real").write_text("1\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError, match="is a symbolic link"):
        read_trusted_file(str(tmp_path / "link"))


def test_read_trusted_file_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePathError, match="is not a regular file"):
        read_trusted_file(str(tmp_path / "fifo"))


@needs_root
def test_read_trusted_file_refuses_a_file_of_another_user(tmp_path):
    path = tmp_path / "f"
    path.write_text("1\n")
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="owned by uid 65534"):
        read_trusted_file(str(path))


def test_read_trusted_file_refuses_a_world_writable_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("1\n")
    os.chmod(path, 0o666)
    with pytest.raises(UnsafePathError, match="writable by group and others"):
        read_trusted_file(str(path))


def test_write_file_atomic_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep\n")
    (tmp_path / "f").symlink_to(target)
    write_file_atomic(str(tmp_path / "f"), b"new\n", 0o600)
    assert target.read_text() == "keep\n"
    assert not (tmp_path / "f").is_symlink()
    assert (tmp_path / "f").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "target"]


def test_a_process_stamp_matches_only_the_same_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stamp = ProcessStamp.of(proc.pid)
        assert stamp is not None and stamp.mismatch() is None
        assert ProcessStamp.decode(stamp.encode()) == stamp
        older = ProcessStamp(proc.pid, stamp.start_time - 1, stamp.boot_id)
        assert "is another process now" in (older.mismatch() or "")
        rebooted = ProcessStamp(proc.pid, stamp.start_time, "another-boot")
        assert "rebooted" in (rebooted.mismatch() or "")
    finally:
        proc.kill()
        proc.wait()
    assert stamp.mismatch() is not None  # dead (or a zombie until reaped): never matches


@pytest.mark.parametrize("data", [b"", b"12", b"1 2", b"x 1 b", b"0 1 b", b"1 2 b c"],
                         ids=["empty", "pid-only", "no-boot", "junk", "pid0", "extra"])
def test_a_malformed_stamp_is_none(data):
    assert ProcessStamp.decode(data) is None


@needs_root
def test_a_pidfile_of_another_user_naming_a_live_process_is_ignored_and_replaced(tmp_path, caplog):
    path = tmp_path / "app.pid"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(f"{other.pid}\n")
        os.chown(path, NOBODY, NOBODY)
        log = logging.getLogger("test.pidfile")
        with caplog.at_level(logging.WARNING, logger="test.pidfile"):
            Pidfile(str(path), log).create(os.getpid())
        assert read_pid(str(path)) == os.getpid()
        assert path.stat().st_uid == os.geteuid()
        assert f"Ignoring the pidfile {path}" in caplog.text
        assert "owned by uid 65534" in caplog.text
    finally:
        other.kill()
        other.wait()


def test_a_symlinked_pidfile_is_neither_believed_nor_written_through(tmp_path):
    target = tmp_path / "victim.pid"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        target.write_text(f"{other.pid}\n")
        (tmp_path / "app.pid").symlink_to(target)
        pidfile = Pidfile(str(tmp_path / "app.pid"))
        pidfile.create(os.getpid())
        assert target.read_text() == f"{other.pid}\n"
        assert read_pid(str(tmp_path / "app.pid")) == os.getpid()
        pidfile.unlink()
        assert not (tmp_path / "app.pid").exists() and target.exists()
    finally:
        other.kill()
        other.wait()
