"""The user-facing base class of dirty applications, and how a worker loads one.

A dirty app is a class named by a spec (``module:Class``). Every dirty worker that holds it
imports the module, instantiates the class once and calls ``init()`` once; then the worker calls
the instance with ``(action, *args, **kwargs)`` for each request, and ``close()`` at shutdown.

``DirtyApp`` is a convenience base: any class with callable ``init``, ``__call__`` and ``close``
works (duck typing, as gunicorn users expect).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from gunicorn.dirty.errors import DirtyActionNotFoundError, DirtyAppError, DirtyAppNotFoundError


class DirtyApp:
    """Base class for stateful applications served by dirty workers.

    Subclasses put heavy, once-per-process set-up (loading a model, opening a pool) in
    :meth:`init`, expose actions as public methods (sync or ``async def``; a method may also
    return a generator or async generator to stream its results) and release resources in
    :meth:`close`.

    Class attributes:

    ``workers``
        ``None`` (the default) to load the app in every dirty worker, or ``N`` to load it in at
        most N workers (a ``module:Class:N`` spec overrides it).
    ``stashes``
        Names of stash tables the dirty arbiter creates when it starts.
    ``resources``
        On the class: the resource tokens each worker holding the app needs, such as
        ``{"gpu": 1}`` (names declared by ``dirty_resources``). On the instance, from before
        :meth:`init` on: the tokens this worker was granted, such as ``{"gpu": ["2"]}``.
    """

    workers: ClassVar[int | None] = None
    stashes: ClassVar[tuple[str, ...] | list[str]] = ()
    resources: Mapping[str, Any] = MappingProxyType({})

    def init(self) -> None:
        """Heavy initialisation, once per dirty worker, after the fork."""

    def close(self) -> None:
        """Release resources when the dirty worker stops."""

    def __call__(self, action: str, *args: Any, **kwargs: Any) -> Any:
        """Run the public method named ``action``.

        Raises :class:`DirtyActionNotFoundError` when ``action`` is
        private (starts with ``_``), unknown, or not callable: the caller learns at once that it
        asked for something this app does not offer.
        """
        return resolve_action(self, action)(*args, **kwargs)


def resolve_action(app: Any, action: str) -> Any:
    """The bound method of ``app`` named ``action``, or a typed error."""
    app_path = getattr(app, "_dirty_app_path", None)
    if not isinstance(action, str) or not action or action.startswith("_"):
        raise DirtyActionNotFoundError(app_path, str(action))
    method = getattr(app, action, None)
    if method is None or not callable(method) or action in LIFECYCLE_METHODS:
        raise DirtyActionNotFoundError(app_path, action)
    return method


# init/close belong to the worker's lifecycle: a client must not be able to re-run them.
LIFECYCLE_METHODS = frozenset({"init", "close"})


def import_app_class(import_path: str) -> type:
    """Import the class named by ``module:Class`` (no ``:N`` suffix).

    Raises :class:`DirtyAppNotFoundError` when the module or the attribute is missing and
    :class:`DirtyAppError` when the target is not a class.
    """
    module_name, _, class_name = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise DirtyAppNotFoundError(import_path) from exc
        raise  # the module exists but one of its own imports failed: show the real error
    target = module
    for part in class_name.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise DirtyAppNotFoundError(import_path) from exc
    if not inspect.isclass(target):
        raise DirtyAppError(f"{import_path} is not a class", app_path=import_path)
    return target


def load_dirty_app(import_path: str) -> Any:
    """Import and instantiate the app ``module:Class`` (``init()`` is not called here).

    Raises :class:`DirtyAppNotFoundError` for a missing module or class and
    :class:`DirtyAppError` when the object is not a usable app or its constructor fails.
    """
    cls = import_app_class(import_path)
    try:
        app = cls()
    except Exception as exc:  # user code: report it as an app error naming the app
        raise DirtyAppError(f"{import_path}() failed: {exc}", app_path=import_path,
                            error_type=type(exc).__name__) from exc
    missing = [name for name in ("init", "close") if not callable(getattr(app, name, None))]
    if missing or not callable(app):
        raise DirtyAppError(f"{import_path} is not a dirty app (needs init, __call__ and close)",
                            app_path=import_path)
    # Lets resolve_action name the app in its errors without a second lookup table.
    try:
        app._dirty_app_path = import_path
    except AttributeError:  # __slots__ or a frozen object: errors just omit the app path
        pass
    return app


def declared_workers(cls: type) -> int | None:
    """The class attribute ``workers`` when it is a positive int, else None (all workers)."""
    value = getattr(cls, "workers", None)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None
