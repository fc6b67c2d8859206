"""Read backpressure for one asyncio connection.

Bytes keep arriving while the application does not consume a request body (or while a response
is produced and pipelined requests wait): they land in the parser's buffer. :class:`ReadFlow`
counts them and pauses the transport's reading past a high-water mark, so a client cannot make
the worker buffer without bound; reading resumes once the buffer is consumed, or when the
connection no longer needs protecting (it closes, lingers, or changes hands)::

    buffered(n) ── unread > high_water ──> transport.pause_reading()
    consumed()  ── unread = 0 ───────────> transport.resume_reading() (if paused)
    resume()    ─────────────────────────> transport.resume_reading() (if paused)

The write side is :class:`gunicorn.asgi.messages.DrainWaiter` (``pause_writing`` makes
``send()`` wait for ``drain()``).
"""

from __future__ import annotations

from typing import Any

READ_HIGH_WATER = 65536


class ReadFlow:
    """Pauses and resumes reading one transport; ``paused`` says which it is now."""

    __slots__ = ("transport", "high_water", "paused", "_unread")

    def __init__(self, high_water: int = READ_HIGH_WATER) -> None:
        self.transport: Any = None  # set by the protocol's connection_made
        self.high_water = high_water
        self.paused = False
        self._unread = 0

    def buffered(self, size: int) -> None:
        """``size`` more bytes wait unread in the parser."""
        self._unread += size
        if self._unread > self.high_water and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def consumed(self) -> None:
        """Everything buffered has been taken: let the client send more."""
        self._unread = 0
        if self.paused:  # resume(), inlined: this runs after every request
            self.paused = False
            self.transport.resume_reading()

    def resume(self) -> None:
        """Read again whatever is buffered (closing, lingering, handing the transport over)."""
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
