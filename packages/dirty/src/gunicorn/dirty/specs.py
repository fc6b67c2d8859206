"""Dirty app specs: ``module:Class`` or ``module:Class:N`` (sans-IO, no imports of user code).

The syntax is checked in the master before anything forks (a bad spec is a configuration
error, exit 2). How many workers load an app is decided in this order: the ``:N`` suffix, then
the class attribute ``workers`` (read by importing the class, which only the dirty arbiter
does), then "every worker".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

# A dotted module path, then a (possibly dotted) attribute path: both Python identifiers.
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_SPEC = re.compile(rf"^(?P<module>{_DOTTED}):(?P<cls>{_DOTTED})(?::(?P<n>[^:]*))?$")


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One configured dirty app.

    ``import_path`` is ``module:Class`` (the name clients use); ``limit`` is the most workers
    that load it (``None``: all of them); ``explicit`` says the limit came from a ``:N`` suffix
    (then the class attribute is not consulted).
    """

    import_path: str
    limit: int | None = None
    explicit: bool = False
    original: str = ""


def parse_spec(text: str) -> AppSpec:
    """Parse one ``dirty_apps`` entry; raise ValueError with a message naming the entry."""
    if not isinstance(text, str):
        raise ValueError(f"expected 'module:Class[:N]', got {text!r}")
    spec = text.strip()
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"{text!r} is not 'module:Class' or 'module:Class:N'")
    import_path = f"{match['module']}:{match['cls']}"
    count = match["n"]
    if count is None:
        return AppSpec(import_path, None, False, spec)
    try:
        limit = int(count)
    except ValueError:
        raise ValueError(f"{text!r}: the worker count {count!r} is not an integer") from None
    if limit < 1:
        raise ValueError(f"{text!r}: the worker count must be >= 1, got {limit}")
    return AppSpec(import_path, limit, True, spec)


def parse_specs(entries: Iterable[str]) -> list[AppSpec]:
    """Parse every entry; a path given twice is an error (which limit would win?)."""
    specs: list[AppSpec] = []
    seen: set[str] = set()
    for entry in entries:
        spec = parse_spec(entry)
        if spec.import_path in seen:
            raise ValueError(f"{spec.import_path} is listed more than once")
        seen.add(spec.import_path)
        specs.append(spec)
    return specs


def resolve_limits(specs: Iterable[AppSpec],
                   class_limit: Callable[[str], int | None]) -> list[AppSpec]:
    """Fill in limits from the class attribute for specs without a ``:N`` suffix.

    ``class_limit(import_path)`` returns the class's ``workers`` (or None); it is where the
    import happens, so the caller decides how failures are reported.
    """
    return [spec if spec.explicit else replace(spec, limit=class_limit(spec.import_path))
            for spec in specs]
