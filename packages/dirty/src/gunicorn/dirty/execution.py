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
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from concurrent.futures import Executor
from functools import partial
from typing import Any

from gunicorn.dirty.app import DirtyApp, resolve_action
from gunicorn.dirty.codec import (
    INITIAL_STREAM_WINDOW,
    encode_chunk,
    encode_end,
    encode_error,
    encode_response,
)
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyError,
    DirtyProtocolError,
)

# Chunks a stream may send before the caller grants more: the codec fixes it for both sides.
INITIAL_CREDIT = INITIAL_STREAM_WINDOW
_DONE = object()


def as_dirty_error(exc: BaseException, app_path: str | None, action: str | None) -> DirtyError:
    """An action's exception as it travels: DirtyErrors keep their class, the rest are wrapped."""
    if isinstance(exc, DirtyError):
        return exc
    return DirtyAppError(str(exc) or type(exc).__name__, app_path=app_path, action=action,
                         error_type=type(exc).__name__,
                         traceback="".join(traceback.format_exception(exc)))


class _Running:
    __slots__ = ("app", "action", "waiter", "cancelled", "credit", "wakeup", "pull")

    def __init__(self, app: str, action: str) -> None:
        self.app = app
        self.action = action
        self.waiter: asyncio.Future[Any] | None = None
        self.cancelled = False
        self.credit = INITIAL_CREDIT
        self.wakeup: asyncio.Event | None = None
        self.pull: _SyncPull | None = None  # set while a sync generator streams


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
    """Runs the calls of one worker; ``send(bytes)`` writes a frame to the arbiter."""

    def __init__(self, apps: dict[str, Any], failed: dict[str, DirtyError], threads: Executor,
                 send: Any, heartbeat: Any, log: Any) -> None:
        self.apps = apps
        self.failed = failed
        self.threads = threads
        self.send = send
        self.heartbeat = heartbeat
        self.log = log
        self.calls: dict[int, _Running] = {}
        self.loop = asyncio.get_running_loop()

    # -- entry points (called by the link for each frame) -------------------------------------

    def start(self, rid: int, payload: Any) -> None:
        if not isinstance(payload, dict):
            self.send(encode_error(rid, DirtyProtocolError("REQUEST body is not a map")))
            return
        path, action = payload.get("app"), payload.get("action")
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        if path in self.failed:
            self.send(encode_error(rid, self.failed[path]))
            return
        app = self.apps.get(path)
        if app is None:
            self.send(encode_error(rid, DirtyAppNotFoundError(str(path))))
            return
        running = _Running(path, action)
        self.calls[rid] = running
        self.heartbeat.notify()
        if type(app).__call__ is DirtyApp.__call__:
            # The default dispatch: look the method up here to run coroutines on the loop.
            try:
                method = resolve_action(app, action)
            except DirtyError as exc:
                self._final(rid, encode_error(rid, exc))
                return
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
                try:
                    # Calling an async function only binds its arguments: a bad call is the
                    # one error possible here; the body's errors come out of _await/_stream.
                    result = method(*args, **kwargs)
                except TypeError as exc:
                    self._final(rid, encode_error(rid, as_dirty_error(exc, path, action)))
                    return
                self._continue(rid, running, result)
                return
            target = partial(method, *args, **kwargs)
        else:
            target = partial(app, action, *args, **kwargs)
        future = self.loop.run_in_executor(self.threads, target)
        running.waiter = future
        future.add_done_callback(partial(self._sync_done, rid, running))

    def cancel(self, rid: int) -> None:
        running = self.calls.pop(rid, None)
        if running is None:
            return
        running.cancelled = True
        if running.waiter is not None:
            # A task is cancelled; a sync call still queued for a thread never starts; one
            # already running cannot be stopped and its result is dropped in _sync_done.
            running.waiter.cancel()

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
        """Wait (at most ``timeout`` s) for the calls still owed to a caller (graceful stop)."""
        waiters = [r.waiter for r in self.calls.values() if r.waiter is not None]
        if waiters:
            await asyncio.wait(waiters, timeout=timeout or None)

    def cancel_all(self) -> None:
        for rid in list(self.calls):
            self.cancel(rid)

    # -- completion ---------------------------------------------------------------------------

    def _final(self, rid: int, data: bytes) -> None:
        if self.calls.pop(rid, None) is not None:
            self.send(data)
        self.heartbeat.notify()

    def _sync_done(self, rid: int, running: _Running, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self.calls.pop(rid, None)
            return
        exc = future.exception()
        if exc is not None:
            self._final(rid, encode_error(rid, as_dirty_error(exc, running.app, running.action)))
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
            self._final(rid, encode_error(rid, as_dirty_error(exc, running.app, running.action)))
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
            self._final(rid, encode_error(rid, as_dirty_error(exc, running.app, running.action)))
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
            self._final(rid, encode_error(rid, as_dirty_error(exc, running.app, running.action)))
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
