"""``--user``/``--group``: who the workers become, and who may ask for it.

A root master started with supplementary groups (root's group 0 among them, as from a root
shell) must not pass them on to workers that switch user: without ``--initgroups`` a worker's
supplementary groups are none. A master that is not root cannot switch its workers to another
user: that is exit 2 naming the setting, before anything forks (not a traceback in a worker).
"""

from __future__ import annotations

import http.client
import os
import subprocess
from pathlib import Path

import pytest
from harness import APPS, GunicornServer, children_of, wait_until
from privileges import AS_NOBODY, NOBODY, can_drop_privileges

pytestmark = pytest.mark.skipif(
    not can_drop_privileges(),
    reason="needs root, setpriv and the nobody user (65534) to drop privileges")


@pytest.fixture(scope="module")
def python(python_for_nobody: tuple[str, str]) -> tuple[str, str]:
    return python_for_nobody


def _status(pid: int, key: str) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return [int(v) for v in value.split()]
    raise KeyError(key)


def _env(extra: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(APPS), extra) if p)}


def test_workers_that_switch_user_keep_no_supplementary_groups(python):
    interpreter, extra = python
    server = GunicornServer(["-w", "1", "--user", "nobody", "--group", "nogroup",
                             "--no-control-socket", "hello:app"],
                            command=["setpriv", "--groups=0,27", interpreter, "-m", "gunicorn"],
                            env=_env(extra))
    os.chmod(server.tmp.name, 0o1777)  # the worker (nobody) writes its heartbeat there
    with server:
        assert _status(server.pid, "Groups") == [0, 27]  # the master keeps what it was given
        worker = wait_until(lambda: children_of(server.pid), message="a worker")[0]
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        assert _status(worker, "Uid") == [NOBODY] * 4
        assert _status(worker, "Groups") == []


def test_a_master_that_is_not_root_cannot_switch_workers_to_another_user(python):
    interpreter, extra = python
    done = subprocess.run([*AS_NOBODY, interpreter, "-m", "gunicorn", "--user", "root",
                           "--no-control-socket", "hello:app"], cwd=str(APPS),
                          env={**os.environ, **_env(extra)}, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "user" in lines[0] and "root" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
