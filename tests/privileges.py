"""Shared by tests that drop privileges: run a command as ``nobody``, and find a Python whose
standard library ``nobody`` can read (a root master's children keep its interpreter; a pyenv
under ``/root`` is unreadable to them, the system Python of the same version is not)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def nobody_exists() -> bool:
    try:
        return pwd.getpwnam("nobody").pw_uid == NOBODY
    except KeyError:
        return False


def can_drop_privileges() -> bool:
    """Root, setpriv and the nobody user (65534) are all here."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None and nobody_exists()


def _stdlib_readable_by_nobody(python: str) -> bool:
    found = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                            "['stdlib'])"], capture_output=True, text=True, timeout=30)
    if found.returncode != 0:
        return False
    probe = os.path.join(found.stdout.strip(), "asyncio", "__init__.py")
    return subprocess.run([*AS_NOBODY, "test", "-r", probe], timeout=30).returncode == 0


def interpreter_for_nobody() -> tuple[str, str] | None:
    """(python, extra PYTHONPATH) whose forked children still import as nobody, or None."""
    if _stdlib_readable_by_nobody(sys.executable):
        return sys.executable, ""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    ours = os.pathsep.join(p for p in sys.path if p and not p.startswith(sys.base_prefix))
    for python in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.path.exists(python) and _stdlib_readable_by_nobody(python):
            return python, ours
    return None
