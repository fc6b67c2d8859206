"""Shared fixtures. The process harness lives in harness.py (importable as ``harness``)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def python_for_nobody() -> tuple[str, str]:
    """(python, extra PYTHONPATH) that a server dropping privileges to nobody can run on (see
    tests/privileges.py); skips the test when there is none."""
    from privileges import interpreter_for_nobody

    found = interpreter_for_nobody()
    if found is None:
        pytest.skip("no Python whose standard library nobody can read")
    return found
