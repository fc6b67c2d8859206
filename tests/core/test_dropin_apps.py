"""Applications as gunicorn users deploy them: uvicorn worker names without uvicorn-worker, the
wrong ``-k`` for the app's interface, and PasteDeploy ini files.

Packages are made missing for real where a test needs it: ``tests/apps/hidden/sitecustomize.py``
makes the named top-level packages raise ModuleNotFoundError, as an uninstalled one does.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap

import pytest
from gunicorn.app.interface import interface_of
from harness import APPS, GunicornServer, run_gunicorn

HIDDEN = APPS / "hidden"


def _hiding(*modules: str) -> dict[str, str]:
    return {"HIDE_MODULES": ",".join(modules),
            "PYTHONPATH": os.pathsep.join([str(HIDDEN), str(APPS)])}


def _get(srv: GunicornServer, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


# -- uvicorn worker names ---------------------------------------------------------------------

def test_the_hiding_really_makes_uvicorn_worker_unimportable():
    env = dict(os.environ, **_hiding("uvicorn", "uvicorn_worker"))
    done = subprocess.run([sys.executable, "-c", "import uvicorn_worker"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'uvicorn_worker'" in done.stderr


@pytest.mark.parametrize("name", ["uvicorn.workers.UvicornWorker",
                                  "uvicorn.workers.UvicornH11Worker",
                                  "uvicorn_worker.UvicornWorker",
                                  "uvicorn_worker.UvicornH11Worker"])
def test_uvicorn_worker_names_run_on_our_asgi_worker_when_not_installed(name):
    with GunicornServer(["-k", name, "asgi_apps:app"],
                        env=_hiding("uvicorn", "uvicorn_worker")) as srv:
        assert _get(srv) == (200, b"Hello, World!")
        notes = [line for line in srv.log().splitlines() if "is not installed" in line]
    assert len(notes) == 1, srv.log()
    assert "[INFO]" in notes[0]
    assert f"{name} is not installed (no module " in notes[0]
    assert "gunicorn-core's asgi worker serves the application" in notes[0]


# -- the wrong interface ----------------------------------------------------------------------

DJANGO = str(APPS / "django_project")


def _boot_log_expecting_exit_4(args: list[str], cwd: str | None) -> str:
    srv = GunicornServer(args, cwd=cwd, env={"PYTHONPATH": os.pathsep.join([str(APPS), DJANGO])})
    srv.start(wait=False)
    try:
        assert srv.wait_exit(20) == 4, srv.log()
        return srv.log()
    finally:
        srv.stop()


@pytest.mark.parametrize("worker", ["sync", "gthread"])
@pytest.mark.parametrize("app, cwd", [
    ("asgi_apps:app", None),
    ("asgi_frameworks:fastapi_app", None),
    ("asgi_frameworks:starlette_app", None),
    ("asgi_django:application", DJANGO),
], ids=["raw-asgi", "fastapi", "starlette", "django-asgi"])
def test_an_asgi_app_under_a_wsgi_worker_stops_with_exit_4(worker, app, cwd):
    log = _boot_log_expecting_exit_4(["-k", worker, app], cwd)
    lines = [line for line in log.splitlines() if "run it with -k asgi" in line]
    assert len(lines) == 1, log
    assert f"the application is ASGI but the {worker} worker serves WSGI applications" \
        in lines[0]
    assert "Traceback" not in log


@pytest.mark.parametrize("app, cwd", [
    ("hello:app", None),
    ("flask_app:app", None),
    ("djproj.wsgi:application", DJANGO),
], ids=["raw-wsgi", "flask", "django-wsgi"])
def test_a_wsgi_app_under_the_asgi_worker_stops_with_exit_4(app, cwd):
    log = _boot_log_expecting_exit_4(["-k", "asgi", app], cwd)
    assert "the application is WSGI but the asgi worker serves ASGI applications: run it " \
        "with -k gthread (or -k sync)" in log, log


def test_check_config_names_the_worker_for_the_app():
    done = run_gunicorn(["--check-config", "-k", "gthread", "asgi_frameworks:fastapi_app"])
    assert done.returncode == 1
    assert done.stderr == ("Error: the application is ASGI but the gthread worker serves WSGI "
                           "applications: run it with -k asgi\n")


async def _asgi(scope, receive, send):
    pass


def _wsgi(environ, start_response):
    return []


class _Wrapper:
    def __call__(self, *args):
        return None


class _AsgiTwo:
    def __init__(self, scope):
        self.scope = scope


@pytest.mark.parametrize("app, expected", [
    (_asgi, "asgi"), (_wsgi, "wsgi"), (_Wrapper(), None), (_AsgiTwo, None),
    (lambda environ: None, None), (print, None),
], ids=["async-3", "plain-2", "star-args", "asgi2-class", "one-arg", "builtin"])
def test_interface_detection_is_conservative(app, expected):
    assert interface_of(app) == expected


# -- PasteDeploy ------------------------------------------------------------------------------

INI = """\
[app:main]
use = call:paste_app:make_app
greeting = hello from paste

[app:other]
use = call:paste_app:make_app
greeting = the other section

[loggers]
keys = root, gunicorn_error

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = file

[logger_gunicorn_error]
level = INFO
handlers = file
qualname = gunicorn.error
propagate = 0

[handler_file]
class = FileHandler
args = ('%(here)s/paste.log', 'a')
formatter = plain

[formatter_plain]
format = paste-ini %(levelname)s %(message)s
"""


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "production.ini"
    path.write_text(textwrap.dedent(INI))
    return path


def test_paste_serves_the_ini_files_app_with_its_logging_and_globals(ini, tmp_path):
    with GunicornServer(["--paste", str(ini), "--paste-global", "color=blue"]) as srv:
        assert _get(srv) == (200, b"hello from paste; color=blue")
        log = (tmp_path / "paste.log").read_text()
    assert "paste-ini INFO Booting worker with pid: " in log


def test_paster_with_a_section_name(ini):
    with GunicornServer(["--paster", f"{ini}#other"]) as srv:
        assert _get(srv) == (200, b"the other section; color=-")


def test_paste_without_pastedeploy_exits_2_naming_the_extra(ini):
    done = run_gunicorn(["--paste", str(ini)], env=_hiding("paste"))
    assert done.returncode == 2
    assert done.stderr == ("Error: paste: --paste needs PasteDeploy: "
                           "pip install 'gunicorn-core[paste]'\n")


def test_paste_with_a_missing_file_exits_2(tmp_path):
    done = run_gunicorn(["--paste", str(tmp_path / "nope.ini")])
    assert done.returncode == 2
    assert done.stderr == f"Error: paste: '{tmp_path / 'nope.ini'}' does not exist\n"
