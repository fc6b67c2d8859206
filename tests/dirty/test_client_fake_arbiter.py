"""A small stand-in for the dirty arbiter, used by the client tests (no tests of its own).

It speaks the real codec on a real Unix socket in tmp_path, from an asyncio loop in a thread.
Each REQUEST runs in its own task, so replies can come back out of order, late, or never.
Actions of the app "t:App" (args[0] is usually a parameter):

    echo x            RESPONSE x
    sleep s, x        RESPONSE x after s seconds (CANCEL cancels the task, recorded)
    late s, x         RESPONSE x after s seconds even if cancelled (tests id-based dropping)
    fail msg          ERROR DirtyAppError(ValueError)
    worker_died       ERROR DirtyWorkerError(worker_id=4242)
    drop              closes the connection without replying
    garbage           writes bytes with a bad magic
    stream n, gap     n CHUNKs {"data": i}, honouring credit, gap seconds apart, then END
    stream_fail n     n CHUNKs then ERROR
    value x           RESPONSE x (a non-stream action called through stream())
STATUS -> RESPONSE {"status": "ok"}; STASH -> ERROR StashKeyNotFoundError(table, key).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from gunicorn.dirty import codec
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import DirtyAppError, DirtyWorkerError, StashKeyNotFoundError
from harness import wait_until


class FakeArbiter:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.AbstractServer | None = None
        self.cancelled: list[int] = []
        self.credits: list[tuple[int, int]] = []
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.finished_streams: list[int] = []
        self.max_unacked = 0
        self._writers: list[asyncio.StreamWriter] = []
        self.start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def start(self) -> None:
        async def go() -> None:
            self.server = await asyncio.start_unix_server(self._serve, self.path)

        self._run(go())

    def stop(self) -> None:
        async def go() -> None:
            assert self.server is not None
            self.server.close()
            for writer in self._writers:
                writer.close()
            await self.server.wait_closed()

        self._run(go())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def wait_cancelled(self, n: int = 1) -> None:
        assert wait_until(lambda: len(self.cancelled) >= n, 5), self.cancelled

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        decoder = codec.FrameDecoder()
        tasks: dict[int, asyncio.Task[None]] = {}
        credit: dict[int, asyncio.Semaphore] = {}
        try:
            while data := await reader.read(65536):
                decoder.feed(data)
                for frame in decoder:
                    rid = frame.request_id
                    if frame.type is MessageType.CANCEL:
                        self.cancelled.append(rid)
                        task = tasks.pop(rid, None)
                        if task is not None:
                            task.cancel()
                    elif frame.type is MessageType.CREDIT:
                        n = frame.payload()["n"]
                        self.credits.append((rid, n))
                        if rid in credit:
                            for _ in range(n):
                                credit[rid].release()
                    elif frame.type is MessageType.STATUS:
                        writer.write(codec.encode_response(rid, {"status": "ok"}))
                    elif frame.type is MessageType.STASH:
                        p = frame.payload()
                        err = StashKeyNotFoundError(p["table"], p["key"])
                        writer.write(codec.encode_error(rid, err))
                    else:
                        req = frame.payload()
                        self.requests.append(req)
                        sem = credit[rid] = asyncio.Semaphore(codec.INITIAL_STREAM_WINDOW)
                        tasks[rid] = asyncio.ensure_future(self._handle(rid, req, writer, sem))
        except (ConnectionError, OSError):
            pass
        finally:
            for task in tasks.values():
                task.cancel()
            writer.close()

    async def _handle(
        self, rid: int, req: dict[str, Any], writer: asyncio.StreamWriter, sem: asyncio.Semaphore
    ) -> None:
        action, args = req["action"], req["args"]
        if action == "echo":
            writer.write(codec.encode_response(rid, args[0]))
        elif action == "sleep":
            await asyncio.sleep(args[0])
            writer.write(codec.encode_response(rid, args[1]))
        elif action == "late":
            try:
                await asyncio.sleep(args[0])
            except asyncio.CancelledError:
                await asyncio.sleep(args[0])  # a sync action that runs on regardless
            writer.write(codec.encode_response(rid, args[1]))
        elif action == "fail":
            err = DirtyAppError(args[0], req["app"], action, "ValueError", "Traceback...")
            writer.write(codec.encode_error(rid, err))
        elif action == "worker_died":
            writer.write(codec.encode_error(rid, DirtyWorkerError("worker died", 4242)))
        elif action == "drop":
            writer.transport.abort()
        elif action == "garbage":
            writer.write(b"XX" + bytes(30))
        elif action in ("stream", "stream_fail"):
            try:
                for i in range(args[0]):
                    await sem.acquire()
                    unacked = codec.INITIAL_STREAM_WINDOW - sem._value  # noqa: SLF001
                    self.max_unacked = max(self.max_unacked, unacked)
                    writer.write(codec.encode_chunk(rid, i))
                    if len(args) > 1 and args[1]:
                        await asyncio.sleep(args[1])
                if action == "stream_fail":
                    err = DirtyAppError("mid-stream", req["app"], action, "RuntimeError")
                    writer.write(codec.encode_error(rid, err))
                else:
                    writer.write(codec.encode_end(rid))
            finally:
                self.finished_streams.append(rid)
        elif action == "value":
            writer.write(codec.encode_response(rid, args[0]))
