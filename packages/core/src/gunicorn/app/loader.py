"""Import the application named on the command line (``module:app``, ``module:create_app()``).

Forms, as gunicorn accepts them:

* ``module`` -- the attribute ``application`` (then ``app``) of ``module``;
* ``module:name`` -- an attribute (dotted attributes allowed: ``pkg.mod:obj.app``);
* ``module:factory()`` or ``module:factory("arg", key=1)`` -- call a factory with literal
  arguments (parsed with ``ast.literal_eval``, never ``eval``).

Every failure raises :class:`~gunicorn.errors.AppImportError` with one line saying what is wrong;
workers exit with code 4 on it, which halts the arbiter instead of a crash loop.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.errors import AppImportError


def _parse_call(expr: str) -> tuple[str, list[Any], dict[str, Any], bool]:
    """Split ``name`` or ``name(args)`` into the dotted name, literal args and kwargs."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        raise AppImportError(f"failed to parse {expr!r} as an attribute name or call") from exc
    if isinstance(node, ast.Call):
        target = ast.unparse(node.func)
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError as exc:
            raise AppImportError(
                f"factory arguments in {expr!r} must be Python literals"
            ) from exc
        return target, args, kwargs, True
    if isinstance(node, (ast.Name, ast.Attribute)):
        return ast.unparse(node), [], {}, False
    raise AppImportError(f"{expr!r} is not an attribute name or a factory call")


def load_app(spec: str) -> Any:
    """Import and return the application callable named by ``spec``."""
    module_name, sep, expr = spec.partition(":")
    if not module_name:
        raise AppImportError(f"no module in application spec {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise AppImportError(f"no module named {module_name!r}") from exc
        raise  # an import inside the user's module failed: show the real traceback
    candidates = [expr] if sep else ["application", "app"]
    for candidate in candidates:
        name, args, kwargs, is_call = _parse_call(candidate)
        obj: Any = module
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            if sep:
                raise AppImportError(
                    f"failed to find attribute {name!r} in {module_name!r}"
                ) from None
            continue
        if is_call:
            try:
                obj = obj(*args, **kwargs)
            except TypeError as exc:
                raise AppImportError(f"error calling the factory {name!r}: {exc}") from exc
        if obj is None:
            raise AppImportError(f"{spec!r} resolved to None")
        if not callable(obj):
            raise AppImportError(f"application object {spec!r} must be callable")
        return obj
    raise AppImportError(
        f"failed to find an application in {module_name!r}: "
        "define 'application' or 'app', or name it as module:name"
    )


def ensure_path(path: str) -> None:
    """Put ``path`` first on sys.path (for ``--chdir`` and ``--pythonpath``)."""
    if path not in sys.path:
        sys.path.insert(0, path)


class AppSource:
    """The application as the arbiter and workers see it.

    With ``--preload`` the arbiter calls :meth:`load` before forking, so workers share the loaded
    app copy-on-write; otherwise each worker calls :meth:`load` after fork. ``--chdir`` and
    ``--pythonpath`` are applied before importing. :meth:`reload` (on HUP, without preload) drops
    the cached object so the next load re-imports from the new config's ``wsgi_app``.
    """

    def __init__(self, spec: str | None, chdir: str | None = None,
                 pythonpath: str | None = None, paste: str | None = None,
                 paste_global: Sequence[str] = ()) -> None:
        self.spec = spec
        self.chdir = chdir
        self.pythonpath = pythonpath
        # An absolute ``path[#name]`` of a PasteDeploy ini file; it wins over ``spec``.
        self.paste = paste
        self.paste_global = list(paste_global)
        self._app: Any = None

    def prepare_path(self) -> None:
        import os

        if self.chdir:
            os.chdir(self.chdir)
        ensure_path(os.getcwd())
        if self.pythonpath:
            for path in reversed(self.pythonpath.split(",")):
                if path.strip():
                    ensure_path(path.strip())

    def load(self) -> Any:
        """Return the application callable, importing it on first use."""
        if self._app is None:
            if self.paste:
                from gunicorn.app.paste import load_paste_app

                self.prepare_path()
                self._app = load_paste_app(self.paste, self.paste_global)
                return self._app
            if not self.spec:
                raise AppImportError("no application module specified")
            self.prepare_path()
            self._app = load_app(self.spec)
        return self._app

    def wsgi(self) -> Any:
        """gunicorn's name for :meth:`load` (third-party workers call ``self.app.wsgi()``)."""
        return self.load()

    @property
    def callable(self) -> Any:
        """The loaded application, or None before the first :meth:`load` (gunicorn's name)."""
        return self._app

    @property
    def loaded(self) -> bool:
        return self._app is not None

    def reload(self, spec: str | None = None) -> None:
        if spec is not None:
            self.spec = spec
        self._app = None
