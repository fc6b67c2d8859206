"""gunictl and ControlClient against a real server: CliRunner, the installed script, the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from apps.ctl_support import ctl_server, plugin_server, socket_of
from click.testing import CliRunner
from gunicorn.ctl import (
    ControlClient,
    ControlCommandError,
    ControlConnectionError,
    ControlError,
    socket_path,
)
from gunicorn.ctl.cli import cli, complete_command
from harness import pid_alive, wait_until

GUNICTL = str(Path(sys.executable).parent / "gunictl")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ctl")
    with ctl_server(tmp) as srv:
        socket_of(srv)
        srv.wait_workers(1)
        yield srv


@pytest.fixture(scope="module")
def sock(server):
    return socket_of(server)


def run(sock: str, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["-s", sock, *args], input=input)


@pytest.mark.parametrize("words,expect", [
    (["show", "workers"], "BOOTED"), (["show", "all"], "arbiter:"),
    (["show", "dirty"], "enabled: no"), (["show", "config"], "workers: 1"),
    (["show", "stats"], "workers_spawned:"), (["show", "listeners"], "ADDRESS"),
    (["help"], "worker kill PID"), (["reopen"], "status: reopening"),
], ids=lambda v: "-".join(v) if isinstance(v, list) else None)
def test_read_only_commands_print_tables(sock, words, expect):
    result = run(sock, *words)
    assert result.exit_code == 0, result.output
    assert expect in result.output


def test_json_output_is_the_reply_data(server, sock):
    result = run(sock, "show", "workers", "--json")
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert body["workers"][0]["pid"] in server.worker_pids() and body["count"] == 1
    dirty = json.loads(run(sock, "--json", "show", "dirty").output)
    assert dirty == {"enabled": False, "workers": []}


def test_server_error_exits_1(sock):
    result = run(sock, "frobnicate")
    assert result.exit_code == 1
    assert "unknown command: frobnicate" in result.output
    assert "Traceback" not in result.output
    assert run(sock, "dirty", "add").exit_code == 1


def test_usage_error_exits_2(sock):
    assert run(sock, "--timeout", "soon", "help").exit_code == 2
    assert run(sock, "--bogus").exit_code == 2


def test_missing_socket_exits_3_naming_path_and_setting(tmp_path):
    missing = str(tmp_path / "nope.ctl")
    result = CliRunner().invoke(cli, ["-s", missing, "show", "workers"])
    assert result.exit_code == 3
    assert missing in result.output and "control_socket" in result.output
    assert "Traceback" not in result.output


def test_installed_script(sock, tmp_path):
    ok = subprocess.run([GUNICTL, "-s", sock, "show", "stats", "--json"], capture_output=True,
                        text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["workers_spawned"] >= 1
    bad = subprocess.run([GUNICTL, "-s", sock, "nope"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: unknown command: nope")
    gone = subprocess.run([GUNICTL, "-s", str(tmp_path / "x.ctl"), "help"],
                          capture_output=True, text=True, timeout=30)
    assert gone.returncode == 3 and "Traceback" not in gone.stderr
    env = dict(os.environ, GUNICORN_CONTROL_SOCKET=sock)
    by_env = subprocess.run([GUNICTL, "help"], capture_output=True, text=True, timeout=30,
                            env=env)
    assert by_env.returncode == 0 and "show workers" in by_env.stdout


def test_interactive_prompt(sock):
    result = run(sock, input="help\nshow stats\nbogus\n\nquit\nshow stats\n")
    assert result.exit_code == 0, result.output
    assert f"Connected to {sock}" in result.output
    assert "worker kill PID" in result.output and "unknown command: bogus" in result.output
    assert result.output.count("workers_spawned") == 1  # nothing after quit
    assert run(sock, input="show workers\n").exit_code == 0  # EOF leaves too


def test_interactive_prompt_without_server_exits_3(tmp_path):
    assert run(str(tmp_path / "none.ctl"), input="help\n").exit_code == 3


def test_completion_offers_the_next_word(sock):
    ctx = cli.make_context("gunictl", ["-s", sock, "worker"], resilient_parsing=True)
    assert [c.value for c in complete_command(ctx, None, "")] == ["add", "kill", "remove"]
    ctx = cli.make_context("gunictl", ["-s", sock], resilient_parsing=True)
    assert [c.value for c in complete_command(ctx, None, "sh")] == ["show", "shutdown"]


def test_client_api(server, sock):
    with ControlClient(sock, timeout=5) as client:
        workers = client.send("show workers")["workers"]
        assert workers[0]["booted"] is True
        stats = client.send("show stats")  # same connection, next request id
        assert stats["pid"] == server.pid
        with pytest.raises(ControlCommandError, match="unknown command: x"):
            client.send("x")
        assert client.send("help")["commands"]  # still usable after an error reply
    with pytest.raises(ControlConnectionError) as info:
        ControlClient("/nonexistent/gunicorn.ctl").send("help")
    assert info.value.path == "/nonexistent/gunicorn.ctl"
    assert issubclass(ControlConnectionError, ControlError)


def test_socket_path_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/run/app.ctl")
    assert socket_path() == "/run/app.ctl"
    assert socket_path("rel.ctl") == os.path.abspath("rel.ctl")
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert socket_path() == str(tmp_path / "gunicorn.ctl")


def test_scaling_reload_and_shutdown_through_gunictl(tmp_path):
    with ctl_server(tmp_path) as srv:
        path = socket_of(srv)
        first = srv.wait_workers(1)[0]
        assert run(path, "worker", "add", "2").exit_code == 0
        pids = srv.wait_workers(3)
        assert run(path, "worker", "remove", "2").exit_code == 0
        survivor = srv.wait_workers(1)[0]
        result = run(path, "worker", "kill", str(survivor))
        assert result.exit_code == 0 and f"killed: {survivor}" in result.output
        wait_until(lambda: not pid_alive(survivor), 10, message="kill")
        assert first in pids
        assert run(path, "reload").exit_code == 0
        srv.wait_for_log("Handling signal: hup")
        assert run(path, "shutdown", "quick").exit_code == 0
        assert srv.wait_exit(15) == 0


def test_dirty_and_plugin_commands_through_gunictl(tmp_path):
    with plugin_server(tmp_path) as srv:
        path = socket_of(srv)
        dirty = json.loads(run(path, "--json", "show", "dirty").output)
        assert dirty["workers"][0]["pid"] == 4243 and dirty["workers"][0]["apps"]
        table = run(path, "show", "dirty").output
        assert "IN FLIGHT" in table and "app:Model" in table
        got = run(path, "stash", "get", "t", "key with space")
        assert got.exit_code == 0 and "value: KEY WITH SPACE" in got.output
        srv.send_signal(signal.SIGTERM)


def test_show_all_prints_sidecar_start_as_wall_clock_time(tmp_path):
    import datetime
    import time

    from apps.arb_support import arb_server

    sock = tmp_path / "run" / "g.ctl"
    before = time.time()
    with arb_server(["--plugin", "arb_plugins:SidecarPlugin", f"control_socket={sock}"],
                    tmp_path) as srv:
        socket_of(srv)
        wait_until(lambda: json.loads(run(str(sock), "--json", "show", "all").output)
                   ["sidecars"][0]["pid"], 10, message="sidecar running")
        [sidecar] = json.loads(run(str(sock), "--json", "show", "all").output)["sidecars"]
        assert before - 1 <= sidecar["started_at"] <= time.time() + 1
        text = run(str(sock), "show", "all").output
    shown = datetime.datetime.fromtimestamp(sidecar["started_at"])
    assert shown.isoformat(sep=" ", timespec="seconds") in text


def test_show_config_shows_the_live_socket_path_and_modes_in_octal(tmp_path):
    from harness import GunicornServer

    with GunicornServer(["-w", "1", "--umask", "0o022", "hello:app"]) as srv:
        path = os.path.join(srv.tmp.name, "gunicorn.ctl")  # the default: $XDG_RUNTIME_DIR
        srv.wait_for_log("Control socket listening at")
        lines = run(path, "show", "config").output.splitlines()
    assert f"control_socket: {path}" in lines
    assert "control_socket_mode: 0o600" in lines and "umask: 0o022" in lines
