"""Which dirty worker loads which app (sans-IO: plain data in, plain data out).

Rules (issue 4, and the defects of gunicorn's allocator that we do not repeat):

* an app without a limit is loaded by every worker;
* an app limited to N workers is loaded by the N *least-loaded* workers, so with
  ``Email:2 Image:2 Data:4 Sched:1`` and 9 workers every worker gets one app, instead of four
  workers holding everything and five never starting;
* a worker that would get no app is not started (the caller logs it);
* a replacement inherits exactly the apps of the worker it replaces (the caller passes them);
* removing a worker (TTOU, MANAGE remove) never takes an app below its floor: its declared
  worker count (``workers = N`` or ``:N``), or one holder for an app loaded everywhere. So the
  pool never shrinks below the largest declared count, and a refusal says which app stops it.

Workers are identified by an opaque hashable key (the arbiter uses the worker's age number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from gunicorn.dirty.specs import AppSpec

Apps = tuple[str, ...]


class Allocator:
    """Plans app lists for dirty workers from the resolved :class:`AppSpec` list."""

    def __init__(self, specs: Sequence[AppSpec]) -> None:
        self.specs = list(specs)
        self._order = {spec.import_path: i for i, spec in enumerate(self.specs)}

    @property
    def paths(self) -> list[str]:
        return [spec.import_path for spec in self.specs]

    def limit(self, path: str) -> int | None:
        for spec in self.specs:
            if spec.import_path == path:
                return spec.limit
        return None

    def _sorted(self, apps: list[str]) -> Apps:
        return tuple(sorted(apps, key=self._order.__getitem__))

    def initial(self, count: int) -> list[Apps]:
        """App lists for a fresh pool of at most ``count`` workers (workers with none dropped)."""
        if count <= 0:
            return []
        plans: list[list[str]] = [[] for _ in range(count)]
        for spec in self.specs:
            if spec.limit is None:
                for plan in plans:
                    plan.append(spec.import_path)
        # Largest limits first: they need the most distinct workers, small ones fill the gaps.
        limited = sorted((s for s in self.specs if s.limit is not None),
                         key=lambda s: -(s.limit or 0))
        for spec in limited:
            take = min(spec.limit or 0, count)
            chosen = sorted(range(count), key=lambda i: (len(plans[i]), i))[:take]
            for i in chosen:
                plans[i].append(spec.import_path)
        return [self._sorted(plan) for plan in plans if plan]

    def holders(self, current: Mapping[Hashable, Sequence[str]]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for apps in current.values():
            counts.update(apps)
        return counts

    def for_new_worker(self, current: Mapping[Hashable, Sequence[str]]) -> Apps:
        """The apps one more worker should load (TTIN, MANAGE add); empty: nothing to do."""
        counts = self.holders(current)
        apps = [spec.import_path for spec in self.specs
                if spec.limit is None or counts[spec.import_path] < spec.limit]
        return self._sorted(apps)

    def floor(self, path: str) -> int:
        """The fewest holders ``path`` may be left with: its declared count, else one."""
        return self.limit(path) or 1

    def removable(self, current: Mapping[Hashable, Sequence[str]],
                  order: Sequence[Hashable]) -> tuple[Hashable | None, str]:
        """The first worker in ``order`` whose removal keeps every app at its floor, and "";
        or None and the reason no worker can go (naming the app that holds the pool up)."""
        counts = self.holders(current)
        blocking: str | None = None
        for key in order:
            apps = current.get(key)
            if apps is None:
                continue
            short = [app for app in apps if counts[app] - 1 < self.floor(app)]
            if not short:
                return key, ""
            blocking = blocking or short[0]
        if blocking is None:
            return None, "there is no dirty worker to remove"
        limit = self.limit(blocking)
        declared = f", which declares {limit} worker{'s' if limit != 1 else ''}" if limit else ""
        return None, (f"the remaining workers are the only holders of {blocking}{declared} "
                      f"({counts[blocking]} running)")

    def check(self, path: str) -> bool:
        """Whether ``path`` is a configured app."""
        return path in self._order
