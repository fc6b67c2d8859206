"""Shared set-up for the dirty pool's process tests: a real gunicorn with a dirty arbiter."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import GunicornServer, pid_alive, wait_until  # noqa: E402

ECHO = "dirty_apps:EchoApp"


class DirtyServer(GunicornServer):
    """A GunicornServer that also knows its dirty arbiter's socket and STATUS."""

    def socket_path(self, timeout: float = 15.0) -> str:
        pattern = os.path.join(self.tmp.name, "gunicorn-dirty-*", "arbiter.sock")
        found = wait_until(lambda: glob.glob(pattern), timeout, message="dirty socket")
        return found[0]  # type: ignore[index]

    def client(self, timeout: float = 10.0):  # noqa: ANN201 -- DirtyClient, imported lazily
        from gunicorn.dirty import DirtyClient

        return DirtyClient(self.socket_path(), timeout=timeout)

    def status(self) -> dict:
        from gunicorn.dirty.codec import MessageType

        with contextlib.closing(self.client()) as client:
            return client.request(MessageType.STATUS, {})

    def booted(self, count: int, timeout: float = 15.0) -> dict:
        """Wait until ``count`` non-retiring workers have booted (and no others remain)."""
        def ready() -> dict | None:
            try:
                status = self.status()
            except Exception:  # noqa: BLE001 -- the arbiter may still be starting
                return None
            workers = status["workers"]
            live = [w for w in workers if w["booted"] and not w["retiring"]]
            return status if len(live) == count == len(workers) else None
        return wait_until(ready, timeout, message=f"{count} booted dirty workers")  # type: ignore[return-value]

    def arbiter_pid(self) -> int:
        return self.status()["arbiter_pid"]


@contextlib.contextmanager
def dirty_server(*args: str, app: str = "dirty_http:app", workers: int = 1,
                 env: dict[str, str] | None = None) -> Iterator[DirtyServer]:
    server = DirtyServer(["-w", "1", "-k", "gthread", "--threads", "4", "--no-control-socket",
                          *args, app], env=env)
    try:
        server.start()
        server.booted(workers)
        yield server
    finally:
        server.stop()
        server.tmp.cleanup()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, object]]:
    """(event, JSON data) pairs of a Server-Sent Events body, line by line."""
    event = "message"
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: "):])


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain leads to ``pid`` (Linux /proc)."""
    out: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in map(int, children):
            out.append(child)
            frontier.append(child)
    return [p for p in out if pid_alive(p)]


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[DirtyServer]:
    """One server for the read-only tests: two workers, EchoApp everywhere, limited apps."""
    with dirty_server("--dirty-app", ECHO, "--dirty-app", "dirty_apps:LimitedApp",
                      "--dirty-app", "dirty_apps:StreamApp", "--dirty-app",
                      "dirty_apps:BrokenInitApp", "--dirty-workers", "2", "--dirty-threads", "4",
                      workers=2) as server:
        yield server


# -- the stash on Redis ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One redis-server for the session (loopback port and Unix socket, no persistence); tests
    keep apart by using their own key prefix (``stash_prefix``)."""
    from redis_harness import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def stash_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses."""
    import uuid

    return f"t-{uuid.uuid4().hex[:12]}"
