"""The master notices a hung dirty arbiter (not only a dead one) and replaces it."""

from __future__ import annotations

import os
import signal

from conftest import ECHO, descendants, dirty_server
from harness import pid_alive, wait_until


def test_a_frozen_dirty_arbiter_is_killed_and_replaced_and_calls_work_again():
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1", "--timeout", "2") as server:
        hung = server.arbiter_pid()
        pool = [hung, *descendants(hung)]
        os.kill(hung, signal.SIGSTOP)  # its asyncio loop is frozen: alive, no heartbeat
        server.wait_for_log(rf"SIDECAR TIMEOUT: dirty \(pid:{hung}\) silent for")
        server.wait_for_log(rf"Sidecar dirty \(pid:{hung}\) was killed by SIGKILL; restarting")
        wait_until(lambda: not any(pid_alive(p) for p in pool), 10, message="old pool gone")
        status = server.booted(1)
        assert status["arbiter_pid"] != hung
        with server.client() as client:
            assert client.execute(ECHO, "echo", "back") == "back"
