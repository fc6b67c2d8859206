"""How a dirty worker runs one ``@batch`` action: gather, invoke once, answer each caller.

One :class:`BatchRunner` per batched action of a loaded app. Calls are added with their one
input; the first input of a batch starts a ``max_wait`` timer, and the batch is launched when
the timer fires or ``max_size`` inputs are in, whichever comes first. A launched batch runs as
one task: an ``async def`` action on the worker's loop, a sync one in the worker's thread pool.

Slots: an open or running batch takes one of the worker's ``dirty_threads`` slots, whatever
the number of callers in it (the dirty arbiter counts the same way, see
:mod:`gunicorn.dirty.router`). The runner reports ``opened``/``closed`` to its owner.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from gunicorn.dirty.batching import BatchSpec
from gunicorn.dirty.errors import DirtyAppError, DirtyError, wrap_app_error

# (request id, output or the error for that caller)
Outcome = tuple[int, Any]


class _Batch:
    __slots__ = ("items", "timer")

    def __init__(self) -> None:
        self.items: dict[int, Any] = {}  # request id -> input, in arrival order
        self.timer: asyncio.TimerHandle | None = None


class BatchRunner:
    """The open batch and the running ones of one batched action in one worker.

    ``deliver(outcomes)`` answers the callers (each outcome's value is the caller's output, or
    a DirtyError); ``opened()``/``closed()`` track the slot each batch takes.
    """

    def __init__(self, spec: BatchSpec, method: Callable[[list[Any]], Any], app_path: str,
                 action: str, threads: Executor, deliver: Callable[[list[Outcome]], None],
                 opened: Callable[[], None], closed: Callable[[], None]) -> None:
        self.spec = spec
        self.method = method
        self.app_path = app_path
        self.action = action
        self.threads = threads
        self.deliver = deliver
        self.opened = opened
        self.closed = closed
        self.loop = asyncio.get_running_loop()
        self.open: _Batch | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.is_async = inspect.iscoroutinefunction(method)

    def room(self) -> int:
        """Inputs the open batch still takes (0: no open batch)."""
        return self.spec.max_size - len(self.open.items) if self.open is not None else 0

    def add(self, rid: int, value: Any) -> None:
        batch = self.open
        if batch is None:
            batch = self.open = _Batch()
            self.opened()
            batch.timer = self.loop.call_later(self.spec.max_wait, self._launch, batch)
        batch.items[rid] = value
        if len(batch.items) >= self.spec.max_size:
            self._launch(batch)

    def discard(self, rid: int) -> None:
        """A caller gave up: leave it out of the open batch (a running one cannot change)."""
        batch = self.open
        if batch is None or batch.items.pop(rid, _MISSING) is _MISSING or batch.items:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self.open = None
        self.closed()

    def flush(self) -> None:
        """Launch the open batch now (graceful stop: nobody else is coming)."""
        if self.open is not None:
            self._launch(self.open)

    def _launch(self, batch: _Batch) -> None:
        if batch is not self.open:
            return  # already launched (full, then the timer fired)
        self.open = None
        if batch.timer is not None:
            batch.timer.cancel()
        task = self.loop.create_task(self._run(list(batch.items.items())))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, items: list[tuple[int, Any]]) -> None:
        rids = [rid for rid, _ in items]
        inputs = [value for _, value in items]
        try:
            try:
                if self.is_async:
                    result = await self.method(inputs)
                else:
                    result = await self.loop.run_in_executor(self.threads, self.method, inputs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the action's own error goes to every caller of the batch
                error = wrap_app_error(exc, self.app_path, self.action)
                self.deliver([(rid, error) for rid in rids])
                return
            wrong = self._check(result, len(inputs))
            if wrong is not None:
                self.deliver([(rid, wrong) for rid in rids])
                return
            self.deliver(list(zip(rids, result, strict=True)))
        finally:
            self.closed()

    def _check(self, result: Any, expected: int) -> DirtyError | None:
        if isinstance(result, list | tuple) and len(result) == expected:
            return None
        got = (f"{len(result)} results" if isinstance(result, list | tuple)
               else f"a {type(result).__name__}")
        return DirtyAppError(
            f"batched action {self.action} returned {got} for {expected} inputs: it must "
            f"return a list with one output per input, in order",
            app_path=self.app_path, action=self.action, error_type="BatchResultError")


_MISSING = object()
