"""gunicorn-dirty's control commands (show dirty, dirty add/remove, stash) on a real server.

The server runs a gthread HTTP worker serving stash_apps:app and a dirty pool of two workers
(EchoApp everywhere, LimitedApp on one worker, StashDirtyApp declaring two stash tables); the
commands go through ControlClient, gunictl under click's runner, and the installed script.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from apps.ctl_support import ctl_server, open_fds, socket_of
from click.testing import CliRunner
from gunicorn.control.errors import CommandError
from gunicorn.ctl import ControlClient, ControlCommandError
from gunicorn.ctl.cli import cli
from gunicorn.dirty import DirtyClient
from gunicorn.dirty.control import DirtyCommands, _key_candidates, jsonable_value
from gunicorn.dirty.stash import StashClient
from harness import GunicornServer, children_of, pid_alive, wait_until

GUNICTL = str(Path(sys.executable).parent / "gunictl")
ECHO = "dirty_apps:EchoApp"
LIMITED = "dirty_apps:LimitedApp"
STASH_APP = "stash_apps:StashDirtyApp"
WORKER_FIELDS = {"pid", "age", "apps", "booted", "in_flight", "queued", "last_heartbeat"}


def dirty_ctl_server(tmp: Path, *dirty_args: str) -> GunicornServer:
    sock = tmp / "run" / "gunicorn.ctl"
    return GunicornServer(["-w", "1", "-k", "gthread", "--threads", "2",
                           "--control-socket", str(sock), *dirty_args, "stash_apps:app"])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("dirtyctl")
    with dirty_ctl_server(tmp, "--dirty-app", ECHO, "--dirty-app", LIMITED,
                          "--dirty-app", STASH_APP, "--dirty-workers", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def sock(server) -> str:
    path = socket_of(server)
    # The HTTP worker and the dirty arbiter: the master's fds are complete, and no control
    # connection exists yet (a closing one would be counted while the master reaps it).
    wait_until(lambda: len(children_of(server.pid)) == 2, 15, message="master's children")
    server.baseline_fds = open_fds(server.pid)
    booted(path, 2)
    return path


def send(sock: str, command: str, *args: str) -> dict:
    with ControlClient(sock, timeout=10) as client:
        return client.send(command, list(args))


def run(sock: str, *args: str):
    return CliRunner().invoke(cli, ["-s", sock, *args])


def booted(sock: str, count: int, timeout: float = 15.0) -> dict:
    """``show dirty`` once exactly ``count`` workers run, all booted and none retiring."""
    def ready() -> dict | None:
        data = send(sock, "show dirty")
        workers = data["workers"]
        live = [w for w in workers if w["booted"] and not w["retiring"]]
        return data if data["running"] and len(live) == count == len(workers) else None
    return wait_until(ready, timeout, message=f"{count} booted dirty workers")


def sidecar_pid(sock: str) -> int:
    [dirty] = [s for s in send(sock, "show all")["sidecars"] if s["name"] == "dirty"]
    return dirty["pid"]


def http_get(server: GunicornServer, path: str, **query: str) -> dict:
    url = f"{server.url}{path}?{urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


# -- show dirty ---------------------------------------------------------------------------------


def test_show_dirty_reports_the_live_pool(sock):
    data = booted(sock, 2)
    arbiter = sidecar_pid(sock)
    assert data["enabled"] is True and data["running"] is True and data["pid"] == arbiter
    workers = data["workers"]
    assert all(WORKER_FIELDS <= set(w) for w in workers)
    pids = [w["pid"] for w in workers]
    assert sorted(pids) == sorted(children_of(arbiter))
    assert [w["age"] for w in workers] == sorted(w["age"] for w in workers)
    apps = {a["path"]: a for a in data["apps"]}
    assert sorted(apps[ECHO]["workers"]) == sorted(pids)
    assert apps[LIMITED]["limit"] == 1 and len(apps[LIMITED]["workers"]) == 1
    holder = next(w for w in workers if w["pid"] == apps[LIMITED]["workers"][0])
    assert LIMITED in holder["apps"]


def test_show_dirty_counts_calls_in_flight(sock):
    socket_path = send(sock, "show dirty")["socket"]
    with DirtyClient(socket_path, timeout=10) as client:
        caller = threading.Thread(target=client.execute, args=(ECHO, "sleep", 1.0))
        caller.start()
        try:
            busy = wait_until(lambda: [w for w in send(sock, "show dirty")["workers"]
                                       if w["in_flight"] == 1], 5, message="a call in flight")
        finally:
            caller.join(10)
    assert len(busy) == 1
    wait_until(lambda: all(w["in_flight"] == 0 for w in send(sock, "show dirty")["workers"]), 5)


def test_gunictl_show_dirty_table_and_json(sock):
    table = run(sock, "show", "dirty")
    assert table.exit_code == 0, table.output
    assert "IN FLIGHT" in table.output and "LAST BEAT" in table.output
    assert ECHO in table.output and "running: yes" in table.output
    body = json.loads(run(sock, "show", "dirty", "--json").output)
    assert body["workers"] and all(isinstance(w["pid"], int) and ECHO in w["apps"]
                                   for w in body["workers"])


def test_show_all_embeds_the_dirty_data(sock):
    everything = send(sock, "show all")
    dirty = everything["dirty"]
    assert dirty["enabled"] is True and dirty["pid"] == sidecar_pid(sock)
    assert {w["pid"] for w in dirty["workers"]} == {w["pid"] for w in booted(sock, 2)["workers"]}


# -- dirty add / remove -------------------------------------------------------------------------


def test_dirty_add_then_remove(sock):
    before = {w["pid"] for w in booted(sock, 2)["workers"]}
    added = run(sock, "dirty", "add", "1")
    assert added.exit_code == 0 and "added: 1" in added.output, added.output
    after = {w["pid"] for w in booted(sock, 3)["workers"]}
    assert before < after
    reply = send(sock, "dirty remove", "1")
    assert reply["removed"] == 1 and reply["total"] == 2 and "reason" not in reply
    left = booted(sock, 2)
    assert len({w["pid"] for w in left["workers"]} & after) == 2
    # LimitedApp has a single holder, which must stay: only one more can go.
    fewer = send(sock, "dirty remove", "5")
    assert fewer["removed"] == 1 and fewer["requested"] == 5
    assert "only holders" in fewer["reason"]
    booted(sock, 1)
    assert send(sock, "dirty add")["added"] == 1  # back to two for the other tests
    booted(sock, 2)


def test_dirty_add_stops_at_app_limits(tmp_path):
    with dirty_ctl_server(tmp_path, "--dirty-app", LIMITED, "--dirty-workers", "1") as srv:
        sock = socket_of(srv)
        booted(sock, 1)
        reply = send(sock, "dirty add", "2")
        assert reply["added"] == 0 and reply["total"] == 1
        assert "limit" in reply["reason"]
        assert send(sock, "dirty remove")["removed"] == 0
        for bad in (["x"], ["0"], ["1", "2"]):
            result = run(sock, "dirty", "add", *bad)
            assert result.exit_code == 1 and "Traceback" not in result.output
        assert len(booted(sock, 1)["workers"]) == 1


# -- stash --------------------------------------------------------------------------------------


def test_stash_commands_read_what_an_http_endpoint_stored(server, sock):
    for key, name in (("user:1", "Alice"), ("user:2", "Bob")):
        assert http_get(server, "/put", t="sessions", k=key, v=json.dumps({"name": name}))[
            "stored"] is True
    tables = {t["name"]: t for t in send(sock, "stash tables")["tables"]}
    assert {"sessions", "declared", "counters"} <= set(tables)
    assert tables["sessions"]["keys"] == 2 and tables["declared"]["keys"] == 0
    assert send(sock, "stash keys", "sessions")["keys"] == ["user:1", "user:2"]
    assert send(sock, "stash keys", "sessions", "*:2")["keys"] == ["user:2"]
    got = send(sock, "stash get", "sessions", "user:1")
    assert got["value"] == {"name": "Alice"} and got["key"] == "user:1"

    shown = run(sock, "stash", "get", "sessions", "user:2")
    assert shown.exit_code == 0 and "Bob" in shown.output
    keys = json.loads(run(sock, "--json", "stash", "keys", "sessions").output)
    assert keys == {"table": "sessions", "pattern": None, "count": 2,
                    "keys": ["user:1", "user:2"]}
    listing = run(sock, "stash", "tables")
    assert listing.exit_code == 0 and "sessions" in listing.output and "KEYS" in listing.output


def test_stash_get_shows_bytes_and_finds_int_and_bytes_keys(sock):
    socket_path = send(sock, "show dirty")["socket"]
    with StashClient(socket_path, timeout=10) as client:
        client.put("bin", 42, [b"x", 1.5, {"n": None}])
        client.put("bin", b"raw\xe9", b"\x00\xff")
        client.put("bin", "42", "the string key")
        assert send(sock, "stash get", "bin", "42")["value"] == "the string key"
        client.delete("bin", "42")
    as_int = send(sock, "stash get", "bin", "42")
    assert as_int["key_type"] == "int" and as_int["value"] == [
        {"type": "bytes", "base64": "eA=="}, 1.5, {"n": None}]
    as_bytes = send(sock, "stash get", "bin", "raw\xe9")
    assert as_bytes["key_type"] == "bytes"
    assert as_bytes["value"] == {"type": "bytes", "base64": "AP8="}
    assert send(sock, "stash keys", "bin")["keys"] == [42, {"type": "bytes",
                                                            "base64": "cmF36Q=="}]


@pytest.mark.parametrize("words,message", [
    (["stash", "keys", "nope"], "stash table not found: nope"),
    (["stash", "get", "nope", "k"], "stash table not found: nope"),
    (["stash", "get", "declared", "user:9"], "no key 'user:9' in stash table 'declared'"),
    (["stash", "get", "sessions"], "usage: stash get TABLE KEY"),
    (["stash", "keys"], "usage: stash keys TABLE [PATTERN]"),
    (["stash", "tables", "x"], "stash tables takes no arguments"),
    (["show", "dirty", "x"], "show dirty takes no arguments"),
], ids=["keys-no-table", "get-no-table", "get-no-key", "get-usage", "keys-usage",
        "tables-args", "show-args"])
def test_stash_and_dirty_errors_exit_1(sock, words, message):
    result = run(sock, *words)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    with pytest.raises(ControlCommandError, match="."):
        send(sock, " ".join(words))


# -- the installed script, fds, disabled ----------------------------------------------------


def test_installed_gunictl_script(sock):
    shown = subprocess.run([GUNICTL, "-s", sock, "--json", "show", "dirty"],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert all(ECHO in w["apps"] for w in json.loads(shown.stdout)["workers"])
    missing = subprocess.run([GUNICTL, "-s", sock, "stash", "keys", "nope"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "stash table not found" in missing.stderr


def test_commands_and_reloads_leave_the_master_fd_count_unchanged(server, sock):
    baseline = server.baseline_fds
    for _ in range(3):
        old = {w["pid"] for w in booted(sock, 2)["workers"]}
        with ControlClient(sock, timeout=10) as client:
            for _ in range(5):
                client.send("show dirty")
                client.send("stash tables")
                client.send("show all")
            client.send("reload")
        # The master forwards HUP to the dirty arbiter, which replaces its workers.
        wait_until(lambda o=old: not {w["pid"] for w in booted(sock, 2)["workers"]} & o, 15,
                   message="dirty workers replaced by the reload")
    assert send(sock, "dirty add")["added"] == 1
    booted(sock, 3)
    assert send(sock, "dirty remove")["removed"] == 1
    booted(sock, 2)
    wait_until(lambda: open_fds(server.pid) == baseline, 10,
               message=f"master fds back to {baseline} (now {open_fds(server.pid)})")
    assert pid_alive(sidecar_pid(sock))


def test_without_dirty_apps_show_dirty_is_disabled_and_dirty_add_fails(tmp_path):
    with ctl_server(tmp_path) as srv:
        sock = socket_of(srv)
        assert send(sock, "show dirty") == {"enabled": False, "workers": []}
        add = run(sock, "dirty", "add", "1")
        assert add.exit_code == 1 and "not enabled" in add.output
        assert run(sock, "stash", "tables").exit_code == 1
        assert send(sock, "show all")["dirty"]["enabled"] is False


# -- without a server: the handlers themselves --------------------------------------------------


def test_handlers_when_the_arbiter_is_not_running(tmp_path):
    commands = DirtyCommands(str(tmp_path / "arbiter.sock"), timeout=2)
    shown = commands.show_dirty([])
    assert shown["enabled"] is True and shown["running"] is False and shown["workers"] == []
    with pytest.raises(CommandError, match="not running"):
        commands.dirty_add(["1"])
    with pytest.raises(CommandError, match="not running"):
        commands.stash_tables([])
    handlers = commands.handlers()
    assert handlers["stash get"].usage == "stash get TABLE KEY"
    assert handlers["dirty add"].__doc__.startswith("run N more dirty workers")


@pytest.mark.parametrize("value,expected", [
    (b"\x00\xff", {"type": "bytes", "base64": "AP8="}),
    ([b"", 1], [{"type": "bytes", "base64": ""}, 1]),
    ({b"k": float("inf"), 3: "x"}, {"b'k'": "inf", 3: "x"}),
    (("a", None, True), ["a", None, True]),
    ("plain", "plain"),
], ids=["bytes", "nested-list", "map-keys-and-inf", "tuple", "str"])
def test_jsonable_value(value, expected):
    assert jsonable_value(value) == expected
    json.dumps(jsonable_value(value), allow_nan=False)


@pytest.mark.parametrize("text,expected", [
    ("user:1", ["user:1", b"user:1"]),
    ("42", ["42", 42, b"42"]),
    ("007", ["007", b"007"]),
    ("\u20ac", ["\u20ac"]),
], ids=["str", "int", "leading-zero", "not-latin1"])
def test_key_candidates(text, expected):
    assert _key_candidates(text) == expected
