"""Helpers for the control-socket tests: start a server with a control socket, talk raw frames.

Core tests use these (not gunicorn.ctl) so they run with gunicorn-core alone.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

from gunicorn.control.codec import FrameDecoder, encode
from harness import APPS, GunicornServer

ARB_RUN = [sys.executable, str(APPS / "arb_run.py")]


def ctl_server(tmp_path: Path, *args: str, workers: int = 1, path: Path | None = None,
               **kwargs) -> GunicornServer:
    """A real `gunicorn` (sync worker, hello:app) with its control socket at ``path``."""
    sock = path or tmp_path / "run" / "gunicorn.ctl"
    return GunicornServer(["-w", str(workers), "--control-socket", str(sock), *args,
                           "hello:app"], **kwargs)


def plugin_server(tmp_path: Path, *args: str) -> GunicornServer:
    """arb_run.py (the arbiter without CLI) with the test plugin of ctl_plugins.py."""
    sock = tmp_path / "run" / "gunicorn.ctl"
    return GunicornServer(["--plugin", "ctl_plugins:CtlPlugin", f"control_socket={sock}",
                           *args], command=ARB_RUN, env={"ARB_MARK_DIR": str(tmp_path)})


def socket_of(srv: GunicornServer) -> str:
    """The control socket path given on the server's command line (waits until it is ready)."""
    args = srv.args
    if "--control-socket" in args:
        path = args[args.index("--control-socket") + 1]
    else:
        path = next(a.split("=", 1)[1] for a in args if a.startswith("control_socket="))
    srv.wait_for_log(f"Control socket listening at: {re.escape(path)}")
    return path


def connect(path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


def read_replies(sock: socket.socket, count: int) -> list[dict]:
    """``count`` reply objects, or fewer if the server closes the connection first."""
    decoder = FrameDecoder()
    replies: list[dict] = []
    while len(replies) < count:
        obj = decoder.next_object()
        if obj is not None:
            replies.append(obj)
            continue
        data = sock.recv(65536)
        if not data:
            break
        decoder.feed(data)
    return replies


def ask(path: str, command: str, args: list[str] | None = None, rid: int = 1) -> dict:
    """Send one request on a fresh connection and return the reply object."""
    with connect(path) as sock:
        sock.sendall(encode({"id": rid, "command": command, "args": args or []}))
        replies = read_replies(sock, 1)
    assert replies, f"no reply to {command!r}"
    return replies[0]


def data(path: str, command: str, args: list[str] | None = None) -> dict:
    reply = ask(path, command, args)
    assert reply["status"] == "ok", reply
    return reply["data"]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
