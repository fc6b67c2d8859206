"""Worker classes, found through the ``gunicorn.workers`` entry-point group.

The core's own ``sync``, ``gthread`` and ``asgi`` are registered there exactly as a third
party's worker would be. ``-k`` also accepts a dotted path (``mypkg.workers.MyWorker``) or a
class object. :func:`resolve_worker` is the one place that turns what the user wrote into a
class, in this order:

1. a registered entry-point name (``gthread``; ``egg:gunicorn#gthread`` is gunicorn's old
   spelling of the same); a registered worker whose extra is not installed (``gevent``
   without the ``gevent`` extra) is refused with the ``pip install`` that fixes it;
2. classic gunicorn's dotted paths of its built-in workers (``gunicorn.workers.ggevent.
   GeventWorker``), read as the short name; gunicorn's ``gevent_pywsgi``/``gevent_wsgi`` (gevent's
   own pywsgi server there) are served by our ``gevent`` worker, with a note saying so;
3. a worker gunicorn had that we do not: ``eventlet`` (removed from gunicorn in 26.0) and
   ``tornado`` are refused with what to use instead;
4. a dotted path, imported; the uvicorn worker paths, when uvicorn-worker (or uvicorn) is not
   installed, are served by our ``asgi`` worker with a note saying so;
5. otherwise an error listing the registered names and the closest one ("did you mean").
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

WORKER_GROUP = "gunicorn.workers"
EGG_PREFIX = "egg:gunicorn#"

# Classic gunicorn's module paths of its own workers, by the name they are registered under.
CLASSIC_PATHS: Mapping[str, str] = MappingProxyType({
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gunicorn.workers.gthread.ThreadWorker": "gthread",
    "gunicorn.workers.gasgi.ASGIWorker": "asgi",
    "gunicorn.workers.ggevent.GeventWorker": "gevent",
    "gunicorn.workers.ggevent.GeventPyWSGIWorker": "gevent_pywsgi",
    "gunicorn.workers.geventlet.EventletWorker": "eventlet",
    "gunicorn.workers.gtornado.TornadoWorker": "tornado",
})

# Worker names gunicorn users know that no entry point provides here: why, and what to use.
UNAVAILABLE: Mapping[str, str] = MappingProxyType({
    "eventlet": ("the eventlet worker was removed from gunicorn in 26.0 and eventlet itself "
                 "recommends migrating away: use -k gevent for the same green-thread model, or "
                 "-k asgi for an asyncio application"),
    "tornado": "there is no tornado worker: run a Tornado application as ASGI with -k asgi",
})

# Registered workers that need an optional extra: what to say when it is not installed.
NEEDS_EXTRA: Mapping[str, str] = MappingProxyType({
    "gevent": ("the gevent worker is not installed: it needs the gevent extra of gunicorn-core "
               "(pip install 'gunicorn-core[gevent]')"),
})

# gunicorn's workers on gevent's own pywsgi server: our gevent worker serves them.
PYWSGI_ALIASES: Mapping[str, str] = MappingProxyType({
    "gevent_wsgi": "gevent",
    "gevent_pywsgi": "gevent",
})

# uvicorn's worker classes: served by our asgi worker when their package is missing.
UVICORN_ALIASES: Mapping[str, str] = MappingProxyType({
    "uvicorn.workers.UvicornWorker": "asgi",
    "uvicorn.workers.UvicornH11Worker": "asgi",
    "uvicorn_worker.UvicornWorker": "asgi",
    "uvicorn_worker.UvicornH11Worker": "asgi",
})
_UVICORN_MODULES = frozenset({"uvicorn", "uvicorn.workers", "uvicorn_worker"})


class WorkerNotAvailable(ValueError):
    """``-k`` names a worker this installation cannot run (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class ResolvedWorker:
    """The worker class ``-k`` asked for; ``note`` is one line to log when what runs is not
    literally what was asked (an alias)."""

    cls: type
    note: str | None = None


def available_workers() -> list[str]:
    """Names registered in the ``gunicorn.workers`` group."""
    return sorted(ep.name for ep in entry_points(group=WORKER_GROUP))


def _registered(name: str) -> type | None:
    for ep in entry_points(group=WORKER_GROUP):
        if ep.name == name:
            cls: type = ep.load()
            return cls
    return None


def resolve_worker(spec: Any) -> ResolvedWorker:
    """Resolve ``spec`` (a name, a dotted path, or a class) as described in the module doc.

    Raises :class:`WorkerNotAvailable` (a ValueError) for a known worker that cannot run here,
    ValueError for an unknown name, ImportError when a dotted path fails to import.
    """
    if isinstance(spec, type):
        return ResolvedWorker(spec)
    name = str(spec)
    if name.startswith(EGG_PREFIX):
        name = name[len(EGG_PREFIX):]
    name = CLASSIC_PATHS.get(name, name)
    note = None
    if name in PYWSGI_ALIASES:
        note = (f"{spec} is gunicorn's worker on gevent's pywsgi server; gunicorn-core's "
                f"{PYWSGI_ALIASES[name]} worker serves the application (the same greenlets, "
                "our HTTP engine)")
        name = PYWSGI_ALIASES[name]
    try:
        found = _registered(name)
    except ModuleNotFoundError as exc:
        # The worker's module is there but its extra is not (gevent without gevent).
        if name in NEEDS_EXTRA and (exc.name or "").split(".")[0] != "gunicorn":
            raise WorkerNotAvailable(f"-k {spec}: {NEEDS_EXTRA[name]} "
                                     f"(no module {exc.name!r})") from exc
        raise
    if found is not None:
        return ResolvedWorker(found, note)
    if name in NEEDS_EXTRA:
        raise WorkerNotAvailable(f"-k {spec}: {NEEDS_EXTRA[name]}")
    if name in UNAVAILABLE:
        raise WorkerNotAvailable(f"-k {spec}: {UNAVAILABLE[name]}")
    if "." in name:
        return _import_dotted(name)
    raise ValueError(f"unknown worker class {name!r}{_did_you_mean(name)}")


def _import_dotted(name: str) -> ResolvedWorker:
    from gunicorn.config.validators import import_dotted

    try:
        cls = import_dotted(name)  # ValueError naming what could not be imported
    except (ValueError, ImportError) as exc:
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
        alias = UVICORN_ALIASES.get(name)
        if alias is None or missing not in _UVICORN_MODULES:
            raise
        found = _registered(alias)
        if found is None:
            raise
        return ResolvedWorker(found, f"{name} is not installed (no module {missing!r}); "
                                     f"gunicorn-core's {alias} worker serves the application")
    if not isinstance(cls, type):
        raise ValueError(f"{name!r} is not a class")
    return ResolvedWorker(cls)


def _did_you_mean(name: str) -> str:
    names = available_workers()
    close = difflib.get_close_matches(name, names + list(UNAVAILABLE), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(names) or "none installed"
    return f" (available: {known}){hint}"


def load_worker_class(spec: Any) -> type:
    """The class :func:`resolve_worker` finds for ``spec``."""
    return resolve_worker(spec).cls


# Built-in workers and the kind of application they serve, checked once the app is loaded
# (see gunicorn.app.interface). Subclasses inherit the check; a worker class may also say it
# with an ``app_interface`` attribute ("wsgi" or "asgi").
BUILTIN_INTERFACES: Mapping[str, str] = MappingProxyType({
    "gunicorn.workers.sync.SyncWorker": "wsgi",
    "gunicorn.workers.gthread.ThreadWorker": "wsgi",
    "gunicorn.workers.asgi.ASGIWorker": "asgi",
})


def served_interface(cls: type) -> str | None:
    """``"wsgi"`` or ``"asgi"`` for workers that serve only that kind, else None (no check)."""
    declared = getattr(cls, "app_interface", None)
    if declared is not None:
        return str(declared)
    for klass in cls.__mro__:
        found = BUILTIN_INTERFACES.get(f"{klass.__module__}.{klass.__qualname__}")
        if found is not None:
            return found
    return None
