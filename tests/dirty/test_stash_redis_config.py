"""The stash-on-Redis settings: checked before anything forks (exit 2, one line), and the
password never shown by ``--print-config``, ``show config`` or an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from apps.ctl_support import socket_of
from gunicorn.ctl import ControlClient
from gunicorn.dirty.stash.config import parse_url, redact_url
from harness import GunicornServer, run_gunicorn

SECRET = "pa55-w0rd"

# A sitecustomize that hides the redis package, as in an install without the extra.
HIDE_REDIS = '''
import sys

class _NoRedis:
    def find_spec(self, name, path=None, target=None):
        if name == "redis" or name.startswith("redis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoRedis())
'''


@pytest.mark.parametrize("url,message", [
    (f"http://u:{SECRET}@h/0", "expected a redis://, rediss:// or unix:// URL"),
    (f"redis://u:{SECRET}@h:port/0", "not a valid URL"),
    (f"redis://u:{SECRET}@h/zero", "the database must be a number"),
    (f"redis://:{SECRET}@/0", "names no host"),
    (f"unix://u:{SECRET}@relative.sock", "absolute socket path"),
    (f"unix:///run/redis.sock?db=x&password={SECRET}", "the database must be a number"),
], ids=["scheme", "port", "db", "no-host", "unix-relative", "unix-db"])
def test_a_bad_url_exits_2_without_showing_the_password(url, message):
    result = run_gunicorn(["--dirty-stash-url", url, "app:app"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: dirty_stash_url: ")
    assert message in lines[0] and SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("url,shown", [
    (f"redis://bob:{SECRET}@cache.internal:6380/2",
     "redis://bob:***@cache.internal:6380/2"),
    (f"rediss://:{SECRET}@cache.internal/0?ssl_cert_reqs=none",
     "rediss://:***@cache.internal/0?ssl_cert_reqs=none"),
    (f"redis://{SECRET}@cache.internal", "redis://***@cache.internal"),
    (f"unix:///run/redis.sock?db=1&password={SECRET}", "unix:///run/redis.sock?db=1&password=***"),
    ("redis://cache.internal:6379/0", "redis://cache.internal:6379/0"),
], ids=["user-password", "tls", "lone-userinfo", "unix-query", "no-password"])
def test_print_config_redacts_the_password(url, shown):
    result = run_gunicorn(["--print-config", "--dirty-stash-url", url, "app:app"])
    assert result.returncode == 0, result.stderr
    assert f"dirty_stash_url = {shown!r}" in result.stdout.splitlines()
    assert SECRET not in result.stdout


def test_addresses_name_the_server_only():
    assert parse_url(f"redis://u:{SECRET}@h:1/2").address == "redis://h:1/2"
    assert parse_url(f"rediss://:{SECRET}@[::1]/0").address == "rediss://[::1]:6379/0"
    assert parse_url("unix:///run/r.sock?db=4").address == "unix:///run/r.sock?db=4"
    assert SECRET not in redact_url(f"redis://u:{SECRET}@h:notaport/0")


def test_a_redis_url_without_the_extra_exits_2_naming_it(tmp_path: Path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_REDIS)
    result = run_gunicorn(["--dirty-stash-url", "redis://127.0.0.1:1/0", "app:app"],
                          env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip() == ("Error: dirty_stash_url: the stash on Redis needs the "
                                     "redis client: pip install 'gunicorn-dirty[redis]'")


def test_the_stash_file_and_a_redis_url_exclude_each_other(tmp_path: Path):
    result = run_gunicorn(["--dirty-stash-url", "redis://127.0.0.1:1/0", "--dirty-stash-file",
                           str(tmp_path / "stash.bin"), "app:app"])
    assert result.returncode == 2
    assert result.stderr.startswith("Error: dirty_stash_file: cannot be used with "
                                    "dirty_stash_url")


@pytest.mark.parametrize("prefix", ["{app}", "a}b", "tab\there"], ids=["braces", "brace", "tab"])
def test_a_bad_prefix_exits_2(prefix):
    result = run_gunicorn(["--dirty-stash-url", "redis://127.0.0.1:1/0",
                           "--dirty-stash-prefix", prefix, "app:app"])
    assert result.returncode == 2 and "Error: dirty_stash_prefix: " in result.stderr


def test_show_config_redacts_and_the_stash_works_without_a_dirty_pool(tmp_path, redis_server,
                                                                      stash_prefix):
    url = redis_server.url.replace("redis://", f"redis://default:{SECRET}@")
    sock = tmp_path / "run" / "gunicorn.ctl"
    # No dirty pool at all: the stash on Redis does not need one. (The server's user is
    # "default" with any password here: Redis has no requirepass set.)
    with GunicornServer(["-w", "1", "-k", "gthread", "--control-socket", str(sock),
                         "--dirty-stash-url", url, "--dirty-stash-prefix", stash_prefix,
                         "stash_apps:app"]) as srv, \
            ControlClient(socket_of(srv), timeout=10) as ctl:
        config = ctl.send("show config", [])
        assert config["dirty_stash_url"] == url.replace(SECRET, "***")
        assert config["dirty_stash_prefix"] == stash_prefix
        assert ctl.send("show dirty", [])["enabled"] is False
        from test_stash_process import fetch

        assert fetch(srv, "/put", t="solo", k="k", v="1")["stored"] is True
        assert ctl.send("stash keys", ["solo"])["keys"] == ["k"]
    assert SECRET not in srv.log()
