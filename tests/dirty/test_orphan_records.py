"""A root master with a dirty pool never signals a process another user named in a file.

The victim and the planted files belong to a real second user (``nobody``, via setpriv); the
server's TMPDIR is world-writable and sticky, as ``/tmp`` is.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest
from conftest import ECHO, DirtyServer, descendants, kill_quietly
from gunicorn.arbiter.orphans import server_identity
from gunicorn.pidfile import ProcessStamp
from harness import children_of, pid_alive, wait_until

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
NAME = "orphantest"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv to act as a second user")


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], check=True, capture_output=True, text=True,
                          timeout=10)


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([*NOBODY, "sleep", "300"])
    wait_until(lambda: ProcessStamp.of(proc.pid) is not None and os.stat(
        f"/proc/{proc.pid}").st_uid != 0, 5, message="victim runs as nobody")
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def server() -> Iterator[DirtyServer]:
    srv = DirtyServer(["-w", "1", "-k", "gthread", "--no-control-socket", "--name", NAME,
                       "--dirty-app", ECHO, "--dirty-workers", "1", "dirty_http:app"])
    os.chmod(srv.tmp.name, 0o1777)  # TMPDIR is shared with other users, like /tmp
    try:
        yield srv
    finally:
        srv.stop()
        srv.tmp.cleanup()


def plant(path: str, text: str) -> None:
    as_nobody("sh", "-c", 'printf "%s\\n" "$1" > "$2"', "plant", text, path)


def test_a_pidfile_planted_where_the_dirty_pidfile_used_to_be_is_never_read(server, victim):
    # The name the pool's pidfile had: $TMPDIR/gunicorn-dirty-<name>-<hash>.pid.
    digest = hashlib.sha1("|".join([server.cwd, server.bind]).encode(),
                          usedforsecurity=False).hexdigest()[:10]
    planted = os.path.join(server.tmp.name, f"gunicorn-dirty-{NAME}-{digest}.pid")
    plant(planted, str(victim.pid))
    server.start()
    server.booted(1)
    assert victim.poll() is None
    assert "Killing orphaned" not in server.log()
    with server.client() as client:
        assert client.execute(ECHO, "echo", 1) == 1


def test_a_record_directory_made_by_another_user_is_refused(server, victim):
    # A perfect forgery: the victim's real stamp, under the exact record name, in a directory
    # nobody made where the server keeps its records.
    runtime = os.path.join(server.tmp.name, f"gunicorn-{os.geteuid()}")
    identity = server_identity(NAME, server.cwd, [server.bind])
    as_nobody("mkdir", "-m", "0700", runtime)
    stamp = ProcessStamp.of(victim.pid)
    assert stamp is not None
    plant(os.path.join(runtime, f"sidecar-{identity}-dirty.pid"), stamp.encode().decode().strip())
    server.start()
    server.booted(1)
    server.wait_for_log("Sidecar records disabled")
    assert f"{runtime} is owned by uid 65534 (nobody), not by this server's user" in server.log()
    assert "Killing orphaned" not in server.log()
    assert victim.poll() is None


def test_a_record_naming_a_process_that_is_not_our_sidecar_is_left_alone(server, victim):
    # The reused-pid case: a record of ours whose pid now names someone else's process.
    runtime = os.path.join(server.tmp.name, f"gunicorn-{os.geteuid()}")
    os.mkdir(runtime, 0o700)
    record = os.path.join(runtime, f"sidecar-{server_identity(NAME, server.cwd, [server.bind])}"
                                   "-dirty.pid")
    stamp = ProcessStamp.of(victim.pid)
    assert stamp is not None
    with open(record, "w") as fh:
        fh.write(f"{victim.pid} {stamp.start_time - 100} {stamp.boot_id}\n")
    os.chmod(record, 0o600)
    server.start()
    server.booted(1)
    server.wait_for_log(f"Not signalling pid {victim.pid} from the sidecar record {record}")
    assert f"pid {victim.pid} is another process now" in server.log()
    assert victim.poll() is None


def test_a_hung_dirty_arbiter_left_by_a_killed_master_is_stopped_at_the_next_start(server):
    server.start()
    server.booted(1)
    arbiter = server.arbiter_pid()
    pool = [arbiter, *descendants(arbiter)]
    os.kill(arbiter, signal.SIGSTOP)  # hung: it will not notice its master's death
    http_workers = [p for p in children_of(server.pid) if p != arbiter]
    os.kill(server.pid, signal.SIGKILL)
    for pid in http_workers:
        kill_quietly(pid)
    server.wait_exit(10)
    wait_until(lambda: not any(pid_alive(p) for p in http_workers), 10, message="HTTP workers")
    again = DirtyServer(list(server.args), env={"TMPDIR": server.tmp.name})
    again.port, again.bind = server.port, server.bind
    try:
        again.start()
        again.wait_for_log(rf"Killing orphaned sidecar dirty \(pid:{arbiter}\)")
        wait_until(lambda: not any(pid_alive(p) for p in pool), 10, message="old pool gone")
    finally:
        again.stop()
        again.tmp.cleanup()
        for pid in pool:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
