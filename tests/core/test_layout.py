"""House rules of the monorepo, checked on the source tree itself."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import APPS, REPO

PACKAGES = REPO / "packages"
CORE_SRC = PACKAGES / "core" / "src"
PLUGIN_PACKAGES = ("gunicorn.dirty", "gunicorn.http2", "gunicorn.ctl")
IO_MODULES = {"socket", "selectors", "asyncio", "threading", "ssl"}


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_gunicorn_is_a_namespace_in_every_package():
    offenders = list(PACKAGES.glob("*/src/gunicorn/__init__.py"))
    assert offenders == []


def test_core_imports_no_plugin_package():
    leaks = [
        f"{path.relative_to(REPO)}: {name}"
        for path in python_files(CORE_SRC)
        for name in imported_modules(path)
        if name.startswith(PLUGIN_PACKAGES)
    ]
    assert leaks == []


def test_http_engine_is_sans_io():
    leaks = [
        f"{path.relative_to(REPO)}: {name}"
        for path in python_files(CORE_SRC / "gunicorn" / "http")
        for name in imported_modules(path)
        if name.split(".")[0] in IO_MODULES
    ]
    assert leaks == []


def test_no_module_over_600_lines():
    big = [f"{p.relative_to(REPO)} ({n})" for p in python_files(PACKAGES)
           if (n := len(p.read_text().splitlines())) > 600]
    assert big == []


def test_console_script_and_module_report_the_version():
    gunicorn_script = Path(sys.executable).parent / "gunicorn"
    for argv in ([str(gunicorn_script), "--version"], [sys.executable, "-m", "gunicorn", "--version"]):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "gunicorn" in out.stdout and "0.1.0" in out.stdout


def test_a_classic_gunicorn_package_shadowing_the_namespace_exits_2(tmp_path):
    classic = tmp_path / "gunicorn"
    classic.mkdir()
    (classic / "__init__.py").write_text("version_info = (23, 0, 0)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    gunicorn_script = Path(sys.executable).parent / "gunicorn"
    out = subprocess.run([str(gunicorn_script), "hello:app"], capture_output=True, text=True,
                         env=env, cwd=APPS, timeout=30)
    assert out.returncode == 2
    assert "classic gunicorn distribution (a 'gunicorn' package)" in out.stderr
    assert str(classic / "__init__.py") in out.stderr
    assert out.stderr.count("Error:") == 1 and "Traceback" not in out.stderr
    assert f"Remove {tmp_path} from the Python path" in out.stderr


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGES.glob("*/pyproject.toml")))
def test_every_package_has_a_readme_and_py_typed(package):
    root = PACKAGES / package
    assert (root / "README.md").is_file()
    assert list(root.glob("src/gunicorn/**/py.typed")) or (root / "src/gunicorn/py.typed").is_file()
