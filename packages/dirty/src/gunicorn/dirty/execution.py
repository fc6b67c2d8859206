"""How a dirty worker runs one call: sync, async, or streamed, with cancellation and credits.

* A synchronous action runs in the worker's thread pool; its reply is sent from the event loop.
* An ``async def`` action runs as a task on the worker's loop, so many of them overlap.
* An action returning a generator streams: one pool thread pulls it for the whole stream
  (``next`` may block) and each item is sent as a CHUNK, then END. An async generator is
  iterated on the loop. An exception mid-stream sends ERROR after the chunks already sent.
* Flow control: a stream may send :data:`INITIAL_CREDIT` chunks, plus one more for every credit
  the caller grants (CREDIT frames), so a slow reader slows the producer instead of growing
  buffers in the arbiter.
* CANCEL cancels an async task, closes a generator (its ``finally`` runs) and drops the result of
  a synchronous action that already runs (a thread cannot be interrupted).
* A ``@batch`` action's calls are gathered by a :class:`~gunicorn.dirty.batch_runner.BatchRunner`
  and run together; CANCEL leaves a call out of a batch that has not run yet.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import Executor
from functools import partial
from typing import Any

from gunicorn.dirty.app import DirtyApp, resolve_action
from gunicorn.dirty.batch_runner import BatchRunner
from gunicorn.dirty.batching import BatchSpec, batch_spec
from gunicorn.dirty.codec import (
    INITIAL_STREAM_WINDOW,
    FrameFlag,
    MessageType,
    encode_chunk,
    encode_end,
    encode_error,
    encode_raw,
    encode_response,
)
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyError,
    DirtyProtocolError,
    wrap_app_error,
)

# Chunks a stream may send before the caller grants more: the codec fixes it for both sides.
INITIAL_CREDIT = INITIAL_STREAM_WINDOW
_DONE = object()


class _Running:
    __slots__ = ("app", "action", "waiter", "cancelled", "credit", "wakeup", "pull", "batch")

    def __init__(self, app: str, action: str) -> None:
        self.app = app
        self.action = action
        self.waiter: asyncio.Future[Any] | None = None
        self.cancelled = False
        self.credit = INITIAL_CREDIT
        self.wakeup: asyncio.Event | None = None
        self.pull: _SyncPull | None = None  # set while a sync generator streams
        self.batch: BatchRunner | None = None  # set for a call of a @batch action


class _SyncPull:
    """Pulls a blocking generator in one pool thread for the whole stream.

    Why not ``run_in_executor(next)`` per item: that thread hop costs ~50 us per chunk and
    capped a stream near 10k chunks/s. Here the thread pulls while it holds credit, encodes each
    chunk itself and queues the frame; the loop writes whatever is queued in one go. Items of a
    fast generator are coalesced into few writes; those of a slow one leave as soon as they exist.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, rid: int, credit: int, send: Any,
                 heartbeat: Any) -> None:
        self.loop = loop
        self.rid = rid
        self.send = send
        self.heartbeat = heartbeat
        self.cond = threading.Condition()
        self.credit = credit  # guarded by cond, like everything below
        self.cancelled = False
        self.frames: list[bytes] = []
        self.flush_scheduled = False

    # -- loop thread --------------------------------------------------------------------------

    def grant(self, n: int) -> None:
        with self.cond:
            self.credit += n
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify()

    def flush(self) -> None:
        with self.cond:
            frames, self.frames = self.frames, []
            self.flush_scheduled = False
            if self.cancelled:
                return  # the caller is gone: an item pulled meanwhile goes nowhere
        if frames:
            self.send(b"".join(frames))
            self.heartbeat.notify()

    # -- pool thread --------------------------------------------------------------------------

    def run(self, gen: Any) -> bool:
        """Pull ``gen`` to its end (True) or until stopped (False); raise what it raised."""
        while True:
            with self.cond:
                while self.credit <= 0 and not self.cancelled:
                    self.cond.wait()
                if self.cancelled:
                    return False
                self.credit -= 1
            item = next(gen, _DONE)
            if item is _DONE:
                return True
            frame = encode_chunk(self.rid, item)
            with self.cond:
                self.frames.append(frame)
                schedule, self.flush_scheduled = not self.flush_scheduled, True
            if schedule:
                self.loop.call_soon_threadsafe(self.flush)


class CallExecutor:
    """Runs the calls of one worker; ``send(bytes)`` writes a frame to the arbiter.

    ``capacity`` is the worker's slot count (``dirty_threads``). A REQUEST flagged PIPELINED
    was sent beyond the slots the arbiter knew free: it is held here until a slot frees (or
    it can join an open batch), and a STARTED frame goes out right before it begins, so the
    arbiter knows which calls a dead worker never ran.
    """

    def __init__(self, apps: dict[str, Any], failed: dict[str, DirtyError], threads: Executor,
                 send: Any, heartbeat: Any, log: Any, capacity: int = 1) -> None:
        self.apps = apps
        self.failed = failed
        self.threads = threads
        self.send = send
        self.heartbeat = heartbeat
        self.log = log
        self.capacity = max(1, capacity)
        self.calls: dict[int, _Running] = {}
        self.loop = asyncio.get_running_loop()
        self._busy = 0  # slots in use: unbatched calls, plus one per open or running batch
        # Pipelined calls not started yet: id -> (payload, batch key or None, batch size).
        self._held: dict[int, tuple[dict[str, Any], tuple[str, str] | None, int]] = {}
        self._releasing = False
        self._closing = False  # stopping: held calls stay unstarted (the arbiter resends them)
        self._runners: dict[tuple[str, str], BatchRunner] = {}

    # -- entry points (called by the link for each frame) -------------------------------------

    def start(self, rid: int, payload: Any, flags: int = 0) -> None:
        if not isinstance(payload, dict):
            self.send(encode_error(rid, DirtyProtocolError("REQUEST body is not a map")))
            return
        if flags & FrameFlag.PIPELINED:
            spec = self._spec_for(payload.get("app"), payload.get("action"))
            key = (payload["app"], payload["action"]) if spec is not None else None
            self._held[rid] = (payload, key, spec.max_size if spec is not None else 0)
            self._release_held()
            return
        self._begin(rid, payload)

    def _begin(self, rid: int, payload: dict[str, Any]) -> None:
        # Fields of a wire frame: None when absent (the lookups below then fail as not found).
        path: Any = payload.get("app")
        action: Any = payload.get("action")
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        if path in self.failed:
            self.send(encode_error(rid, self.failed[path]))
            return
        app = self.apps.get(path)
        if app is None:
            self.send(encode_error(rid, DirtyAppNotFoundError(str(path))))
            return
        running = _Running(path, action)
        self.heartbeat.notify()
        if type(app).__call__ is DirtyApp.__call__:
            # The default dispatch: look the method up here to run coroutines on the loop.
            try:
                method = resolve_action(app, action)
            except DirtyError as exc:
                self.send(encode_error(rid, exc))
                return
            spec = batch_spec(method)
            if spec is not None:
                self._join_batch(rid, running, method, spec, args, kwargs)
                return
            self._register(rid, running)
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
                try:
                    # Calling an async function only binds its arguments: a bad call is the
                    # one error possible here; the body's errors come out of _await/_stream.
                    result = method(*args, **kwargs)
                except TypeError as exc:
                    self._final(rid, encode_error(rid, wrap_app_error(exc, path, action)))
                    return
                self._continue(rid, running, result)
                return
            target = partial(method, *args, **kwargs)
        else:
            self._register(rid, running)
            target = partial(app, action, *args, **kwargs)
        future = self.loop.run_in_executor(self.threads, target)
        running.waiter = future
        future.add_done_callback(partial(self._sync_done, rid, running))

    def cancel(self, rid: int) -> None:
        if self._held.pop(rid, None) is not None:
            return  # never started
        running = self._forget(rid)
        if running is None:
            return
        running.cancelled = True
        if running.batch is not None:
            running.batch.discard(rid)  # left out of its batch if that has not run yet
        elif running.waiter is not None:
            # A task is cancelled; a sync call still queued for a thread never starts; one
            # already running cannot be stopped and its result is dropped in _sync_done.
            running.waiter.cancel()
        self._release_held()

    def credit(self, rid: int, n: int) -> None:
        running = self.calls.get(rid)
        if running is None or n <= 0:
            return
        if running.pull is not None:
            running.pull.grant(n)
            return
        running.credit += n
        if running.wakeup is not None:
            running.wakeup.set()

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for the calls still owed to a caller (graceful stop).

        Held (pipelined) calls are not started any more: they never ran, so the arbiter sends
        them to another worker when this one is gone."""
        self._closing = True
        for runner in self._runners.values():
            runner.flush()  # nobody else is coming: run the open batches now
        waiters: list[asyncio.Future[Any]] = [r.waiter for r in self.calls.values()
                                              if r.waiter is not None]
        for runner in self._runners.values():
            waiters.extend(runner.tasks)
        if waiters:
            await asyncio.wait(waiters, timeout=timeout or None)

    def cancel_all(self) -> None:
        self._held.clear()
        for rid in list(self.calls):
            self.cancel(rid)

    # -- slots, held calls, batches -----------------------------------------------------------

    def _register(self, rid: int, running: _Running) -> None:
        self.calls[rid] = running
        self._busy += 1

    def _forget(self, rid: int) -> _Running | None:
        """The call is over for its caller (answered or cancelled): free its slot."""
        running = self.calls.pop(rid, None)
        if running is not None and running.batch is None:
            self._busy -= 1
        return running

    def _release_held(self) -> None:
        """Start held calls while they fit, each announced by STARTED before it begins."""
        if self._releasing or self._closing:
            return  # (a call started below finished at once: the loop below goes on)
        self._releasing = True
        try:
            while self._held:
                ready = self._releasable()
                if not ready:
                    break
                self.send(b"".join(encode_raw(MessageType.STARTED, rid, b"")
                                   for rid, _ in ready))
                for rid, payload in ready:
                    self._begin(rid, payload)
        finally:
            self._releasing = False

    def _releasable(self) -> list[tuple[int, dict[str, Any]]]:
        # The held calls, oldest first, that fit now: into a free slot, or into the room an
        # open batch of their action has (counted as the calls before them would fill it).
        busy = self._busy
        room = {key: r.room() for key, r in self._runners.items() if r.open is not None}
        out = []
        for rid, (payload, key, size) in self._held.items():
            if key is not None and room.get(key, 0) > 0:
                room[key] -= 1
            elif busy < self.capacity:
                busy += 1
                if key is not None:
                    room[key] = size - 1
            else:
                break
            out.append((rid, payload))
        for rid, _ in out:
            del self._held[rid]
        return out

    def _spec_for(self, path: Any, action: Any) -> BatchSpec | None:
        app = self.apps.get(path) if isinstance(path, str) else None
        if (app is None or not isinstance(action, str) or action.startswith("_")
                or type(app).__call__ is not DirtyApp.__call__):
            return None
        return batch_spec(getattr(type(app), action, None))

    def _join_batch(self, rid: int, running: _Running, method: Any, spec: BatchSpec,
                    args: list[Any], kwargs: dict[str, Any]) -> None:
        path, action = running.app, running.action
        if kwargs or len(args) != 1:
            self.send(encode_error(rid, DirtyAppError(
                f"batched action {action} takes exactly one input per call (got "
                f"{len(args)} arguments{' and keyword arguments' if kwargs else ''})",
                app_path=path, action=action, error_type="TypeError")))
            return
        runner = self._runners.get((path, action))
        if runner is None:
            runner = self._runners[(path, action)] = BatchRunner(
                spec, method, path, action, self.threads, self._deliver, self._batch_opened,
                self._batch_closed)
        self.calls[rid] = running
        running.batch = runner
        runner.add(rid, args[0])

    def _batch_opened(self) -> None:
        self._busy += 1

    def _batch_closed(self) -> None:
        self._busy -= 1
        self._release_held()

    def _deliver(self, outcomes: list[tuple[int, Any]]) -> None:
        """Answer the callers of one batch, in one write."""
        frames = []
        for rid, value in outcomes:
            if self._forget(rid) is None:
                continue  # gave up meanwhile: its output is dropped
            if isinstance(value, DirtyError):
                frames.append(encode_error(rid, value))
                continue
            try:
                frames.append(encode_response(rid, value))
            except DirtyError as exc:  # this output cannot travel; the others still do
                frames.append(encode_error(rid, exc))
        if frames:
            self.send(b"".join(frames))
        self.heartbeat.notify()

    # -- completion ---------------------------------------------------------------------------

    def _final(self, rid: int, data: bytes) -> None:
        if self._forget(rid) is not None:
            self.send(data)
            self._release_held()
        self.heartbeat.notify()

    def _sync_done(self, rid: int, running: _Running, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            if self._forget(rid) is not None:
                self._release_held()
            return
        exc = future.exception()
        if exc is not None:
            self._final(rid, encode_error(rid, wrap_app_error(exc, running.app, running.action)))
            return
        result = future.result()
        if running.cancelled:
            if inspect.isgenerator(result):
                self.loop.run_in_executor(self.threads, result.close)
            elif inspect.iscoroutine(result) or inspect.isasyncgen(result):
                _discard(result)
            return
        self._continue(rid, running, result)

    def _continue(self, rid: int, running: _Running, result: Any) -> None:
        """Route a result: stream it, await it, or send it as the one RESPONSE."""
        if inspect.isgenerator(result):
            running.waiter = self.loop.create_task(self._stream_sync(rid, running, result))
        elif inspect.isasyncgen(result):
            running.waiter = self.loop.create_task(self._stream_async(rid, running, result))
        elif inspect.isawaitable(result):
            running.waiter = self.loop.create_task(self._await(rid, running, result))
        else:
            self._respond(rid, running, result)

    def _respond(self, rid: int, running: _Running, result: Any) -> None:
        try:
            data = encode_response(rid, result)
        except DirtyError as exc:  # not msgpack-able or too big: the error names the type
            data = encode_error(rid, exc)
        self._final(rid, data)

    async def _await(self, rid: int, running: _Running, awaitable: Any) -> None:
        try:
            result = await awaitable
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the action's own error goes back to its caller
            self._final(rid, encode_error(rid, wrap_app_error(exc, running.app, running.action)))
            return
        self._continue(rid, running, result)

    # -- streams ------------------------------------------------------------------------------

    async def _credit(self, running: _Running) -> None:
        while running.credit <= 0:
            if running.wakeup is None:
                running.wakeup = asyncio.Event()
            running.wakeup.clear()
            await running.wakeup.wait()
        running.credit -= 1

    def _chunk(self, rid: int, item: Any) -> None:
        self.send(encode_chunk(rid, item))
        self.heartbeat.notify()

    async def _stream_sync(self, rid: int, running: _Running, gen: Any) -> None:
        pull = running.pull = _SyncPull(self.loop, rid, running.credit, self.send,
                                        self.heartbeat)
        pulling = self.loop.run_in_executor(self.threads, pull.run, gen)
        try:
            # Shielded: cancelling the task must not mark the future done while the thread
            # still runs the generator, or close() below would find it busy.
            finished = await asyncio.shield(pulling)
            pull.flush()  # chunks still queued go out before the END
            if finished:
                self._final(rid, encode_end(rid))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # mid-stream failure: ERROR after the chunks already sent
            pull.flush()
            self._final(rid, encode_error(rid, wrap_app_error(exc, running.app, running.action)))
        finally:
            pull.stop()
            if not pulling.done():
                await asyncio.wait([pulling])
            await self._close(self.loop.run_in_executor(self.threads, gen.close), running)

    async def _stream_async(self, rid: int, running: _Running, agen: Any) -> None:
        try:
            async for item in agen:
                await self._credit(running)
                self._chunk(rid, item)
            self._final(rid, encode_end(rid))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # mid-stream failure: ERROR after the chunks already sent
            self._final(rid, encode_error(rid, wrap_app_error(exc, running.app, running.action)))
        finally:
            await self._close(agen.aclose(), running)

    async def _close(self, closing: Any, running: _Running) -> None:
        try:
            await closing
        except Exception:  # user code in the generator's finally: log it, the call is over
            self.log.exception("Closing the stream of %s.%s failed", running.app, running.action)


def _discard(obj: Any) -> None:
    """Close a coroutine or async generator nobody will run (avoids 'never awaited' noise)."""
    close = getattr(obj, "close", None)
    if close is not None and inspect.iscoroutine(obj):
        close()
