"""Routing of dirty calls to workers (sans-IO: no sockets, no asyncio; time comes in as ``now``).

The dirty arbiter keeps one :class:`Router`. A call for an app goes only to a worker that has
the app loaded and is accepting work ("ready"); a worker still loading its apps takes none. Each
worker has ``capacity`` slots (``dirty_threads``). Among the ready holders of the app:

1. a holder with a free slot before one that would have to pipeline the call;
2. the least busy (fewest slots in use) first;
3. among equally busy holders, the one this app picked least recently: sequential calls rotate
   over idle holders (40 calls over 4 holders land 10 on each) instead of all landing on the
   first one.

Calls that find every holder full wait in a FIFO queue per app, bounded by ``max_queue`` (past
it: busy). When a worker frees a slot it takes the oldest waiting call among the apps it holds.
An app whose only holders are still loading queues its calls too (they wait for the caller's
timeout); an app nobody holds fails at once.

Batched actions (``@batch``): a worker reports the batched actions of its apps and their
``max_size`` when it is ready. A batched call does not take a slot of its own: ``n`` calls of one
batched action in a worker take ``ceil(n / max_size)`` slots, one per batch. So a call that can
join an open (partly filled) batch costs nothing, and the router prefers that holder, the
fullest open batch first: concurrent calls fill one batch instead of spreading one call per
worker (which would run ``max_size`` times as many invocations of the model). Once a batch is
full the next call opens a new one on the least busy holder, so load still spreads.

Pipelining: when every holder is busy, a worker may be handed :data:`PREFETCH` slot(s) beyond
its capacity. The extra call waits inside the worker and starts the moment a slot frees, instead
of after a reply-and-dispatch round trip through the arbiter; at 10 ms per call that round trip
is several percent of throughput. Its deadline counts from when it can start, not from
dispatch. A pipelined call is marked not ``started``: the worker reports when it starts it, and
if the worker dies first the call is queued again (:meth:`Router.requeue`) for another holder,
since it cannot have run.

Every call gets its own request id on the worker's connection; replies are matched by that id,
so a reply for a call that is no longer pending (timed out, cancelled) is never delivered.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gunicorn.dirty.codec import INITIAL_STREAM_WINDOW
from gunicorn.dirty.errors import DirtyBusyError, DirtyNoWorkersAvailableError

ID_MASK = (1 << 64) - 1
PREFETCH = 1
# (app, action) of a batched action.
BatchKey = tuple[str, str]


class Call:
    """One client request travelling through the arbiter."""

    __slots__ = ("client", "client_id", "app", "action", "body", "seq", "worker", "worker_id",
                 "deadline", "streaming", "credit", "started", "batch", "submitted")

    def __init__(self, client: Any, client_id: int, app: str, body: bytes,
                 action: str = "") -> None:
        self.client = client
        self.client_id = client_id
        self.app = app
        self.action = action
        self.body = body
        self.seq = 0
        self.worker: WorkerState | None = None
        self.worker_id = 0
        self.deadline: float | None = None
        self.streaming = False
        self.credit = INITIAL_STREAM_WINDOW  # chunks the worker may still send (flow control)
        self.started = False  # the worker may have begun running it (False: safe to resend)
        self.batch = 0  # max_size of the batch it joined in its worker (0: not batched)
        self.submitted = 0.0  # when the arbiter received it (monotonic; the duration metric)

    def __repr__(self) -> str:
        return f"<Call {self.app}.{self.action} client_id={self.client_id} " \
               f"worker_id={self.worker_id}>"


@dataclass(eq=False)
class WorkerState:
    """What the router knows of one dirty worker.

    ``apps`` are the apps it serves (loaded); ``loading`` those it is still loading (at boot,
    or an ``init()`` retry): calls for them may wait for it. ``units`` is the number of slots in
    use: one per unbatched call, one per batch of a batched action.
    """

    key: Hashable
    apps: tuple[str, ...]
    capacity: int
    accepting: bool = False
    loading: set[str] = field(default_factory=set)
    batch_sizes: dict[BatchKey, int] = field(default_factory=dict)
    inflight: dict[int, Call] = field(default_factory=dict)
    units: int = 0
    batched: dict[BatchKey, int] = field(default_factory=dict)  # batched calls in flight
    picked: dict[str, int] = field(default_factory=dict)  # app -> when it last chose us
    _next_id: int = 0

    def new_id(self) -> int:
        # Ids wrap at 2**64 and skip 0 (reserved for worker notices) and ids still in use.
        while True:
            self._next_id = (self._next_id + 1) & ID_MASK
            if self._next_id and self._next_id not in self.inflight:
                return self._next_id

    @property
    def free(self) -> int:
        return self.capacity - self.units

    @property
    def pipeline_free(self) -> int:
        return self.capacity + PREFETCH - self.units

    def holds(self, app: str) -> bool:
        """It serves ``app`` or is loading it (calls may wait for it)."""
        return app in self.apps or app in self.loading

    def batch_size(self, call: Call) -> int:
        return self.batch_sizes.get((call.app, call.action), 0) if self.batch_sizes else 0

    def cost(self, call: Call) -> int:
        """Slots ``call`` would add: 0 when it joins an open batch here."""
        size = self.batch_size(call)
        return 1 if not size or not self.batched.get((call.app, call.action), 0) % size else 0

    def fill(self, call: Call) -> int:
        """Calls already in the open batch ``call`` would join (0: none open)."""
        size = self.batch_size(call)
        return self.batched.get((call.app, call.action), 0) % size if size else 0

    def take(self, call: Call) -> None:
        size = self.batch_size(call)
        if size:
            key = (call.app, call.action)
            count = self.batched.get(key, 0)
            if not count % size:
                self.units += 1
            self.batched[key] = count + 1
        else:
            self.units += 1
        call.batch = size

    def release(self, call: Call) -> None:
        if call.batch:
            key = (call.app, call.action)
            count = self.batched.get(key, 1) - 1
            if count:
                self.batched[key] = count
            else:
                self.batched.pop(key, None)
            if not count % call.batch:
                self.units -= 1
        else:
            self.units -= 1
        call.batch = 0


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send ``call`` to ``call.worker`` with id ``call.worker_id``; ``pipelined``: it waits
    inside the worker for a slot (the worker reports when it starts it)."""

    call: Call
    pipelined: bool = False


class Router:
    """Queues and in-flight tables of the dirty arbiter."""

    def __init__(self, timeout: float = 0.0, max_queue: int = 0) -> None:
        self.timeout = timeout
        self.max_queue = max_queue
        self.workers: dict[Hashable, WorkerState] = {}
        self.queues: dict[str, deque[Call]] = {}
        self._seq = itertools.count()
        self._tick = itertools.count()

    # -- workers ------------------------------------------------------------------------------

    def add_worker(self, key: Hashable, apps: Iterable[str], capacity: int,
                   loading: Iterable[str] = ()) -> WorkerState:
        """A new worker serving ``apps`` once accepting, and loading ``loading``."""
        state = WorkerState(key, tuple(apps), max(1, capacity), loading=set(loading))
        self.workers[key] = state
        return state

    def worker_ready(self, key: Hashable, apps: Iterable[str],
                     batch_sizes: Mapping[BatchKey, int], now: float,
                     accepting: bool = True) -> list[Dispatch]:
        """A worker finished loading: it serves ``apps`` and, unless it is already being
        stopped (``accepting=False``), accepts calls; returns the calls it takes from the
        queues."""
        state = self.workers.get(key)
        if state is None:
            return []
        state.apps = tuple(apps)
        state.loading.clear()
        state.batch_sizes = dict(batch_sizes)
        return self.set_accepting(key, accepting, now)

    def app_loading(self, key: Hashable, app: str) -> None:
        """A worker started loading ``app`` again (an ``init()`` retry)."""
        state = self.workers.get(key)
        if state is not None:
            state.loading.add(app)

    def app_loaded(self, key: Hashable, app: str, batch_sizes: Mapping[BatchKey, int],
                   now: float) -> list[Dispatch]:
        """A retry succeeded: the worker serves ``app`` from now on."""
        state = self.workers.get(key)
        if state is None:
            return []
        state.loading.discard(app)
        if app not in state.apps:
            state.apps = (*state.apps, app)
        state.batch_sizes.update(batch_sizes)
        return self._pump(state, now)

    def app_failed(self, key: Hashable, app: str) -> None:
        """Loading ``app`` failed in that worker: it does not hold it (until a retry)."""
        state = self.workers.get(key)
        if state is not None:
            state.loading.discard(app)
            state.apps = tuple(a for a in state.apps if a != app)

    def set_accepting(self, key: Hashable, accepting: bool, now: float) -> list[Dispatch]:
        """Open (booted) or close (retiring) a worker to new calls; return calls it takes."""
        state = self.workers.get(key)
        if state is None:
            return []
        state.accepting = accepting
        return self._pump(state, now) if accepting else []

    def remove_worker(self, key: Hashable) -> list[Call]:
        """Forget a worker (it died); return the calls it held. The caller fails those that
        ``started`` and may :meth:`requeue` the others."""
        state = self.workers.pop(key, None)
        if state is None:
            return []
        calls = list(state.inflight.values())
        state.inflight.clear()
        state.units = 0
        state.batched.clear()
        for call in calls:
            call.worker = None
            call.batch = 0
        return calls

    def holders(self, app: str, ready_only: bool = True) -> list[WorkerState]:
        """Workers serving ``app`` and accepting calls; with ``ready_only=False`` also those
        loading it or retiring (calls may still wait for them)."""
        if ready_only:
            return [w for w in self.workers.values() if w.accepting and app in w.apps]
        return [w for w in self.workers.values() if w.holds(app)]

    # -- calls --------------------------------------------------------------------------------

    def submit(self, call: Call, now: float, may_wait: bool = False) -> Dispatch | None:
        """Route a new call: a Dispatch, or None when it was queued. Raises the error to return
        to the client at once: DirtyNoWorkersAvailableError when no worker holds the app (unless
        ``may_wait``: a replacement is on its way), DirtyBusyError when its queue is full."""
        call.seq = next(self._seq)
        best = self._choose(call)
        if best is not None:
            return self._assign(call, best, now)
        if not may_wait and not self.holders(call.app, ready_only=False):
            raise DirtyNoWorkersAvailableError(call.app)
        queue = self.queues.setdefault(call.app, deque())
        if self.max_queue and len(queue) >= self.max_queue:
            raise DirtyBusyError(call.app, self.max_queue)
        queue.append(call)
        return None

    def _choose(self, call: Call) -> WorkerState | None:
        best: WorkerState | None = None
        best_rank: tuple[int, ...] = ()
        app = call.app
        for state in self.workers.values():
            if not state.accepting or app not in state.apps:
                continue
            cost = state.cost(call)
            used = state.units + cost
            if used > state.capacity + PREFETCH:
                continue
            # Ranked as the module docstring says: start now, join a batch, fullest batch,
            # least busy, least recently picked by this app.
            rank = (used > state.capacity, cost, -state.fill(call), state.units,
                    state.picked.get(app, -1))
            if best is None or rank < best_rank:
                best, best_rank = state, rank
        return best

    def _assign(self, call: Call, state: WorkerState, now: float) -> Dispatch:
        state.take(call)
        # Beyond capacity it waits in the worker (for a batched call that joins an open batch
        # this is conservative: it may be held until a slot frees, never run early).
        pipelined = state.units > state.capacity
        state.picked[call.app] = next(self._tick)
        call.worker = state
        call.worker_id = state.new_id()
        call.started = not pipelined
        call.deadline = None
        if self.timeout > 0:
            start = now
            if pipelined:
                # It cannot start before the running calls end (or time out).
                start = max((c.deadline or now for c in state.inflight.values()), default=now)
            call.deadline = start + self.timeout
        state.inflight[call.worker_id] = call
        return Dispatch(call, pipelined)

    def _pump(self, state: WorkerState, now: float) -> list[Dispatch]:
        """Give ``state`` the oldest waiting calls of its apps while they fit."""
        out: list[Dispatch] = []
        while state.accepting:
            heads = sorted((q for app in state.apps if (q := self.queues.get(app))),
                           key=lambda q: q[0].seq)
            queue = next((q for q in heads
                          if state.units + state.cost(q[0]) <= state.capacity + PREFETCH),
                         None)
            if queue is None:
                break
            out.append(self._assign(queue.popleft(), state, now))
        return out

    def started(self, key: Hashable, worker_id: int) -> None:
        """The worker began running a pipelined call: it can no longer be sent elsewhere."""
        call = self.lookup(key, worker_id)
        if call is not None:
            call.started = True

    def requeue(self, calls: Iterable[Call], now: float) -> list[Dispatch]:
        """Put calls that never started (their worker died) back at the head of their queues,
        in their original order, and dispatch what the ready holders can take now."""
        apps: set[str] = set()
        for call in calls:
            call.worker, call.worker_id, call.started, call.deadline = None, 0, False, None
            queue = self.queues.setdefault(call.app, deque())
            queue.append(call)
            apps.add(call.app)
        for app in apps:
            self.queues[app] = deque(sorted(self.queues[app], key=lambda c: c.seq))
        out: list[Dispatch] = []
        for state in list(self.workers.values()):
            if state.accepting and apps.intersection(state.apps):
                out.extend(self._pump(state, now))
        return out

    def lookup(self, key: Hashable, worker_id: int) -> Call | None:
        state = self.workers.get(key)
        return state.inflight.get(worker_id) if state is not None else None

    def progress(self, call: Call, now: float) -> None:
        """A stream chunk arrived: the timeout bounds the gap between chunks, not the stream."""
        call.streaming = True
        call.credit -= 1
        if call.credit <= 0:
            # Out of credit the worker waits for the reader: slow, not stuck. No deadline until
            # the reader grants more (a gone reader cancels the call instead).
            call.deadline = None
        elif self.timeout > 0:
            call.deadline = now + self.timeout

    def credited(self, call: Call, n: int, now: float) -> None:
        """The reader granted ``n`` more chunks: the worker may produce again, the clock restarts."""
        call.credit += n
        if self.timeout > 0 and call.worker is not None:
            call.deadline = now + self.timeout

    def finish(self, key: Hashable, worker_id: int, now: float) -> tuple[Call | None,
                                                                          list[Dispatch]]:
        """A final reply arrived: the call it ends (None when not pending) and the calls the
        freed slot takes."""
        state = self.workers.get(key)
        if state is None:
            return None, []
        call = state.inflight.pop(worker_id, None)
        if call is None:
            return None, []
        state.release(call)
        call.worker = None
        return call, self._pump(state, now)

    def cancel(self, call: Call, now: float) -> tuple[bool, list[Dispatch]]:
        """Drop ``call`` (caller gone or timed out). Returns whether a worker held it (the caller
        then forwards CANCEL with ``call.worker_id``) and the calls the freed slot takes."""
        state = call.worker
        if state is None:
            queue = self.queues.get(call.app)
            if queue is not None:
                try:
                    queue.remove(call)
                except ValueError:
                    pass
            return False, []
        if state.inflight.pop(call.worker_id, None) is not None:
            state.release(call)
        call.worker = None
        return True, self._pump(state, now)

    def fail_queued(self, app: str) -> list[Call]:
        """Empty the queue of ``app`` (its last holder is gone for good)."""
        queue = self.queues.pop(app, None)
        return list(queue or ())

    def stranded(self) -> list[str]:
        """Apps with waiting calls and no worker that serves or loads them."""
        return [app for app, queue in self.queues.items()
                if queue and not self.holders(app, ready_only=False)]

    def fail_all_queued(self) -> list[Call]:
        """Empty every queue (shutdown: nothing new will be dispatched)."""
        calls = [c for q in self.queues.values() for c in q]
        self.queues.clear()
        return calls

    def expired(self, now: float) -> list[Call]:
        """Calls in flight past their deadline (the caller fails them and recycles workers)."""
        return [call for state in self.workers.values() for call in state.inflight.values()
                if call.deadline is not None and now >= call.deadline]

    def queued(self, app: str) -> int:
        queue = self.queues.get(app)
        return len(queue) if queue else 0

    def drain_all(self) -> list[Call]:
        """Every queued and in-flight call (shutdown)."""
        calls = [c for q in self.queues.values() for c in q]
        self.queues.clear()
        for state in self.workers.values():
            calls.extend(state.inflight.values())
            state.inflight.clear()
        return calls
