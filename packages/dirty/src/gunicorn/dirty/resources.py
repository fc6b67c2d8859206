"""Resource slots: named sets of tokens the dirty arbiter hands to workers (sans-IO).

``dirty_resources`` declares them (``gpu=0,1,2,3`` or ``gpu=4``, meaning tokens 0..3). A dirty
app declares what each worker that holds it needs (``resources = {"gpu": 1}``). The arbiter's
:class:`ResourcePool` grants tokens to a worker before it is forked, so the worker can export
them before any app module is imported, and takes them back only when the worker has been
reaped: no two live workers ever hold the same token. Tokens are virtual; the app and its
engine own the device the token names.

In the worker, the app sees its tokens as ``self.resources`` (``{"gpu": ["2"]}``) and the
environment carries ``GUNICORN_DIRTY_RESOURCE_GPU=2`` (every token of the worker, comma
separated) and, for the resource named ``gpu``, ``CUDA_VISIBLE_DEVICES=2``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

ENV_PREFIX = "GUNICORN_DIRTY_RESOURCE_"
# The resource whose tokens are also exported as CUDA_VISIBLE_DEVICES.
CUDA_RESOURCE = "gpu"
CUDA_ENV = "CUDA_VISIBLE_DEVICES"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # becomes part of an environment variable name
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")
# app -> resource -> tokens
Grants = dict[str, dict[str, list[str]]]
Needs = Mapping[str, int]


def parse_resources(value: Any) -> dict[str, list[str]]:
    """The ``dirty_resources`` validator: ``NAME=TOKENS`` entries (a list, as ``--dirty-resource``
    gives them, or one string), or a dict ``{name: count | "0,1" | [tokens]}`` from a config file.

    TOKENS is a comma list (``0,1,2,3``) or a count (``4`` means ``0,1,2,3``). Raises ValueError
    naming the bad entry.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        entries: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list | tuple):
        entries = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"{item!r} is not NAME=TOKENS (gpu=0,1 or gpu=2)")
            name, _, tokens = item.partition("=")
            entries.append((name.strip(), tokens.strip()))
    else:
        raise TypeError(f"expected NAME=TOKENS entries or a dict, got {value!r}")
    result: dict[str, list[str]] = {}
    seen: set[str] = set()
    for name, spec in entries:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"resource name {name!r} must be letters, digits and _ "
                             "(it becomes an environment variable name)")
        if name.upper() in seen:
            raise ValueError(f"resource {name!r} is declared twice")
        seen.add(name.upper())
        result[name] = _tokens(name, spec)
    return result


def _tokens(name: str, spec: Any) -> list[str]:
    if isinstance(spec, bool):
        raise ValueError(f"resource {name}: expected a count or tokens, got {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit() and "," not in spec):
        count = int(spec)
        if count < 1:
            raise ValueError(f"resource {name}: the token count must be >= 1, got {count}")
        return [str(i) for i in range(count)]
    items = spec.split(",") if isinstance(spec, str) else spec
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"resource {name}: expected a count or a comma list of tokens")
    tokens = [str(t).strip() for t in items]
    for token in tokens:
        if not _TOKEN.match(token):
            raise ValueError(f"resource {name}: bad token {token!r} (letters, digits, _.:-)")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"resource {name}: a token is listed twice in {spec!r}")
    return tokens


def parse_needs(value: Any, configured: Mapping[str, list[str]]) -> dict[str, int]:
    """A ``DirtyApp.resources`` declaration (``{"gpu": 1}``) checked against the configured
    resources; raises ValueError saying what is wrong."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"resources must be a dict like {{'gpu': 1}}, got {value!r}")
    needs: dict[str, int] = {}
    for name, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"resources[{name!r}] must be an integer >= 1, got {count!r}")
        if name not in configured:
            known = ", ".join(sorted(configured)) or "none"
            raise ValueError(f"needs resource {name!r}, which dirty_resources does not declare "
                             f"(declared: {known})")
        if count > len(configured[name]):
            raise ValueError(f"needs {count} {name} tokens per worker; only "
                             f"{len(configured[name])} exist")
        needs[name] = count
    return needs


def resource_environ(grants: Grants) -> dict[str, str]:
    """The environment a worker holding ``grants`` exports before importing its apps."""
    merged: dict[str, list[str]] = {}
    for per_app in grants.values():
        for name, tokens in per_app.items():
            merged.setdefault(name, []).extend(tokens)
    env = {f"{ENV_PREFIX}{name.upper()}": ",".join(tokens) for name, tokens in merged.items()}
    if CUDA_RESOURCE in merged:
        env[CUDA_ENV] = ",".join(merged[CUDA_RESOURCE])
    return env


class ResourcePool:
    """Who holds which token. Holders are opaque keys (the arbiter uses worker ages)."""

    def __init__(self, tokens: Mapping[str, Iterable[str]]) -> None:
        self.owner: dict[str, dict[str, Hashable | None]] = {
            name: dict.fromkeys(items) for name, items in tokens.items()}

    def free(self, name: str) -> list[str]:
        return [token for token, holder in self.owner.get(name, {}).items() if holder is None]

    def can_grant(self, needs: Needs) -> bool:
        return all(len(self.free(name)) >= count for name, count in needs.items())

    def fit(self, apps: Iterable[str], needs: Mapping[str, Needs]) -> tuple[list[str], list[str]]:
        """Split ``apps`` (in order) into those one worker can be granted tokens for together
        and those it cannot (not enough free tokens left after the ones before)."""
        left = {name: len(self.free(name)) for name in self.owner}
        kept: list[str] = []
        refused: list[str] = []
        for app in apps:
            need = needs.get(app, {})
            if all(left.get(name, 0) >= count for name, count in need.items()):
                for name, count in need.items():
                    left[name] -= count
                kept.append(app)
            else:
                refused.append(app)
        return kept, refused

    def grant(self, holder: Hashable, apps: Iterable[str], needs: Mapping[str, Needs],
              prefer: Grants | None = None) -> Grants:
        """Give ``holder`` the tokens every app in ``apps`` needs, all or nothing.

        Tokens in ``prefer`` (what a dead worker held, for its replacement) go first when free,
        then the lowest free ones. Raises ValueError when the free tokens do not suffice (the
        caller checks with :meth:`fit` first).
        """
        taken: list[tuple[str, str]] = []
        grants: Grants = {}
        try:
            for app in apps:
                for name, count in needs.get(app, {}).items():
                    wanted = (prefer or {}).get(app, {}).get(name, [])
                    free = self.free(name)
                    order = [t for t in wanted if t in free] + [t for t in free
                                                                if t not in wanted]
                    if len(order) < count:
                        raise ValueError(f"only {len(order)} {name} tokens free, {count} needed")
                    for token in order[:count]:
                        self.owner[name][token] = holder
                        taken.append((name, token))
                    grants.setdefault(app, {})[name] = order[:count]
        except ValueError:
            for name, token in taken:
                self.owner[name][token] = None
            raise
        return grants

    def release(self, holder: Hashable) -> list[str]:
        """Free every token of ``holder`` (it was reaped); returns them as ``name:token``."""
        freed = []
        for name, tokens in self.owner.items():
            for token, owner in tokens.items():
                if owner == holder:
                    tokens[token] = None
                    freed.append(f"{name}:{token}")
        return freed

    def view(self, describe: Any) -> list[dict[str, Any]]:
        """Each resource's tokens with their holders (``describe(holder)``) and the free ones."""
        return [{"name": name,
                 "tokens": [{"token": token,
                             "holder": None if holder is None else describe(holder)}
                            for token, holder in tokens.items()],
                 "free": [token for token, holder in tokens.items() if holder is None]}
                for name, tokens in self.owner.items()]
