"""The gunicorn command, run as a real process: exit codes, one-line errors, --print-config."""

from __future__ import annotations

import http.client
import re
import signal
from pathlib import Path

import pytest
from gunicorn.version import __version__
from harness import APPS, GunicornServer, run_gunicorn


def printed(output: str) -> dict[str, str]:
    """``name = value`` lines of --print-config as a dict of repr strings."""
    return dict(line.split(" = ", 1) for line in output.splitlines() if " = " in line)


def assert_one_line_error(result: object, setting: str) -> None:
    assert result.returncode == 2, result.stderr  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith(f"Error: {setting}: "), lines[0]


def test_version() -> None:
    result = run_gunicorn(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"gunicorn (version {__version__})"
    assert run_gunicorn(["-v"]).stdout == result.stdout


def test_help_is_grouped_by_section() -> None:
    result = run_gunicorn(["--help"])
    assert result.returncode == 0
    for section in ("Server Socket:", "Worker Processes:", "Security:", "Logging:", "SSL:"):
        assert section in result.stdout
    assert "--workers INT" in result.stdout and "[APP_MODULE]" in result.stdout


def test_bad_integer_exits_2_with_one_line() -> None:
    result = run_gunicorn(["--workers", "lots", "hello:app"])
    assert_one_line_error(result, "workers")
    assert "integer" in result.stderr


@pytest.mark.parametrize(("args", "setting"), [
    (["-b", "unix:"], "bind"),
    (["--log-level", "loud"], "loglevel"),
    (["--forwarded-allow-ips", "nope"], "forwarded_allow_ips"),
    (["--certfile", "/no/such.pem"], "certfile"),
    (["--umask", "9z"], "umask"),
    (["-e", "NOVALUE"], "raw_env"),
    (["-k", "no_such_worker_kind"], "worker_class"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_values_exit_2(args: list[str], setting: str) -> None:
    assert_one_line_error(run_gunicorn([*args, "hello:app"]), setting)


def test_bad_value_in_cmd_args_env() -> None:
    result = run_gunicorn(["hello:app"], env={"GUNICORN_CMD_ARGS": "--timeout soon"})
    assert_one_line_error(result, "timeout")


def test_no_app_module_is_a_usage_error(tmp_path: Path) -> None:
    result = run_gunicorn([], cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "APP_MODULE" in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = run_gunicorn(["--no-such-option", "hello:app"])
    assert result.returncode == 2 and "usage:" in result.stderr


def test_precedence_through_print_config(tmp_path: Path) -> None:
    env = {
        "WEB_CONCURRENCY": "9",          # env default, below the config file
        "PORT": "7001",                  # env default for bind, never overridden here
        "GUNICORN_CMD_ARGS": f"-c {APPS / 'cfg_precedence.py'} --backlog 222 --keep-alive 8",
    }
    result = run_gunicorn(["--print-config", "--keep-alive", "9", "--timeout", "66",
                           "hello:app"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    values = printed(result.stdout)
    assert values["bind"] == "['0.0.0.0:7001']"
    assert values["workers"] == "4"                     # config file over $WEB_CONCURRENCY
    assert values["proc_name"] == "'from-config-file'"  # config file only
    assert values["backlog"] == "222"                   # $GUNICORN_CMD_ARGS over config file
    assert values["keepalive"] == "9"                   # argv over $GUNICORN_CMD_ARGS
    assert values["timeout"] == "66"                    # argv over config file
    assert values["wsgi_app"] == "'hello:app'"
    assert "not_a_setting" not in values


def test_print_config_lists_every_setting_sorted(tmp_path: Path) -> None:
    result = run_gunicorn(["--print-config"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split(" = ")[0] for line in result.stdout.splitlines()]
    assert names == sorted(names)
    assert {"bind", "workers", "post_request", "disable_plugin", "header_map"} <= set(names)
    assert printed(result.stdout)["workers"] == "1"


def test_default_config_file_in_cwd(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text("workers = 6\nwsgi_app = 'hello:app'\n")
    values = printed(run_gunicorn(["--print-config"], cwd=tmp_path).stdout)
    assert values["workers"] == "6" and values["wsgi_app"] == "'hello:app'"


def test_python_module_config(tmp_path: Path) -> None:
    result = run_gunicorn(["-c", "python:cfg_module", "--print-config"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = printed(result.stdout)
    assert values["workers"] == "3" and values["config"] == "'python:cfg_module'"


def test_config_file_that_raises_exits_2_naming_the_file() -> None:
    result = run_gunicorn(["-c", "cfg_raises.py", "hello:app"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"Error: cfg_raises\.py: RuntimeError: boom", lines[0])


def test_config_file_syntax_error_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("workers = = 2\n")
    result = run_gunicorn(["-c", "bad.py", "hello:app"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: bad.py: syntax error at line 1")


def test_config_file_bad_value_exits_2() -> None:
    assert_one_line_error(run_gunicorn(["-c", "cfg_bad_value.py", "hello:app"]), "workers")


def test_hook_arity_error_exits_2(tmp_path: Path) -> None:
    (tmp_path / "hooks.py").write_text("def post_fork(server):\n    pass\n")
    result = run_gunicorn(["-c", "hooks.py", "hello:app"], cwd=tmp_path)
    assert_one_line_error(result, "post_fork")


def test_check_config_ok() -> None:
    result = run_gunicorn(["--check-config", "hello:app"])
    assert result.returncode == 0, result.stderr


def test_check_config_app_missing_exits_1() -> None:
    result = run_gunicorn(["--check-config", "hello:nothing_here"])
    assert result.returncode == 1
    assert "nothing_here" in result.stderr


def test_check_config_module_missing_exits_1() -> None:
    result = run_gunicorn(["--check-config", "no_such_module_xyz:app"])
    assert result.returncode == 1 and "no_such_module_xyz" in result.stderr


def test_check_config_bad_setting_exits_2() -> None:
    assert_one_line_error(run_gunicorn(["--check-config", "-w", "x", "hello:app"]), "workers")


def test_server_starts_and_hup_rereads_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "live.conf.py"
    conf.write_text("workers = 1\nwsgi_app = 'hello:app'\n")
    with GunicornServer(["-c", str(conf)], cwd=tmp_path) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"Hello, World!"
        conn.close()
        srv.wait_workers(1)
        conf.write_text("workers = 3\nwsgi_app = 'hello:app'\n")
        srv.send_signal(signal.SIGHUP)
        srv.wait_workers(3)
