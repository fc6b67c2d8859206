"""Command lines and config files as gunicorn users write them, mistakes included.

Real ``gunicorn`` processes: worker names gunicorn knows, flag and setting typos, settings of
plugins that are not loaded, ``--http-parser``, and which pid the worker lines carry.
"""

from __future__ import annotations

import re
import signal

import pytest
from harness import GunicornServer, needs_plugin, run_gunicorn


def _check(*args: str, cwd=None) -> tuple[int, str]:
    done = run_gunicorn(["--check-config", *args], cwd=cwd)
    return done.returncode, done.stderr


# -- worker classes ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("gthreads", "did you mean 'gthread'?"),
    ("asyncio", "available: asgi, gevent, gthread, sync"),
    ("eventlet", "use -k gevent for the same green-thread model, or -k asgi"),
    ("gunicorn.workers.geventlet.EventletWorker", "removed from gunicorn in 26.0"),
    ("tornado", "-k asgi"),
], ids=lambda v: v if "." not in v or v.startswith("gunicorn") else "")
def test_check_config_refuses_a_worker_class_that_cannot_run(name, expected):
    status, err = _check("-k", name, "hello:app")
    assert status == 2, err
    assert err.startswith("Error: worker_class: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["gthread", "egg:gunicorn#gthread",
                                  "gunicorn.workers.gthread.ThreadWorker",
                                  "gunicorn.workers.gasgi.ASGIWorker"])
def test_check_config_accepts_gunicorn_spellings_of_our_workers(name):
    app = "asgi_apps:app" if "asgi" in name.lower() else "hello:app"
    assert _check("-k", name, app) == (0, "")


# -- flags and config-file names --------------------------------------------------------------

def test_a_mistyped_flag_names_the_flag_it_probably_is():
    done = run_gunicorn(["--wokers", "3", "hello:app"])
    assert done.returncode == 2
    assert "unrecognized arguments: --wokers (did you mean --workers?)" in done.stderr


CONFIG_WITH_TYPOS = """\
import multiprocessing
import os
from os import path

workres = 2
bnd = "127.0.0.1:0"
preload = True

# Helpers stay silent: names that extend a setting, constants, functions, underscores.
keepalive_str = os.environ.get("KEEPALIVE", "2")
use_loglevel = "info"
workers_per_core = 1.0
WORKERS = 3
_private = 1
cores = multiprocessing.cpu_count()


def number_of_workers():
    return 2


def post_forks(server, worker):
    pass
"""


def test_config_file_typos_are_warned_and_helpers_stay_silent(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(CONFIG_WITH_TYPOS)
    status, err = _check("hello:app", cwd=tmp_path)
    assert status == 0, err
    warnings = err.strip().splitlines()
    assert warnings == [
        "Warning: ./gunicorn.conf.py: 'workres' is not a setting; did you mean 'workers'? "
        "(it is ignored)",
        "Warning: ./gunicorn.conf.py: 'bnd' is not a setting; did you mean 'bind'? "
        "(it is ignored)",
        "Warning: ./gunicorn.conf.py: 'preload' is not a setting; did you mean 'preload_app'? "
        "(it is ignored)",
        "Warning: ./gunicorn.conf.py: 'post_forks' is not a setting; did you mean "
        "'post_fork'? (it is ignored)",
    ]


def test_the_server_logs_config_file_typos_as_warnings(tmp_path):
    (tmp_path / "typo.conf.py").write_text("workres = 2\n")
    with GunicornServer(["-c", str(tmp_path / "typo.conf.py"), "hello:app"]) as srv:
        srv.wait_for_log(r"\[WARNING\] .*typo.conf.py: 'workres' is not a setting; did you "
                         r"mean 'workers'\?")


@pytest.mark.parametrize("args, setting", [
    (["--disable-plugin", "dirty", "--dirty-workers", "2"], "dirty_workers"),
    (["--disable-plugin", "http2", "--http2-max-frame-size=32768"], "http2_max_frame_size"),
], ids=["dirty-flag", "http2-flag"])
def test_a_disabled_plugins_flag_stops_with_exit_2(args, setting):
    done = run_gunicorn([*args, "hello:app"])
    assert done.returncode == 2
    plugin = setting.split("_")[0]
    assert done.stderr == (f"Error: {setting}: --{setting.replace('_', '-').split('=')[0]} "
                           f"belongs to the {plugin} plugin, which is disabled "
                           f"(--disable-plugin {plugin})\n")


def test_a_disabled_plugins_setting_in_a_config_file_stops_with_exit_2(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("dirty_workers = 2\n")
    done = run_gunicorn(["--disable-plugin", "dirty", "hello:app"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("Error: dirty_workers: belongs to the dirty plugin, which is disabled "
                           "(--disable-plugin dirty) (in ./gunicorn.conf.py)\n")


@needs_plugin("dirty")  # the warning is the dirty plugin's configure()
def test_dirty_workers_without_dirty_apps_warns_that_no_pool_starts():
    status, err = _check("--dirty-workers", "2", "hello:app")
    assert status == 0
    assert err == ("Warning: dirty_workers = 2 but no dirty_apps (--dirty-app): no dirty pool "
                   "will start\n")


# -- --http-parser ----------------------------------------------------------------------------

def test_http_parser_accepts_gunicorns_values_and_says_ours_is_used():
    assert _check("--http-parser", "python", "hello:app") == (0, "")
    assert _check("--http-parser", "auto", "hello:app") == (0, "")
    status, err = _check("--http-parser", "turbo", "hello:app")
    assert status == 2 and err.startswith("Error: http_parser: ")
    with GunicornServer(["--http-parser", "fast", "hello:app"]) as srv:
        srv.wait_for_log("Booting worker")
        lines = [line for line in srv.log().splitlines() if "http_parser" in line]
        assert len(lines) == 1 and "[INFO] http_parser = 'fast': gunicorn-core has one " \
            "HTTP/1.1 parser" in lines[0], srv.log()


# -- which pid a line carries -----------------------------------------------------------------

def test_worker_lines_carry_the_workers_pid():
    with GunicornServer(["-w", "2", "hello:app"]) as srv:
        pids = srv.wait_workers(2)
        srv.wait_for_log("Booting worker", count=2)
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(20) == 0
        log = srv.log()
    booting = re.findall(r"\[(\d+)\] \[INFO\] Booting worker with pid: (\d+)", log)
    exiting = re.findall(r"\[(\d+)\] \[INFO\] Worker exiting \(pid: (\d+)\)", log)
    assert sorted(int(a) for a, b in booting if a == b) == sorted(pids), log
    assert sorted(int(a) for a, b in exiting if a == b) == sorted(pids), log
