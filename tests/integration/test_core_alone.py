"""The core's tests pass with no plugin installed (STYLE.md rule 24, ARCHITECTURE.md §1).

A real virtualenv holds gunicorn-core (editable, with its extras) and the test tools, and no
gunicorn-http2, gunicorn-dirty or gunicorn-ctl (``make venv-core``). It is built once and kept in
the temporary directory under a key made from what decides its content (the Makefile's tool
lists and the core's pyproject), so later runs only pay for the tests.

A chosen part of tests/core runs there (:data:`CORE_TESTS`: the command line, configuration,
plugin relay and sidecars, arbiter and signals, the sync, gthread and asgi workers, the HTTP/1.1
parser and writer, WSGI, TLS, the control socket), about a minute on two cores. The whole of
tests/core passes there too (``.venv-core/bin/python -m pytest tests/core`` after
``make venv-core``) but takes three minutes, doubling the suite's load for as long. A core test
that exercises a plugin is marked ``needs_plugin`` (tests/harness.py) and skips.

Marked ``network``: the first build installs the tools from the package index
(``pytest -m "not network"`` skips it; it also skips itself when the index cannot be reached).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from harness import REPO

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(900)]

# What decides the virtualenv's content (the core is installed editable: its sources do not).
VENV_INPUTS = ("Makefile", "packages/core/pyproject.toml")
CORE_TESTS = (
    "test_cli.py", "test_dropin_cli.py", "test_arbiter_cli.py", "test_config_loader.py",
    "test_config_validators.py", "test_config_suggest.py", "test_config_docs.py",
    "test_typed_settings.py", "test_plugin_verification.py", "test_layout.py", "test_sidecar.py",
    "test_arbiter.py", "test_arbiter_heartbeat.py", "test_signals.py", "test_sync.py",
    "test_gthread.py", "test_asgi_http.py", "test_asgi_units.py", "test_http_parser.py",
    "test_http_corpus.py", "test_http_strictness.py", "test_http_writer.py", "test_wsgi_units.py",
    "test_wsgi_serving.py", "test_tls.py", "test_sockets.py", "test_control_server.py",
    "test_control_plugins.py",
)
UNREACHABLE = ("No matching distribution found", "Failed to establish a new connection",
               "Temporary failure in name resolution", "Network is unreachable")


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "GUNICORN_CMD_ARGS", "PYTEST_XDIST_WORKER",
                 "PYTEST_ADDOPTS"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _core_venv() -> Path:
    key = hashlib.sha256()
    for name in VENV_INPUTS:
        key.update((REPO / name).read_bytes())
    venv = Path(tempfile.gettempdir()) / f"gunicorn-core-alone-{key.hexdigest()[:16]}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same one: wait for it
        if not (venv / ".installed").exists():
            built = subprocess.run(
                ["make", "-s", "venv-core", f"CORE_VENV={venv}",
                 f"PYTHON={getattr(sys, '_base_executable', sys.executable)}"],
                cwd=REPO, env=_clean_env(), capture_output=True, text=True, timeout=600)
            output = built.stdout + built.stderr
            if built.returncode != 0 and any(text in output for text in UNREACHABLE):
                pytest.skip(f"cannot reach the package index: {output.strip()[-200:]}")
            assert built.returncode == 0, output
    return venv


@pytest.fixture(scope="module")
def core_python() -> Path:
    return _core_venv() / "bin" / "python"


def test_the_core_venv_has_no_plugin(core_python: Path) -> None:
    probe = ("import importlib.metadata as m, importlib.util as u\n"
             "print(sorted(e.name for e in m.entry_points(group='gunicorn.plugins')))\n"
             "print([n for n in ('gunicorn.dirty', 'gunicorn.http2', 'gunicorn.ctl')"
             " if u.find_spec(n)])\n")
    done = subprocess.run([str(core_python), "-c", probe], cwd=REPO, env=_clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"]


def test_the_core_tests_pass_without_plugins(core_python: Path) -> None:
    paths = [f"tests/core/{name}" for name in CORE_TESTS]
    missing = [path for path in paths if not (REPO / path).is_file()]
    assert not missing, f"renamed? update CORE_TESTS: {missing}"
    # The root pyproject's pytest options apply there too (-n 2, timeouts).
    done = subprocess.run([str(core_python), "-m", "pytest", *paths, "-q"],
                          cwd=REPO, env=_clean_env(), capture_output=True, text=True,
                          timeout=840)
    tail = done.stdout[-3000:]
    assert done.returncode == 0, tail + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], tail
