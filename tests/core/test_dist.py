"""`make dist` artefacts install in a fresh virtualenv and `gunicorn app:app` serves."""

import http.client
import subprocess
import sys
import venv

import pytest
from harness import APPS, REPO, GunicornServer


@pytest.mark.timeout(300)
def test_core_wheel_installs_in_a_fresh_venv_and_serves(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist),
         str(REPO / "packages" / "core")],
        capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list(dist.glob("gunicorn_core-*.whl"))
    assert len(wheels) == 1
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--no-index", str(wheels[0])], capture_output=True, text=True, timeout=240)
    assert pip.returncode == 0, pip.stderr
    with GunicornServer(["-w", "1", "hello:app"], cwd=APPS,
                        command=[str(env_dir / "bin" / "gunicorn")]) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"Hello, World!"
