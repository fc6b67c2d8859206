"""Helpers shared by the arbiter/signal/sidecar tests (start arb_run.py through the harness)."""

from __future__ import annotations

import http.client
import sys
from pathlib import Path

from harness import APPS, GunicornServer, wait_until

ARB_RUN = [sys.executable, str(APPS / "arb_run.py")]


def arb_server(args, tmp_path: Path, env=None, **kwargs) -> GunicornServer:
    """A master started through arb_run.py, with ARB_MARK_DIR pointing at ``tmp_path``."""
    full_env = {"ARB_MARK_DIR": str(tmp_path)}
    full_env.update(env or {})
    return GunicornServer(list(args), command=ARB_RUN, env=full_env, **kwargs)


def get(srv: GunicornServer, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def serving_pid(srv: GunicornServer) -> int:
    status, body = get(srv)
    assert status == 200, body
    return int(body.split()[0].split("=")[1])


def marks(tmp_path: Path, name: str) -> list[str]:
    try:
        return (tmp_path / name).read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []


def wait_marks(tmp_path: Path, name: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    return wait_until(lambda: len(marks(tmp_path, name)) >= count and marks(tmp_path, name),
                      timeout, message=f"{count} lines in {name}") or []
