"""Start a real gunicorn server process on a free port, wait until it serves, stop it.

Shared by every integration test (style rule 23): no test copies this set-up.

    with GunicornServer(["-w", "2", "app:app"], cwd=apps_dir) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        ...
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_log("Booting worker", count=4)

Every wait is a poll with a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
APPS = TESTS / "apps"
VENV_BIN = Path(sys.executable).parent
GUNICORN = [sys.executable, "-m", "gunicorn"]


def plugin_installed(name: str) -> bool:
    """Whether the plugin ``name`` is registered (tests/integration/test_core_alone.py runs the
    core's tests where none is)."""
    from importlib.metadata import entry_points

    return any(ep.name == name for ep in entry_points(group="gunicorn.plugins"))


def needs_plugin(name: str) -> pytest.MarkDecorator:
    """Mark a core test that exercises the plugin ``name``: skipped where it is not installed."""
    return pytest.mark.skipif(not plugin_installed(name),
                              reason=f"needs the {name} plugin (gunicorn-{name})")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):  # it vanished meanwhile
        return False
    return state != "Z"


class GunicornServer:
    """A gunicorn master process started with ``args`` (``-b`` is added unless given)."""

    def __init__(self, args: Sequence[str], cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, bind: str | None = None,
                 command: Sequence[str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.args = list(args)
        self.bind = bind
        if bind is None and "-b" not in self.args and "--bind" not in self.args:
            self.bind = f"{self.host}:{self.port}"
        self.cwd = str(cwd or APPS)
        self.command = list(command or GUNICORN)
        self.tmp = tempfile.TemporaryDirectory(prefix="gtest-")
        self.log_path = Path(self.tmp.name) / "server.log"
        self.env = dict(os.environ)
        self.env.pop("GUNICORN_CMD_ARGS", None)
        self.env.pop("WEB_CONCURRENCY", None)
        self.env.pop("PORT", None)
        self.env["PYTHONPATH"] = os.pathsep.join([str(APPS), self.cwd])
        self.env["XDG_RUNTIME_DIR"] = self.tmp.name
        self.env["TMPDIR"] = self.tmp.name
        self.env["PYTHONUNBUFFERED"] = "1"
        if env:
            self.env.update(env)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: bool = True, timeout: float = 20.0) -> GunicornServer:
        argv = self.command + (["-b", self.bind] if self.bind else []) + self.args
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the TCP port accepts connections (fails early if the master exited)."""
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(ready, timeout, message=f"server on port {self.port}\n{self.log()}")

    def wait_workers(self, count: int, timeout: float = 20.0) -> list[int]:
        """Wait until the master has exactly ``count`` worker children that have booted."""
        return wait_until(lambda: len(self.worker_pids()) == count and self.worker_pids(),
                          timeout, message=f"{count} workers") or []

    def worker_pids(self) -> list[int]:
        return [p for p in children_of(self.pid) if pid_alive(p)]

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Anything left in the session (orphans) is killed so tests never leak processes.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> GunicornServer:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.tmp.cleanup()

    # -- log ----------------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 20.0) -> list[str]:
        """Wait until ``pattern`` (a regex) matches at least ``count`` times in the server log."""
        rx = re.compile(pattern)
        def found() -> list[str]:
            hits = rx.findall(self.log())
            return hits if len(hits) >= count else []
        return wait_until(found, timeout, message=f"{count}x /{pattern}/ in log:\n{self.log()}")


def run_gunicorn(args: Sequence[str], cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 30.0
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``gunicorn ARGS`` to completion (for --version, --check-config, bad settings)."""
    full_env = dict(os.environ)
    full_env.pop("GUNICORN_CMD_ARGS", None)
    full_env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(cwd or APPS)])
    if env:
        full_env.update(env)
    return subprocess.run(GUNICORN + list(args), cwd=str(cwd or APPS), env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def server(args: Sequence[str], **kwargs: object) -> Iterator[GunicornServer]:
    with GunicornServer(args, **kwargs) as srv:  # type: ignore[arg-type]
        yield srv
