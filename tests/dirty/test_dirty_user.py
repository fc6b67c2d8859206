"""``--user``/``--group``: a root master whose dirty pool runs as the workers' user.

The master runs as root, as with gunicorn; the HTTP workers, the dirty arbiter and the dirty
workers run as ``nobody:nogroup``. The socket directory and the socket belong to that user
(0700/0600), so the HTTP workers reach the arbiter and nobody else does.

A root master's children keep its interpreter: its standard library must be readable by
``nobody``. When the test interpreter lives where ``nobody`` cannot read (a pyenv under
``/root``), the servers run on the system Python of the same version with our paths instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ECHO, DirtyServer, descendants
from harness import APPS, wait_until
from privileges import AS_NOBODY, NOBODY, can_drop_privileges
from test_peer_credentials import CLIENT  # prints "answered 42" or "refused <why>"

STRANGER = 65533  # no passwd entry needed: setpriv takes the number
AS_STRANGER = ["setpriv", f"--reuid={STRANGER}", f"--regid={STRANGER}", "--clear-groups"]

pytestmark = pytest.mark.skipif(
    not can_drop_privileges(),
    reason="needs root, setpriv and the nobody user (65534) to drop privileges")


@pytest.fixture(scope="module")
def python(python_for_nobody: tuple[str, str]) -> tuple[str, str]:
    return python_for_nobody


@contextlib.contextmanager
def user_server(python: tuple[str, str], *args: str, tmp_mode: int = 0o1777,
                booted: int = 1, control: bool = False) -> Iterator[DirtyServer]:
    """A root master with ``--user nobody --group nogroup``; its TMPDIR has ``tmp_mode``
    (1777 like /tmp by default); with ``control`` its control socket is ``TMPDIR/run/ctl``."""
    interpreter, extra = python
    server = DirtyServer(
        ["-w", "1", "-k", "gthread", "--threads", "4", "--user", "nobody", "--group",
         "nogroup", *args, "dirty_http:app"],
        command=[interpreter, "-m", "gunicorn"],
        env={"PYTHONPATH": os.pathsep.join(p for p in (str(APPS), extra) if p)})
    server.args[:0] = (["--control-socket", f"{server.tmp.name}/run/ctl"] if control
                       else ["--no-control-socket"])
    os.chmod(server.tmp.name, tmp_mode)
    try:
        server.start()
        if booted:
            server.booted(booted)
        yield server
    finally:
        server.stop()
        server.tmp.cleanup()


def get(server: DirtyServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ids(pid: int) -> dict[str, list[int]]:
    """The Uid and Gid lines of /proc/<pid>/status."""
    out: dict[str, list[int]] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid"):
            out[key] = [int(v) for v in value.split()]
    return out


def call_as(python: tuple[str, str], user: list[str], socket_path: str) -> str:
    interpreter, extra = python
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(APPS), extra) if p)}
    result = subprocess.run([*user, interpreter, "-c", CLIENT, socket_path, ECHO],
                            capture_output=True, text=True, timeout=30, cwd=str(APPS), env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory in the system's temporary directory, which nobody can enter (pytest's
    ``tmp_path`` is under a root-only 0700 directory)."""
    path = tempfile.mkdtemp(prefix="gtest-user-")
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path)


@pytest.fixture(scope="module")
def server(python: tuple[str, str]) -> Iterator[DirtyServer]:
    with user_server(python, "--dirty-app", ECHO, "--dirty-workers", "2", booted=2) as srv:
        yield srv


def test_an_http_worker_running_as_the_user_calls_the_dirty_pool(server):
    assert get(server, f"/call?app={ECHO}&action=echo&args=[42]") == (200, {"result": 42})
    worker_pid = get(server, f"/call?app={ECHO}&action=pid")[1]["result"]
    assert ids(worker_pid)["Uid"] == [NOBODY] * 4


def test_the_dirty_arbiter_and_its_workers_run_as_the_user_and_group(server):
    arbiter = server.arbiter_pid()
    workers = [w["pid"] for w in server.status()["workers"]]
    assert len(workers) == 2 and set(workers) <= set(descendants(arbiter))
    for pid in (arbiter, *workers):
        assert ids(pid)["Uid"] == [NOBODY] * 4, pid  # real, effective, saved, filesystem
        assert ids(pid)["Gid"] == [NOBODY] * 4, pid
    assert ids(server.pid)["Uid"][1] == 0  # the master keeps root


def test_the_socket_directory_and_socket_belong_to_the_user_and_are_private(server):
    path = server.socket_path()
    directory = os.stat(os.path.dirname(path))
    assert (directory.st_uid, directory.st_gid) == (NOBODY, NOBODY)
    assert stat.S_IMODE(directory.st_mode) == 0o700
    sock = os.stat(path)
    assert stat.S_ISSOCK(sock.st_mode)
    assert (sock.st_uid, sock.st_gid) == (NOBODY, NOBODY)
    assert stat.S_IMODE(sock.st_mode) == 0o600


def test_only_root_and_the_workers_user_get_through(python, server):
    path = server.socket_path()
    assert call_as(python, AS_NOBODY, path) == "answered 42"
    refused = call_as(python, AS_STRANGER, path)
    assert refused.startswith("refused") and "Permission denied" in refused, refused


def test_another_uid_is_refused_by_the_arbiter_when_the_file_modes_let_it_in(python):
    with user_server(python, "--dirty-app", ECHO, "--dirty-workers", "1") as srv:
        path = srv.socket_path()
        # A careless chmod: the file system no longer keeps the stranger out, SO_PEERCRED does.
        os.chmod(os.path.dirname(path), 0o711)
        os.chmod(path, 0o666)
        refused = call_as(python, AS_STRANGER, path)
        assert refused.startswith("refused"), refused
        srv.wait_for_log(rf"Dirty arbiter: refusing a client running as uid {STRANGER} "
                         r"\(pid \d+\)")
        assert call_as(python, AS_NOBODY, path) == "answered 42"


def test_the_stash_file_is_written_and_read_back_as_the_user(python, open_dir):
    from gunicorn.dirty.stash import StashClient

    os.chmod(open_dir, 0o1777)
    stash_file = open_dir / "stash.bin"
    args = ("--dirty-app", ECHO, "--dirty-workers", "1", "--dirty-stash-file", str(stash_file))
    with user_server(python, *args) as srv:
        with StashClient(srv.socket_path(), timeout=5) as stash:
            stash.put("sessions", "u1", {"n": 1})
        assert srv.stop(signal.SIGTERM) == 0
    st = stash_file.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o600)
    with user_server(python, *args) as srv:
        srv.wait_for_log("Loaded 1 stash keys")
        with StashClient(srv.socket_path(), timeout=5) as stash:
            assert stash.get("sessions", "u1") == {"n": 1}


def test_a_stash_directory_the_user_cannot_write_is_named_at_start(python, open_dir):
    os.chmod(open_dir, 0o755)  # root's: the arbiter, as nobody, could never save there
    with user_server(python, "--dirty-app", ECHO, "--dirty-workers", "1",
                     "--dirty-stash-file", str(open_dir / "stash.bin")) as srv:
        srv.wait_for_log(r"dirty_stash_file: the dirty arbiter runs as uid 65534 \(nobody\) "
                         r"and cannot write in the directory of .*stash\.bin: the stash will "
                         r"not be saved")


def test_a_heartbeat_directory_the_user_cannot_write_is_one_clear_error(python, open_dir):
    os.chmod(open_dir, 0o755)  # the master (root) makes HTTP heartbeats here; nobody cannot
    with user_server(python, "--dirty-app", ECHO, "--dirty-workers", "1", "--worker-tmp-dir",
                     str(open_dir), booted=0) as srv:
        srv.wait_for_log(r"\[ERROR\] Dirty arbiter cannot start: it runs as uid 65534 "
                         r"\(nobody\) and cannot create its workers' heartbeat files in "
                         rf"{open_dir}; make worker_tmp_dir a directory uid 65534 \(nobody\) "
                         r"can write")
        assert "Traceback" not in srv.log()
        status, body = get(srv, f"/call?app={ECHO}&action=echo&args=[1]")
        assert status == 500 and body["error"] == "DirtyConnectionError"
        wait_until(lambda: "restarting in" in srv.log(), 10, message="a respawn with backoff")


def test_the_master_still_reaches_the_pool_through_its_control_socket(python):
    from apps.ctl_support import data, socket_of

    with user_server(python, "--dirty-app", ECHO, "--dirty-workers", "1", control=True) as srv:
        ctl = socket_of(srv)
        st = os.stat(ctl)  # served by the master only: it stays root's
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
        shown = data(ctl, "show dirty")
        assert shown["running"] is True and len(shown["workers"]) == 1
        data(ctl, "dirty add", ["1"])
        srv.booted(2)
