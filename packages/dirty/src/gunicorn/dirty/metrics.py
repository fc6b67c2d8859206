"""The dirty pool's metrics and its ``/healthz`` section.

Declared in the master by the plugin's ``metrics`` hook (:class:`DirtyMetrics`), recorded by
the dirty arbiter (:class:`ArbiterMeter`), which sees every call from the moment a client asks
to the moment its answer is routed back::

    DirtyPlugin.metrics(families) ──> DirtyMetrics: families + a SharedSnapshot (health)
    dirty arbiter (a sidecar)    ──> ArbiterMeter: a call ends -> finished(call, outcome)
                                               each tick   -> sample(): gauges + snapshot
                                               a reap      -> reaped(pid)
    metrics sidecar              ──> DirtyPlugin.health(cfg) -> health_section(snapshot)

Calls end with one outcome each: ``ok`` (a result, or a stream's end), ``app_error`` (the
worker answered with an error: the action raised, or does not exist), ``timeout``
(``dirty_timeout``), ``busy`` (the app's queue was full, ``dirty_max_queue``), ``worker_died``
(its worker died while running it), ``unavailable`` (no worker could take it: none holds the
app, its load failed, or the pool is stopping), ``cancelled`` (the caller went away or
cancelled). Labels are bounded: ``app`` is one of the configured ``dirty_apps``, ``action``
one of the app's public methods (or a name that once succeeded, up to
:data:`MAX_LEARNED_ACTIONS` per app), else ``other``; ``table`` names the declared stash
tables and at most :data:`MAX_TABLE_LABELS` others, the rest summed as ``other``.

Health rule (:func:`health_section`): the section is ``ok`` while the dirty arbiter reports
(at least every :data:`STALE_AFTER` seconds) and every app is ``ready`` (a ready worker holds
it) or ``starting`` (never ready yet, and a worker is loading it: a pool loading its models at
boot does not fail the probe). An app that has no ready worker and either nobody loading it
(its load failed, no resource tokens, boot failures) or had one before (all its workers died;
replacements are loading) is ``unavailable`` and makes ``/healthz`` 503.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gunicorn.dirty.errors import DirtyBusyError, DirtyError

if TYPE_CHECKING:  # the plugin imports this module in the master: no msgpack there
    from gunicorn.dirty.arbiter import DirtyArbiter
    from gunicorn.dirty.router import Call

OUTCOMES = ("ok", "app_error", "timeout", "busy", "worker_died", "unavailable", "cancelled")
WORKER_STATES = ("loading", "ready", "failed", "retiring")
# Dirty calls run longer than web requests: up to minutes (model inference, reports).
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                120.0, 300.0)
MAX_LEARNED_ACTIONS = 64
MAX_TABLE_LABELS = 32
OTHER = "other"
STALE_AFTER = 10.0
SNAPSHOT_SIZE = 65536


class DirtyMetrics:
    """The families of gunicorn-dirty, declared on the core's ``families`` (any
    :class:`~gunicorn.instrument.metrics.MetricFamilies`), and the health snapshot shared by
    the dirty arbiter and the metrics sidecar (None while metrics are off)."""

    def __init__(self, families: Any) -> None:
        f = self.families = families
        self.calls = f.counter("dirty_calls_total", "Dirty calls, by app, action and outcome.",
                               ("app", "action", "outcome"))
        self.duration = f.histogram("dirty_call_duration_seconds", "Time from a dirty call's "
                                    "arrival in the dirty arbiter to its answer.", ("app",),
                                    buckets=CALL_BUCKETS)
        self.queue = f.gauge("dirty_queue_depth", "Dirty calls waiting for a worker, by app.",
                             ("app",))
        self.workers = f.gauge("dirty_workers", "Dirty workers holding an app, by app and state "
                               "(loading, ready, failed, retiring).", ("app", "state"))
        self.stash_ops = f.counter("stash_operations_total", "Stash operations the dirty "
                                   "arbiter answered, by operation.", ("op",))
        self.stash_keys = f.gauge("stash_keys", "Keys in the dirty arbiter's stash, by table.",
                                  ("table",))
        self.snapshot: Any = None
        if f.enabled:
            from gunicorn.instrument.health import SharedSnapshot

            self.snapshot = SharedSnapshot(SNAPSHOT_SIZE)


class ArbiterMeter:
    """What the dirty arbiter records (see the module docstring). ``actions``: app -> its
    public method names; ``tables``: the declared stash tables; ``ops``: the stash operations."""

    def __init__(self, metrics: DirtyMetrics, apps: Iterable[str],
                 actions: Mapping[str, Iterable[str]], tables: Iterable[str],
                 ops: Iterable[str]) -> None:
        self._m = metrics
        self._apps = list(apps)
        self._actions = {app: set(actions.get(app, ())) for app in self._apps}
        self._learned = {app: 0 for app in self._apps}
        self._tables = set(tables)
        self._ops = frozenset(ops)
        self._children: dict[tuple[str, str, str], Any] = {}
        self._durations = {app: metrics.duration.labels(app) for app in self._apps}
        self._served: set[str] = set()  # apps that have had a ready worker
        self._other_used = False  # some table was counted under "other"

    # -- calls --------------------------------------------------------------------------------

    def _count(self, app: str, action: str, outcome: str) -> None:
        known = self._actions.get(app)
        if known is None:
            return  # not a configured app: never label by what a client sent
        if action not in known:
            if outcome == "ok" and self._learned[app] < MAX_LEARNED_ACTIONS:
                known.add(action)  # it ran, so it is one of the app's actions
                self._learned[app] += 1
            else:
                action = OTHER
        key = (app, action, outcome)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._m.calls.labels(app, action, outcome)
        child.inc()

    def finished(self, call: Call, outcome: str, now: float) -> None:
        """``call`` was answered (or dropped) with ``outcome``."""
        self._count(call.app, call.action, outcome)
        duration = self._durations.get(call.app)
        if duration is not None and call.submitted:
            duration.observe(max(now - call.submitted, 0.0))

    def refused(self, call: Call, error: DirtyError) -> None:
        """``call`` was refused at once (queue full, or no worker for its app)."""
        self._count(call.app, call.action,
                    "busy" if isinstance(error, DirtyBusyError) else "unavailable")

    def stash_op(self, op: Any) -> None:
        self._m.stash_ops.labels(op if op in self._ops else OTHER).inc()

    def reaped(self, pid: int) -> None:
        """A dirty worker was reaped: drop its gauges (an app may record its own metrics)."""
        with contextlib.suppress(OSError):
            self._m.families.process_dead(pid)

    # -- every tick ---------------------------------------------------------------------------

    def sample(self, arbiter: DirtyArbiter, now: float) -> None:
        """Set the gauges from the pool's state and publish the health snapshot."""
        m = self._m
        states = {app: dict.fromkeys(WORKER_STATES, 0) for app in self._apps}
        ready_workers = loading_workers = 0
        for handle in arbiter.supervisor.handles.values():
            ready_workers += handle.booted and not handle.retiring
            loading_workers += not handle.booted and not handle.retiring
            for app in handle.apps:
                if app in states:
                    states[app][_app_state(handle, app)] += 1
        apps: dict[str, Any] = {}
        for app, counts in states.items():
            for state, count in counts.items():
                m.workers.labels(app, state).set(count)
            m.queue.labels(app).set(arbiter.router.queued(app))
            apps[app] = self._app_health(app, counts, arbiter.broken.get(app))
        self._sample_stash(arbiter.stash.key_counts())
        if m.snapshot is not None:
            m.snapshot.publish({
                "time": now, "pid": arbiter.pid, "ready": ready_workers,
                "loading": loading_workers, "expected": arbiter.supervisor.target,
                "apps": apps})

    def _app_health(self, app: str, counts: Mapping[str, int],
                    error: DirtyError | None) -> dict[str, Any]:
        ready, loading = counts["ready"], counts["loading"]
        if ready:
            self._served.add(app)
            state = "ready"
        elif loading and app not in self._served:
            state = "starting"
        else:
            state = "unavailable"
        out: dict[str, Any] = {"state": state, "ready": ready, "loading": loading}
        if error is not None and not ready:
            out["error"] = str(error)[:200]
        return out

    def _sample_stash(self, counts: Mapping[str, int]) -> None:
        other: int | None = None
        for table, keys in counts.items():
            if table not in self._tables and len(self._tables) < MAX_TABLE_LABELS:
                self._tables.add(table)
            if table in self._tables:
                self._m.stash_keys.labels(table).set(keys)
            else:
                other = (other or 0) + keys
        for table in self._tables.difference(counts):
            self._m.stash_keys.labels(table).set(0)  # deleted: its series says so
        if other is not None or self._other_used:
            self._other_used = True
            self._m.stash_keys.labels(OTHER).set(other or 0)


def _app_state(handle: Any, app: str) -> str:
    if handle.retiring:
        return "retiring"
    if not handle.booted or app in handle.loading:
        return "loading"
    return "failed" if app in handle.failed else "ready"


class _NullMeter:
    """Metrics off: the arbiter's hot path pays one method call per event."""

    def finished(self, call: Call, outcome: str, now: float) -> None:
        pass

    def refused(self, call: Call, error: DirtyError) -> None:
        pass

    def stash_op(self, op: Any) -> None:
        pass

    def reaped(self, pid: int) -> None:
        pass

    def sample(self, arbiter: DirtyArbiter, now: float) -> None:
        pass


NULL_METER = _NullMeter()


def arbiter_meter(metrics: DirtyMetrics | None, apps: Iterable[str],
                  traits: Mapping[str, Any], tables: Iterable[str]) -> ArbiterMeter | _NullMeter:
    """The dirty arbiter's recorder: :data:`NULL_METER` while metrics are off. ``traits``:
    app -> :class:`~gunicorn.dirty.probe.AppTraits` (their ``actions`` label the calls)."""
    if metrics is None or not metrics.families.enabled:
        return NULL_METER
    from gunicorn.dirty.stash.store import StashOp

    return ArbiterMeter(metrics, apps, {app: t.actions for app, t in traits.items()}, tables,
                        [op.value for op in StashOp])


def health_section(snapshot: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    """The ``dirty`` section of ``/healthz`` from the arbiter's last snapshot (see the module
    docstring for the rule)."""
    if not snapshot:
        return {"ok": False, "running": False, "ready": 0, "expected": None,
                "reason": "the dirty arbiter has not reported yet"}
    age = now - float(snapshot.get("time") or 0.0)
    running = age <= STALE_AFTER
    apps = snapshot.get("apps") or {}
    unavailable = sorted(app for app, info in apps.items()
                         if info.get("state") not in ("ready", "starting"))
    section: dict[str, Any] = {
        "ok": running and not unavailable, "running": running,
        "pid": snapshot.get("pid"), "last_report_age": round(age, 3),
        "ready": snapshot.get("ready", 0), "loading": snapshot.get("loading", 0),
        "expected": snapshot.get("expected"), "apps": apps,
    }
    if not running:
        section["reason"] = f"no report from the dirty arbiter for {age:.0f}s"
    elif unavailable:
        section["reason"] = "no ready dirty worker for " + ", ".join(unavailable)
    return section
