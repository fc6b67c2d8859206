"""Console-script entry point for the ``gunicorn`` command, and the classic-gunicorn guard.

The classic ``gunicorn`` distribution (one regular package, with ``gunicorn/__init__.py``) and
gunicorn-core (a share of the PEP 420 namespace ``gunicorn``) write into the same
``site-packages/gunicorn/`` directory. Installed together, whichever came last has overwritten
some files of the other, and neither works. It happens by accident: ``pip install
uvicorn-worker`` pulls classic gunicorn in as a dependency.

Both install orders end here:

* classic first, ours last: our console script runs :func:`main`, which finds the regular
  package before anything inside ``gunicorn.*`` is imported;
* ours first, classic last: classic's console script (``gunicorn.app.wsgiapp:run``) and its
  ``__main__`` run instead, and import ``gunicorn.arbiter`` and ``gunicorn.config``. Classic
  ships those as modules (``arbiter.py``, ``config.py``) and we as packages, and a package
  directory wins the import, so our ``__init__`` files run and call :func:`exit_if_shadowed`.

Either way the command exits 2 with one message naming the conflict and a command that repairs
the environment. ``pip uninstall gunicorn`` alone would not: it deletes the files both
distributions share, so ours are reinstalled right after it.

This module lives outside the ``gunicorn`` namespace on purpose, so the guard does not depend on
which files of the namespace survived.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
import urllib.parse
from typing import Any

# Our distributions, all four sharing the namespace; those installed are reinstalled.
OUR_DISTRIBUTIONS = ("gunicorn-core", "gunicorn-http2", "gunicorn-dirty", "gunicorn-ctl")
CLASSIC = "gunicorn"
EXIT_CONFLICT = 2


def shadowing_package() -> str | None:
    """The path of a classic ``gunicorn/__init__.py`` that makes ``gunicorn`` a regular package
    (shadowing the namespace), or None."""
    module = sys.modules.get("gunicorn")
    if module is not None:
        return getattr(module, "__file__", None)  # None for a namespace package
    spec = importlib.util.find_spec("gunicorn")
    if spec is None or spec.origin in (None, "namespace"):
        return None
    return spec.origin


def _distribution(name: str) -> Any:
    from importlib import metadata

    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _reinstall_target(dist: Any) -> list[str]:
    """How pip can install ``dist`` again: the wheel or directory it came from, when it still
    exists (PEP 610 ``direct_url.json``), else ``name==version`` from the index."""
    name, version = dist.metadata["Name"], dist.version
    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        info = {}
    url = str(info.get("url", ""))
    if url.startswith("file://"):
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        if os.path.exists(path):
            if (info.get("dir_info") or {}).get("editable"):
                return ["-e", path]
            return [path]
    elif "vcs_info" in info:
        vcs = info["vcs_info"]
        return [f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}"]
    elif url and "archive_info" in info:
        return [url]
    return [f"{name}=={version}"]


def _required_by() -> list[str]:
    """Installed distributions that depend on classic gunicorn (how it got here)."""
    import re
    from importlib import metadata

    found = set()
    for dist in metadata.distributions():
        for requirement in dist.requires or ():
            match = re.match(r"\s*([A-Za-z0-9._-]+)", requirement)
            if match and match.group(1).lower() == CLASSIC and "extra ==" not in requirement:
                found.add(dist.metadata["Name"])
    return sorted(found)


def repair_command() -> str | None:
    """The shell command that gives this environment back to gunicorn-core, or None when none
    of our distributions is installed."""
    ours = [d for d in map(_distribution, OUR_DISTRIBUTIONS) if d is not None]
    if not ours:
        return None
    python = shlex.quote(sys.executable)
    targets = " ".join(shlex.quote(t) for d in ours for t in _reinstall_target(d))
    if importlib.util.find_spec("pip") is None:  # a venv made by uv has no pip
        return (f"uv pip uninstall --python {python} {CLASSIC} && uv pip install --python "
                f"{python} --reinstall --no-deps {targets}")
    return (f"{python} -m pip uninstall -y {CLASSIC} && {python} -m pip install "
            f"--force-reinstall --no-deps {targets}")


def conflict_message(init_path: str) -> str:
    """One message: what is installed, why it cannot work, and the command that repairs it."""
    classic = _distribution(CLASSIC)
    core = _distribution("gunicorn-core")
    what = f"gunicorn {classic.version}" if classic is not None else "a 'gunicorn' package"
    # Who asked for it, when pip installed it (a package found on PYTHONPATH has no metadata).
    pulled = _required_by() if classic is not None else []
    if pulled:
        what += f", required by {', '.join(pulled)}"
    ours = f"gunicorn-core {core.version}" if core is not None else "gunicorn-core"
    lines = [
        f"Error: the classic gunicorn distribution ({what}) is installed in this environment "
        f"({init_path}) together with {ours}. The two cannot share the gunicorn package, so "
        "the gunicorn command cannot run (and 'pip uninstall gunicorn' alone would delete "
        "files gunicorn-core needs).",
    ]
    command = repair_command()
    if classic is None:  # not pip's: found through PYTHONPATH, a .pth file, a system package
        lines.append(f"Remove {os.path.dirname(os.path.dirname(init_path))} from the Python "
                     "path (PYTHONPATH or a .pth file), or use a virtualenv without it.")
    elif command is None:
        lines.append("Use a virtualenv without the classic gunicorn distribution.")
    else:
        lines += ["Repair this environment with:", f"    {command}"]
    if "uvicorn-worker" in pulled:
        lines.append("uvicorn-worker is not needed: -k uvicorn.workers.UvicornWorker runs on "
                     "gunicorn-core's asgi worker. If you keep it, install it with "
                     "'pip install --no-deps uvicorn-worker' so classic gunicorn stays out.")
    elif pulled:
        lines.append(f"Install {', '.join(pulled)} with 'pip install --no-deps' so classic "
                     "gunicorn does not come back.")
    lines.append("See 'Migrating from gunicorn' in gunicorn-core's documentation.")
    return "\n".join(lines) + "\n"


def exit_if_shadowed() -> None:
    """Exit 2 with :func:`conflict_message` when classic gunicorn shadows the namespace."""
    path = shadowing_package()
    if path is None:
        return
    sys.stderr.write(conflict_message(path))
    sys.stderr.flush()
    raise SystemExit(EXIT_CONFLICT)


def main() -> None:
    exit_if_shadowed()
    from gunicorn.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
