"""docs/internals.md names only modules (and objects) that exist."""

from __future__ import annotations

import importlib
import re

import pytest
from harness import REPO

DOC = REPO / "docs" / "internals.md"
SOURCES = sorted(REPO.glob("packages/*/src/gunicorn"))
# A module path under gunicorn/ ("wsgi/exchange.py"), and a dotted name ("gunicorn.http.writer",
# "gunicorn.arbiter.sidecars.SidecarSupervisor", maybe called: "...core_registry()").
PATH_RE = re.compile(r"(?<![\w./-])([A-Za-z_][\w/]*\.py)\b")
DOTTED_RE = re.compile(r"`(gunicorn(?:\.\w+)+)(?:\(\))?`")


def paths() -> list[str]:
    return sorted(set(PATH_RE.findall(DOC.read_text())))


def dotted() -> list[str]:
    return sorted(set(DOTTED_RE.findall(DOC.read_text())))


def test_the_doc_names_modules():
    assert len(paths()) > 50 and len(dotted()) > 5


@pytest.mark.parametrize("path", paths())
def test_named_module_path_exists(path):
    # Under gunicorn/ ("wsgi/exchange.py", also spelt "gunicorn/wsgi/exchange.py"), or from the
    # repository root ("packages/core/src/...").
    relative = path.removeprefix("gunicorn/")
    assert (REPO / path).is_file() or any((root / relative).is_file() for root in SOURCES), \
        f"{path} is not a module"


@pytest.mark.parametrize("name", dotted())
def test_named_dotted_object_exists(name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)  # AttributeError: the doc names something gone
        return
    pytest.fail(f"{name} names no module")
