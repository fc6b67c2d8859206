"""Every package builds a wheel that ships only its own part of the `gunicorn` namespace."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from harness import REPO

PACKAGES = {
    # folder: (distribution, the one subpackage it owns or None for the core, an entry point)
    "core": ("gunicorn_core", None, "gunicorn.workers"),
    "dirty": ("gunicorn_dirty", "gunicorn/dirty/", "gunicorn.plugins"),
    "http2": ("gunicorn_http2", "gunicorn/http2/", "gunicorn.plugins"),
    "ctl": ("gunicorn_ctl", "gunicorn/ctl/", "console_scripts"),
}
PLUGIN_DIRS = ("gunicorn/dirty/", "gunicorn/http2/", "gunicorn/ctl/")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    built = {}
    for folder, (dist, _, _) in PACKAGES.items():
        run = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o",
                              str(out), str(REPO / "packages" / folder)],
                             capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stdout + run.stderr
        (wheel,) = out.glob(f"{dist}-*.whl")
        built[folder] = wheel
    return built


@pytest.mark.timeout(300)
@pytest.mark.parametrize("folder", list(PACKAGES))
def test_wheel_ships_only_its_part_of_the_namespace(wheels: dict[str, Path], folder: str) -> None:
    dist, own, group = PACKAGES[folder]
    with zipfile.ZipFile(wheels[folder]) as zf:
        names = zf.namelist()
        meta_dir = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = zf.read(f"{meta_dir}/entry_points.txt").decode()
        metadata = Parser().parsestr(zf.read(f"{meta_dir}/METADATA").decode())
    code = [n for n in names if not n.startswith(meta_dir)]
    assert "gunicorn/__init__.py" not in code  # PEP 420 namespace shared by the four
    if own is None:
        assert not [n for n in code if n.startswith(PLUGIN_DIRS)]
        assert "gunicorn/arbiter/arbiter.py" in code
    else:
        assert code and all(n.startswith(own) for n in code), code
        assert any("gunicorn-core" in req for req in metadata.get_all("Requires-Dist"))
    assert f"[{group}]" in entry_points


def test_versions_move_in_lockstep() -> None:
    versions = {
        folder: next(line.split('"')[1] for line in
                     (REPO / "packages" / folder / "pyproject.toml").read_text().splitlines()
                     if line.startswith("version ="))
        for folder in PACKAGES
    }
    assert len(set(versions.values())) == 1, versions
