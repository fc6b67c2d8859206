"""Reading the class attributes of dirty apps without importing them in the dirty arbiter.

The arbiter needs ``workers``, ``stashes`` and ``resources`` of every app class before it forks
a worker (and the names of its actions, which label the call metrics). Importing the app modules in the arbiter itself would be wrong twice over: every
worker would inherit the modules as they were imported *before* its resource tokens were
exported (``CUDA_VISIBLE_DEVICES`` must be set before an app module is imported, and a library
that touches the GPU at import cannot be forked safely), and a HUP could never load new code
because the forked workers would reuse the arbiter's stale modules. So a short-lived child
imports the classes, writes their attributes to a pipe as JSON, and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn import util
from gunicorn.dirty.app import LIFECYCLE_METHODS, declared_workers, import_app_class

# More action names than this are not labelled one by one in the metrics.
MAX_ACTIONS = 256


@dataclass(frozen=True, slots=True)
class AppTraits:
    """What an app class declares. ``error`` says why the class could not be read."""

    workers: int | None = None
    stashes: tuple[str, ...] = ()
    resources: Any = None  # the raw ``resources`` attribute, checked by the caller
    error: str | None = None
    actions: tuple[str, ...] = ()  # its public methods: what a client may call


def traits_of(cls: type) -> dict[str, Any]:
    """The JSON-able declarations of an app class."""
    declared = getattr(cls, "stashes", ()) or ()
    stashes = [declared] if isinstance(declared, str) else [str(s) for s in declared]
    resources = getattr(cls, "resources", None)
    if resources is not None and not isinstance(resources, Mapping):
        resources = repr(resources)  # parse_needs refuses it, naming what it got
    elif resources:
        # JSON-able, and refusable with a message: a non-int count travels as its repr.
        resources = {str(k): v if isinstance(v, int) else repr(v) for k, v in resources.items()}
    actions = [name for name in dir(cls) if not name.startswith("_")
               and name not in LIFECYCLE_METHODS and callable(getattr(cls, name, None))]
    return {"workers": declared_workers(cls), "stashes": stashes, "resources": resources or None,
            "actions": actions[:MAX_ACTIONS]}


def probe_apps(paths: list[str], log: Any) -> dict[str, AppTraits]:
    """Import each app class in a forked child and return what the classes declare.

    An app whose class cannot be imported gets ``AppTraits(error=...)`` (its workers report the
    error properly, per call); a child that dies gives that error for every app.
    """
    if not paths:
        return {}
    read_fd, write_fd = os.pipe()
    util.flush_stdio()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child, which always _exits
        try:
            os.close(read_fd)
            _write_all(write_fd, json.dumps(_probe(paths)).encode())
        finally:
            util.flush_stdio()
            os._exit(0)
    os.close(write_fd)
    with contextlib.closing(os.fdopen(read_fd, "rb")) as reader:
        data = reader.read()
    _, status = os.waitpid(pid, 0)
    try:
        found = json.loads(data or b"null")
    except ValueError:
        found = None
    if not isinstance(found, dict):
        reason = f"the process reading the app classes ended badly (wait status {status})"
        log.error("Cannot read the dirty app classes: %s", reason)
        return {path: AppTraits(error=reason) for path in paths}
    out: dict[str, AppTraits] = {}
    for path in paths:
        entry = found.get(path) or {}
        if entry.get("error"):
            log.warning("Cannot import dirty app %s to read its workers, stashes and resources: "
                        "%s", path, entry["error"])
        out[path] = AppTraits(entry.get("workers"), tuple(entry.get("stashes") or ()),
                              entry.get("resources"), entry.get("error"),
                              tuple(entry.get("actions") or ()))
    return out


def _probe(paths: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path in paths:
        try:
            result[path] = traits_of(import_app_class(path))
        except Exception as exc:  # user code at import: anything can fail, report it as text
            result[path] = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)
