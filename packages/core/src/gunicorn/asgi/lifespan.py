"""The ASGI lifespan protocol: one long-running ``lifespan`` scope per worker.

::

    worker                      application
    ------                      -----------
    lifespan.startup      -->
                          <--   lifespan.startup.complete | lifespan.startup.failed
    ... serve requests ...
    lifespan.shutdown     -->                     (graceful stop only; skipped on INT/QUIT)
                          <--   lifespan.shutdown.complete | lifespan.shutdown.failed

Modes (``asgi_lifespan``): ``off`` never calls the app with a lifespan scope; ``on`` makes any
startup problem fatal; ``auto`` treats an app that raises (or returns) before sending anything
as one without lifespan support, but ``lifespan.startup.failed`` is fatal in both modes: the
application said it cannot serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from gunicorn.asgi.errors import LifespanFailure, ProtocolViolation

# gunicorn's ASGI worker waits this long for each phase.
PHASE_TIMEOUT = 30.0


class Lifespan:
    """Drive the lifespan scope of ``app``; ``state`` is the namespace later copied into every
    request scope. After :meth:`startup`, ``supported`` says whether the app took part."""

    def __init__(self, app: Any, mode: str, log: Any, *, timeout: float = PHASE_TIMEOUT) -> None:
        self.app = app
        self.mode = mode
        self.log = log
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        self.supported = False
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._phase: asyncio.Future[str] | None = None
        self._sent_any = False
        self._error: BaseException | None = None
        self._message = ""

    async def startup(self) -> None:
        """Run the startup phase. Raises :class:`LifespanFailure` when the worker must not
        serve; returns normally when startup completed or (auto) the app has no lifespan."""
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._phase = loop.create_future()
        self._task = loop.create_task(self._run())
        await self._queue.put({"type": "lifespan.startup"})
        outcome = await self._wait_phase("startup")
        if outcome == "lifespan.startup.complete":
            self.supported = True
            return
        if outcome == "lifespan.startup.failed":
            raise LifespanFailure(f"application startup failed: {self._message or 'no message'}")
        # The app raised or returned without answering.
        if self.mode == "auto" and not self._sent_any:
            self.log.debug("ASGI lifespan not supported by the application (%s)",
                           self._describe_error())
            return
        raise LifespanFailure(f"lifespan startup did not complete: {self._describe_error()}")

    async def shutdown(self) -> None:
        """Run the shutdown phase (never raises; problems are logged)."""
        task = self._task
        if not self.supported or task is None:
            return
        if not task.done():
            self._phase = asyncio.get_running_loop().create_future()
            await self._queue.put({"type": "lifespan.shutdown"})
            try:
                outcome = await self._wait_phase("shutdown")
            except LifespanFailure as exc:
                self.log.error("ASGI lifespan shutdown: %s", exc)
                outcome = ""
            if outcome == "lifespan.shutdown.failed":
                self.log.error("ASGI lifespan shutdown failed: %s", self._message or "no message")
        if not task.done():
            # Bounded: an app that swallows the cancellation must not hold the worker.
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)

    # -- the application side -------------------------------------------------------------------

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._queue.get, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any app error is reported by the phase waiter
            self._error = exc
            if self.mode == "on" or self._sent_any:
                self.log.error("Exception in ASGI lifespan", exc_info=exc)
        finally:
            phase = self._phase
            if phase is not None and not phase.done():
                phase.set_result("")

    async def _send(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        if kind not in ("lifespan.startup.complete", "lifespan.startup.failed",
                        "lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            raise ProtocolViolation(f"unexpected lifespan message {kind!r}")
        self._sent_any = True
        if kind.endswith(".failed"):
            self._message = str(message.get("message", ""))
        phase = self._phase
        if phase is not None and not phase.done():
            phase.set_result(kind)

    async def _wait_phase(self, name: str) -> str:
        assert self._phase is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._phase), self.timeout)
        except asyncio.TimeoutError:
            raise LifespanFailure(f"lifespan {name} timed out after {self.timeout:g}s") from None

    def _describe_error(self) -> str:
        exc = self._error
        if exc is None:
            return "the application returned without answering"
        return f"{type(exc).__name__}: {exc}"
