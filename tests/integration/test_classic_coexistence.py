"""Classic gunicorn and gunicorn-core in one virtualenv, in either install order.

Real throwaway virtualenvs, our real wheels and the real classic ``gunicorn==27.0.1`` from the
package index (marked ``network``: ``pytest -m "not network"`` skips it; it also skips itself
when the index cannot be reached). Every way of starting the server exits 2 with one message
naming the conflict and a repair command; running that command really repairs the environment.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from harness import APPS, REPO, GunicornServer

CLASSIC = "gunicorn==27.0.1"
OURS = ("core", "http2", "dirty", "ctl")

pytestmark = [pytest.mark.network, pytest.mark.timeout(300)]


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env,
                          **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    for folder in OURS:
        build = _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o",
                      str(out), str(REPO / "packages" / folder)])
        assert build.returncode == 0, build.stdout + build.stderr
    # Fetched once (pip's cache keeps it between runs): without the index the test skips.
    fetched = _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(out),
                    CLASSIC])
    if fetched.returncode != 0:
        pytest.skip(f"cannot download {CLASSIC}: {fetched.stderr.strip()[-200:]}")
    found = {folder: next(out.glob(f"gunicorn_{folder}-*.whl")) for folder in OURS}
    found["classic"] = next(out.glob("gunicorn-27.0.1-*.whl"))
    return found


def _install(python: Path, *targets: Path) -> None:
    done = _run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                 *map(str, targets)])
    assert done.returncode == 0, done.stderr


def _repair_command(stderr: str) -> str:
    lines = stderr.splitlines()
    index = lines.index("Repair this environment with:")
    return lines[index + 1].strip()


def _assert_conflict(run: subprocess.CompletedProcess[str], env_dir: Path) -> str:
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("Error:") == 1, run.stderr
    assert "classic gunicorn distribution (gunicorn 27.0.1)" in run.stderr, run.stderr
    assert str(env_dir / "lib") in run.stderr  # names where the two collide
    command = _repair_command(run.stderr)
    python = str(env_dir / "bin" / "python")
    assert command.startswith(f"{python} -m pip uninstall -y gunicorn && {python} -m pip "
                              "install --force-reinstall --no-deps "), command
    return command


@pytest.mark.parametrize("order", ["ours-then-classic", "classic-then-ours"])
def test_conflict_is_reported_in_either_order_and_the_printed_repair_works(
        wheels: dict[str, Path], tmp_path: Path, order: str) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    ours = [wheels[folder] for folder in OURS]
    if order == "ours-then-classic":
        _install(python, *ours)
        _install(python, wheels["classic"])
    else:
        _install(python, wheels["classic"])
        _install(python, *ours)

    app = ["--check-config", "hello:app"]
    by_script = _run([str(env_dir / "bin" / "gunicorn"), *app], cwd=APPS)
    command = _assert_conflict(by_script, env_dir)
    by_module = _run([str(python), "-m", "gunicorn", *app], cwd=APPS)
    assert _assert_conflict(by_module, env_dir) == command
    for wheel in ours:  # every one of ours is reinstalled, from where it came
        assert str(wheel) in command

    repaired = _run(["bash", "-c", command])
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr

    checked = _run([str(env_dir / "bin" / "gunicorn"), *app], cwd=APPS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = _run([str(python), "-m", "gunicorn", "--version"], cwd=APPS)
    assert checked.returncode == 0 and "0.1.0" in checked.stdout, checked.stderr
    with GunicornServer(["-w", "1", "hello:app"], cwd=APPS,
                        command=[str(env_dir / "bin" / "gunicorn")]) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"Hello, World!")
