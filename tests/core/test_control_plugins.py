"""Plugin control commands (the control_commands hook), as gunicorn-dirty contributes them."""

from __future__ import annotations

import os
import threading
import time

from apps.arb_support import get
from apps.ctl_support import ask, connect, data, plugin_server, read_replies, socket_of
from gunicorn.control.codec import encode
from harness import wait_until


def test_plugin_commands_replace_the_dirty_placeholders(tmp_path):
    with plugin_server(tmp_path) as srv:
        path = socket_of(srv)
        dirty = data(path, "show dirty")
        assert dirty["enabled"] is True and dirty["workers"][0]["apps"] == ["app:Model"]
        assert data(path, "show all")["dirty"] == dirty
        assert data(path, "dirty add", ["3"]) == {"added": 3}
        assert data(path, "Stash GET", ["Users", "Bob"]) == {"table": "Users", "key": "Bob",
                                                             "value": "BOB"}
        commands = data(path, "help")["commands"]
        assert commands["stash get"] == "Read a key of a stash table."


def test_plugin_cannot_take_a_core_command(tmp_path):
    with plugin_server(tmp_path) as srv:
        path = socket_of(srv)
        assert data(path, "reload") == {"status": "reloading"}
        srv.wait_for_log("Control command 'reload' from a plugin ignored")


def test_plugin_errors_become_error_replies(tmp_path):
    with plugin_server(tmp_path) as srv:
        path = socket_of(srv)
        assert ask(path, "stash get", ["only-table"]) == {
            "id": 1, "status": "error", "error": "usage: stash get TABLE KEY"}
        reply = ask(path, "stash boom")
        assert reply["error"] == "stash boom failed: kaboom"
        assert "Traceback" not in reply["error"]
        srv.wait_for_log("RuntimeError: kaboom")  # the traceback goes to the log
        assert data(path, "show stats")["pid"] == srv.pid


def test_a_slow_plugin_command_does_not_block_the_master(tmp_path):
    with plugin_server(tmp_path) as srv:
        path = socket_of(srv)
        srv.wait_workers(1)
        slow_reply: list[dict] = []

        def slow() -> None:
            with connect(path, timeout=10) as sock:
                sock.sendall(encode({"id": 1, "command": "stash slow", "args": ["1.5"]}))
                slow_reply.extend(read_replies(sock, 1))

        thread = threading.Thread(target=slow)
        started = time.monotonic()
        thread.start()
        # The command thread exists in the master: the slow command is running.
        wait_until(lambda: len(os.listdir(f"/proc/{srv.pid}/task")) > 1, 5,
                   message="command thread")
        assert data(path, "show stats")["pid"] == srv.pid
        assert get(srv)[0] == 200
        assert time.monotonic() - started < 1.5  # answered while the slow one still runs
        thread.join(10)
        assert slow_reply == [{"id": 1, "status": "ok", "data": {"slept": True}}]
