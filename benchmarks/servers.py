"""A server under benchmark: started from a shell command, probed until it answers, its CPU time
read from /proc, stopped with its whole process group.

The command is a bash string; ``{port}`` becomes a free loopback port (also ``$PORT``). It runs
in ``benchmarks/apps`` (on ``PYTHONPATH``) in a new session, with a private ``TMPDIR`` and
``XDG_RUNTIME_DIR`` so concurrent servers never share heartbeat files or control sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_cpu(session: int) -> dict[int, float]:
    """CPU seconds (user + system) of every live process in ``session``, by pid."""
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:  # exited while we looked
            continue
        # Fields after the command name (which may contain spaces) start at "state".
        fields = raw[raw.rindex(b")") + 2:].split()
        if int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
            found[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


class Server:
    """One server process group; use as a context manager."""

    def __init__(self, name: str, command: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.command = command.replace("{port}", str(self.port))
        self.scratch = tempfile.mkdtemp(prefix="bench-")
        self.log_path = Path(self.scratch) / "server.log"
        self.env = dict(os.environ, **(env or {}))
        self.env.update(PORT=str(self.port), TMPDIR=self.scratch, XDG_RUNTIME_DIR=self.scratch,
                        PYTHONPATH=str(APPS), PYTHONUNBUFFERED="1")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["bash", "-c", self.command], cwd=APPS, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def cpu(self) -> dict[int, float]:
        assert self.proc is not None
        return session_cpu(self.proc.pid)

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """TERM the process group, KILL what is left after ``grace`` seconds."""
        if self.proc is None:
            return
        group = self.proc.pid
        try:
            os.killpg(group, signal.SIGTERM)
            self.proc.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
