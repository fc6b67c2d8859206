"""Errors of the control channel, shared by the server (gunicorn-core) and gunicorn.ctl.

::

    GunicornError
    └── ControlProtocolError      the bytes on the control socket break the framing rules
        ├── FrameTooLarge         a length prefix above the limit: the stream cannot resync
        ├── MalformedFrame        a frame that is not a UTF-8 JSON object (the stream is intact)
        └── MalformedMessage      a JSON object without the fields of a request or reply
    ValueError
    └── CommandError              a command that cannot be carried out (``worker add x``,
                                  ``dirty add`` without gunicorn-dirty)

``fatal`` tells the reader whether it can go on with the next frame: only a too-large frame
leaves the stream unusable, because its payload was never read.

Plugin command handlers signal usage errors with a plain ``ValueError``; the core's own
handlers raise :class:`CommandError`, a ``ValueError`` too, so both become the same error reply
carrying the message as it is.
"""

from __future__ import annotations

from gunicorn.errors import GunicornError


class ControlProtocolError(GunicornError):
    """The peer sent bytes that are not a valid control frame."""

    fatal = False


class FrameTooLarge(ControlProtocolError):
    """A frame announced (or an encoder was given) more bytes than the limit allows."""

    fatal = True

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame too large: {size} bytes (limit {limit})")


class MalformedFrame(ControlProtocolError):
    """A complete frame whose payload is not a UTF-8 JSON object."""


class MalformedMessage(ControlProtocolError):
    """A JSON object that lacks or mistypes the fields of a request or a reply."""


class CommandError(ValueError):
    """A control command used wrongly or refused; the message is sent to the client as it is."""
