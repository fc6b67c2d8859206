"""Command resolution, socket path defaults, settings and worker facts (no server process)."""

from __future__ import annotations

import os

import pytest
from gunicorn.config import Config
from gunicorn.control.commands import Command, CommandTable, Deferred, build_table
from gunicorn.control.errors import CommandError
from gunicorn.control.paths import default_socket_path, resolve_socket_path
from gunicorn.errors import ConfigError
from gunicorn.workers.heartbeat import Heartbeat, WorkerFacts


def table(*names):
    return CommandTable(Command(n, n, n, lambda args, n=n: {"name": n, "args": args})
                        for n in names)


def test_longest_word_prefix_wins_and_the_rest_are_args():
    t = table("stash", "stash get", "show workers")
    assert t.execute("stash get T Key") == {"name": "stash get", "args": ["T", "Key"]}
    assert t.execute("stash", ["other"]) == {"name": "stash", "args": ["other"]}


def test_command_words_are_case_insensitive_args_are_not():
    t = table("stash get")
    assert t.execute("STASH Get", ["Tbl", "KeY"]) == {"name": "stash get",
                                                     "args": ["Tbl", "KeY"]}


def test_quoted_words_stay_together():
    t = table("stash get")
    assert t.execute('stash get t "a key"')["args"] == ["t", "a key"]


@pytest.mark.parametrize("command,message", [
    ("foo", "unknown command: foo (try: help)"),
    ("show", "incomplete command: show (one of: show stats, show workers)"),
    ("show nothing", "unknown command: show nothing (one of: show stats, show workers)"),
    ("", "empty command"),
    ('say "unclosed', "cannot parse command"),
], ids=["unknown", "incomplete", "unknown-target", "empty", "bad-quotes"])
def test_resolution_errors(command, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        table("show workers", "show stats").execute(command)


class FakeSignals:
    def __init__(self):
        self.sent = []

    def put(self, sig):
        self.sent.append(sig)


class FakeArbiter:
    """Only for table building; the commands' effects are tested against a real server."""

    def __init__(self):
        self.cfg = Config()
        self.signals = FakeSignals()
        self.num_workers = 2
        self.workers = {}


def test_plugin_commands_are_deferred_and_may_replace_only_the_dirty_placeholders():
    def dirty(args):
        """Dirty status."""
        return {"enabled": True}

    t = build_table(FakeArbiter(), {"show dirty": dirty, "reload": lambda a: {"x": 1},
                                    "Stash  Keys": lambda a: {"keys": a}}, lambda: None)
    outcome = t.execute("show dirty")
    assert isinstance(outcome, Deferred) and outcome.run() == {"enabled": True}
    assert t.execute("reload") == {"status": "reloading"}  # the core's, not the plugin's
    assert t.execute("stash keys", ["t"]).run() == {"keys": ["t"]}
    usages = t.execute("help")["commands"]
    assert usages["show dirty"] == "Dirty status." and "stash keys" in usages


def test_without_plugin_dirty_commands_explain_themselves():
    t = build_table(FakeArbiter(), {}, lambda: None)
    assert t.execute("show dirty") == {"enabled": False, "workers": []}
    with pytest.raises(CommandError, match="dirty arbiters are not enabled .*gunicorn-dirty"):
        t.execute("dirty add 1")


@pytest.mark.parametrize("command,message", [
    ("worker add x", "N must be an integer"), ("worker add 0", "positive"),
    ("worker add 1 2", "usage: worker add"), ("worker kill", "usage: worker kill PID"),
    ("worker kill 999999", "no HTTP worker with pid 999999"),
    ("shutdown later", "graceful or quick"), ("reload now", "takes no arguments"),
], ids=["nan", "zero", "two", "kill-nopid", "kill-unknown", "shutdown-mode", "extra-arg"])
def test_core_usage_errors(command, message):
    with pytest.raises(CommandError, match=message):
        build_table(FakeArbiter(), {}, lambda: None).execute(command)


def test_default_socket_path_prefers_an_existing_runtime_dir(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": "/home/someone"}
    assert default_socket_path(env) == str(tmp_path / "gunicorn.ctl")
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "missing")
    assert default_socket_path(env) == "/home/someone/.gunicorn/gunicorn.ctl"
    assert default_socket_path({}) is None


def test_default_is_computed_at_use_time(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert resolve_socket_path(None) == str(tmp_path / "gunicorn.ctl")
    assert resolve_socket_path("rel.ctl", cwd="/srv") == "/srv/rel.ctl"


def test_control_settings():
    cfg = Config()
    assert cfg.control_socket is None and cfg.control_socket_mode == 0o600
    assert cfg.control_socket_disable is False
    cfg.set("control_socket_mode", "0o660")
    assert cfg.control_socket_mode == 0o660
    cfg.set("control_socket_mode", "0640")
    assert cfg.control_socket_mode == 0o640
    with pytest.raises(ConfigError):
        cfg.set("control_socket_mode", "0o1777")
    assert cfg.registry.get("control_socket_disable").cli == ("--no-control-socket",)


def test_heartbeat_carries_booted_and_request_count():
    beat = Heartbeat()
    try:
        assert beat.read_facts() == WorkerFacts(False, 0)
        beat.publish(True, 41)
        beat.publish(True, 42)
        assert beat.read_facts() == WorkerFacts(True, 42)
        assert os.fstat(beat.fileno()).st_size == 0  # the file's mtime stays the heartbeat's
    finally:
        beat.close()


def test_heartbeat_facts_cross_the_fork_without_touching_the_mtime():
    beat = Heartbeat()
    try:
        mtime = beat.last_update()
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- the forked "worker"
            beat.publish(True, 7)
            os._exit(0)
        os.waitpid(pid, 0)
        assert beat.read_facts() == WorkerFacts(True, 7)
        assert beat.last_update() == mtime  # a stuck worker stays detectable
    finally:
        beat.close()


def test_a_setting_with_redact_is_shown_redacted_by_show_config():
    from gunicorn.config.registry import Setting
    from gunicorn.config.settings import core_registry
    from gunicorn.control import views

    registry = core_registry()
    registry.add(Setting(name="secret_url", section="Test", doc="a URL with a password",
                         redact=lambda value: value.replace("hunter2", "***")))
    cfg = Config(registry)
    cfg.set("secret_url", "redis://u:hunter2@h/0")
    assert cfg.secret_url == "redis://u:hunter2@h/0"
    assert views.config_data(cfg)["secret_url"] == "redis://u:***@h/0"
    assert registry.get("secret_url").shown(None) is None
    assert registry.get("workers").shown(3) == 3
