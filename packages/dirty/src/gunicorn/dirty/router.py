"""Routing of dirty calls to workers (sans-IO: no sockets, no asyncio; time comes in as ``now``).

The dirty arbiter keeps one :class:`Router`. A call for an app goes only to a worker that loaded
the app and is accepting work, the least busy one first (fewest calls in flight), and each
worker holds at most ``capacity`` calls at once (``dirty_threads``). Calls that find every
holder full wait in a FIFO queue per app, bounded by ``max_queue`` (past it: busy). When a worker
frees a slot it takes the oldest waiting call among the apps it holds.

Every call gets its own request id on the worker's connection; replies are matched by that id,
so a reply for a call that is no longer pending (timed out, cancelled) is never delivered.

Pipelining: when every holder is busy, a worker may be handed :data:`PREFETCH` call(s) beyond its
capacity. The extra call waits inside the worker and starts the moment a slot frees, instead of
after a reply-and-dispatch round trip through the arbiter; at 10 ms per call that round trip is
several percent of throughput. Its deadline counts from when it can start, not from dispatch.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gunicorn.dirty.codec import INITIAL_STREAM_WINDOW
from gunicorn.dirty.errors import DirtyBusyError, DirtyNoWorkersAvailableError

ID_MASK = (1 << 64) - 1
PREFETCH = 1


class Call:
    """One client request travelling through the arbiter."""

    __slots__ = ("client", "client_id", "app", "body", "seq", "worker", "worker_id",
                 "deadline", "streaming", "credit")

    def __init__(self, client: Any, client_id: int, app: str, body: bytes, seq: int = 0) -> None:
        self.client = client
        self.client_id = client_id
        self.app = app
        self.body = body
        self.seq = seq
        self.worker: WorkerState | None = None
        self.worker_id = 0
        self.deadline: float | None = None
        self.streaming = False
        self.credit = INITIAL_STREAM_WINDOW  # chunks the worker may still send (flow control)

    def __repr__(self) -> str:
        return f"<Call {self.app} client_id={self.client_id} worker_id={self.worker_id}>"


@dataclass(eq=False)
class WorkerState:
    """What the router knows of one dirty worker."""

    key: Hashable
    apps: tuple[str, ...]
    capacity: int
    accepting: bool = False
    inflight: dict[int, Call] = field(default_factory=dict)
    _next_id: int = 0

    def new_id(self) -> int:
        # Ids wrap at 2**64 and skip 0 (reserved for worker notices) and ids still in use.
        while True:
            self._next_id = (self._next_id + 1) & ID_MASK
            if self._next_id and self._next_id not in self.inflight:
                return self._next_id

    @property
    def free(self) -> int:
        return self.capacity - len(self.inflight)

    @property
    def pipeline_free(self) -> int:
        return self.capacity + PREFETCH - len(self.inflight)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send ``call`` to ``call.worker`` with id ``call.worker_id``."""

    call: Call


class Router:
    """Queues and in-flight tables of the dirty arbiter."""

    def __init__(self, timeout: float = 0.0, max_queue: int = 0) -> None:
        self.timeout = timeout
        self.max_queue = max_queue
        self.workers: dict[Hashable, WorkerState] = {}
        self.queues: dict[str, deque[Call]] = {}
        self._seq = itertools.count()

    # -- workers ------------------------------------------------------------------------------

    def add_worker(self, key: Hashable, apps: Iterable[str], capacity: int) -> WorkerState:
        state = WorkerState(key, tuple(apps), max(1, capacity))
        self.workers[key] = state
        return state

    def set_accepting(self, key: Hashable, accepting: bool, now: float) -> list[Dispatch]:
        """Open (booted) or close (retiring) a worker to new calls; return calls it takes."""
        state = self.workers.get(key)
        if state is None:
            return []
        state.accepting = accepting
        return self._pump(state, now) if accepting else []

    def remove_worker(self, key: Hashable) -> list[Call]:
        """Forget a worker (it died); return the calls it held, which the caller fails."""
        state = self.workers.pop(key, None)
        if state is None:
            return []
        calls = list(state.inflight.values())
        state.inflight.clear()
        for call in calls:
            call.worker = None
        return calls

    def holders(self, app: str, accepting_only: bool = True) -> list[WorkerState]:
        return [w for w in self.workers.values()
                if app in w.apps and (w.accepting or not accepting_only)]

    # -- calls --------------------------------------------------------------------------------

    def submit(self, call: Call, now: float) -> Dispatch | None:
        """Route a new call: a Dispatch, or None when it was queued. Raises the error to return
        to the client at once (no worker holds the app, or its queue is full)."""
        call.seq = next(self._seq)
        best: WorkerState | None = None
        for state in self.workers.values():
            if state.accepting and call.app in state.apps and state.free > 0 and (
                    best is None or len(state.inflight) < len(best.inflight)):
                best = state
        if best is None:
            for state in self.workers.values():
                if state.accepting and call.app in state.apps and state.pipeline_free > 0 and (
                        best is None or len(state.inflight) < len(best.inflight)):
                    best = state
        if best is not None:
            return self._assign(call, best, now)
        if not self.holders(call.app, accepting_only=False):
            raise DirtyNoWorkersAvailableError(call.app)
        queue = self.queues.setdefault(call.app, deque())
        if self.max_queue and len(queue) >= self.max_queue:
            raise DirtyBusyError(call.app, self.max_queue)
        queue.append(call)
        return None

    def _assign(self, call: Call, state: WorkerState, now: float) -> Dispatch:
        call.worker = state
        call.worker_id = state.new_id()
        call.deadline = None
        if self.timeout > 0:
            start = now
            if state.free <= 0:
                # Pipelined: it cannot start before the running calls end (or time out).
                start = max((c.deadline or now for c in state.inflight.values()), default=now)
            call.deadline = start + self.timeout
        state.inflight[call.worker_id] = call
        return Dispatch(call)

    def _pump(self, state: WorkerState, now: float) -> list[Dispatch]:
        """Give ``state`` the oldest waiting calls of its apps while it has free slots."""
        out: list[Dispatch] = []
        while state.accepting and state.pipeline_free > 0:
            queue = min((q for app in state.apps if (q := self.queues.get(app))),
                        key=lambda q: q[0].seq, default=None)
            if queue is None:
                break
            out.append(self._assign(queue.popleft(), state, now))
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
        state.inflight.pop(call.worker_id, None)
        call.worker = None
        return True, self._pump(state, now)

    def fail_queued(self, app: str) -> list[Call]:
        """Empty the queue of ``app`` (its last holder is gone for good)."""
        queue = self.queues.pop(app, None)
        return list(queue or ())

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


