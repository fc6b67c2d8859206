"""Is the loaded application WSGI or ASGI? Asked once, at boot, so the wrong ``-k`` fails there.

An ASGI application under a WSGI worker (or the reverse) would otherwise boot fine and answer
every request with a 500 and a confusing traceback; it is one of the questions users of every
Python server ask most. Detection is conservative: only shapes that cannot be the other kind
count, and anything else (``*args`` wrappers, ASGI 2 factories, odd callables) is "unknown" and
never refused.

* ASGI: a coroutine function taking exactly three positional arguments
  (``async def app(scope, receive, send)``), or an object whose ``__call__`` is one: Starlette
  and FastAPI applications, Django's ``ASGIHandler``, Quart.
* WSGI: a plain (non-async) function taking exactly two positional arguments
  (``def app(environ, start_response)``), or an object whose ``__call__`` is one: Flask
  applications, Django's ``WSGIHandler``, most middleware.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

ASGI = "asgi"
WSGI = "wsgi"

# What to tell the user to run instead, by the kind of app found.
SUGGESTED_WORKER: Mapping[str, str] = MappingProxyType({
    ASGI: "-k asgi",
    WSGI: "-k gthread (or -k sync)",
})


def _call_target(app: Any) -> Any:
    if inspect.isfunction(app) or inspect.ismethod(app) or isinstance(app, functools.partial):
        return app
    return app.__call__ if callable(app) else None  # bound: ``self`` is not counted


def _positional_count(target: Any) -> int | None:
    """The number of positional parameters, or None when ``*args`` makes it open-ended."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins and C callables may have no signature
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY,
                              inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def interface_of(app: Any) -> str | None:
    """``"asgi"``, ``"wsgi"``, or None when the shape of ``app`` does not say for sure."""
    target = _call_target(app)
    if target is None:
        return None
    count = _positional_count(target)
    if inspect.iscoroutinefunction(target):
        return ASGI if count == 3 else None
    if inspect.isasyncgenfunction(target):
        return None
    if count == 2 and (inspect.isfunction(target) or inspect.ismethod(target)
                       or isinstance(target, functools.partial)):
        return WSGI
    return None


def mismatch(app: Any, served: str, worker: str) -> str | None:
    """One line explaining why ``worker`` (serving ``served`` apps) cannot run ``app``, naming
    the ``-k`` to use; None when the app is of the right kind or its kind is unknown."""
    found = interface_of(app)
    if found is None or found == served:
        return None
    return (f"the application is {found.upper()} but the {worker} worker serves "
            f"{served.upper()} applications: run it with {SUGGESTED_WORKER[found]}")
