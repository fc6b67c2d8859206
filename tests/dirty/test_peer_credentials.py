"""The dirty arbiter obeys only the server's own users (SO_PEERCRED), whatever the file mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ECHO, dirty_server
from harness import APPS

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv to act as a second user")

CLIENT = """
import sys
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.errors import DirtyConnectionError
try:
    with DirtyClient(sys.argv[1], timeout=5) as client:
        print("answered", client.execute(sys.argv[2], "echo", 42))
except DirtyConnectionError as exc:
    print("refused", exc)
"""


def call_as(user: list[str], socket_path: str) -> str:
    result = subprocess.run([*user, sys.executable, "-c", CLIENT, socket_path, ECHO],
                            capture_output=True, text=True, timeout=20, cwd=str(APPS),
                            env={**os.environ, "PYTHONPATH": str(APPS)})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_client_of_another_uid_is_refused_even_when_the_file_mode_lets_it_in():
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as server:
        path = server.socket_path()
        # A loose umask or a careless chmod: the file system no longer keeps others out.
        os.chmod(server.tmp.name, 0o711)
        os.chmod(os.path.dirname(path), 0o711)
        os.chmod(path, 0o666)
        out = call_as(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"], path)
        assert out.startswith("refused"), out
        server.wait_for_log(r"Dirty arbiter: refusing a client running as uid 65534 \(pid \d+\)")
        assert call_as([], path) == "answered 42"  # our own uid is served as before
