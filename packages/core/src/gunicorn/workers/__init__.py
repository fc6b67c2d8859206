"""Worker classes, found through the ``gunicorn.workers`` entry-point group.

The core's own ``sync`` and ``gthread`` are registered there exactly as a third party's worker
would be. ``-k`` also accepts a dotted path (``mypkg.workers.MyWorker``) or a class object.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

WORKER_GROUP = "gunicorn.workers"


def available_workers() -> list[str]:
    """Names registered in the ``gunicorn.workers`` group."""
    return sorted(ep.name for ep in entry_points(group=WORKER_GROUP))


def load_worker_class(spec: Any) -> type:
    """Resolve ``spec`` (a registered name, a dotted path, or a class) to a worker class.

    Raises ValueError with a message listing the registered names when nothing matches.
    """
    if isinstance(spec, type):
        return spec
    name = str(spec)
    if name.startswith("egg:gunicorn#"):  # gunicorn's historic spelling
        name = name.split("#", 1)[1]
    matches = [ep for ep in entry_points(group=WORKER_GROUP) if ep.name == name]
    if matches:
        return matches[0].load()
    if "." in name:
        from gunicorn.config.validators import import_dotted

        cls = import_dotted(name)  # ValueError naming what could not be imported
        if not isinstance(cls, type):
            raise ValueError(f"{name!r} is not a class")
        return cls
    known = ", ".join(available_workers()) or "none installed"
    raise ValueError(f"unknown worker class {name!r} (available: {known})")
