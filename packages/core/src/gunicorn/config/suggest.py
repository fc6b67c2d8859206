"""Likely typos: a config-file name or a command-line flag close to a real setting.

The rule for config-file names (a config file is Python, so most names that are not settings
are the user's own helpers and must stay silent):

* only lowercase names are considered; names starting with ``_``, modules and classes never are;
* a function is compared with the server hooks only (``def post_forks(server, worker)``), any
  other value with the other settings only (``workres = 4``);
* "close" is an edit distance (insertions, deletions, substitutions, adjacent swaps) of 1 for
  names of up to 4 characters and of at most 2 for longer ones, so helpers that merely extend a
  setting's name (``keepalive_str``, ``use_loglevel``, ``workers_per_core``) stay silent;
* a name spelled like another setting's command-line flag (``preload`` for ``--preload``,
  ``log_level`` for ``--log-level``, ``keep_alive``) names that setting, when the flag's name
  has at least 6 characters (so short helpers such as ``env`` or ``name`` stay silent).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable
from typing import Any

from gunicorn.config.registry import Registry

FLAG_NAME_MIN = 6


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus swaps of adjacent characters)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _limit(name: str) -> int:
    return 1 if len(name) <= 4 else 2


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``name`` within the distance limit (ties: first in order)."""
    best: tuple[int, str] | None = None
    limit = _limit(name)
    for candidate in candidates:
        if abs(len(candidate) - len(name)) > limit:
            continue
        distance = edit_distance(name, candidate)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def _flag_names(registry: Registry) -> dict[str, str]:
    """``log_level`` -> ``loglevel``: long flags spelled as Python names, for other settings."""
    found: dict[str, str] = {}
    for setting in registry:
        for flag in setting.cli:
            if flag.startswith("--"):
                spelled = flag[2:].replace("-", "_")
                if spelled != setting.name and len(spelled) >= FLAG_NAME_MIN:
                    found.setdefault(spelled, setting.name)
    return found


def likely_setting(name: str, value: Any, registry: Registry) -> str | None:
    """The setting a config-file ``name = value`` (not itself a setting) probably means."""
    if name.startswith("_") or name != name.lower() or not name.isidentifier():
        return None
    if isinstance(value, types.ModuleType) or inspect.isclass(value):
        return None
    is_function = inspect.isfunction(value) or inspect.isbuiltin(value)
    by_flag = _flag_names(registry).get(name)
    if by_flag is not None and (registry.get(by_flag).hook_arity is not None) == is_function:
        return by_flag
    candidates = [s.name for s in registry if (s.hook_arity is not None) == is_function]
    return closest(name, candidates)


def likely_flags(flag: str, flags: Iterable[str]) -> list[str]:
    """Known long flags close to an unknown ``--flag`` (or ``--flag=value``)."""
    typed = flag.split("=", 1)[0]
    if not typed.startswith("--"):
        return []
    near = closest(typed[2:], [f[2:] for f in flags if f.startswith("--")])
    return [f"--{near}"] if near else []
