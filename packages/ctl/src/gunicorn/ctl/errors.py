"""Errors raised by :class:`gunicorn.ctl.ControlClient`.

::

    ControlError
    ├── ControlConnectionError    the socket cannot be reached, or the connection broke
    │   └── ControlTimeoutError   no reply within the client's timeout
    ├── ControlCommandError       the server answered with an error (unknown command, bad usage)
    └── ControlResponseError      the server's bytes are not a valid reply

``gunictl`` exits with 3 for a ControlConnectionError, 1 for the others.
"""

from __future__ import annotations


class ControlError(Exception):
    """Root of the control client's errors."""


class ControlConnectionError(ControlError):
    """The control socket at ``path`` cannot be reached, or the connection was lost."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class ControlTimeoutError(ControlConnectionError):
    """The server did not answer within the timeout."""


class ControlCommandError(ControlError):
    """The server refused or failed the command; ``str(err)`` is its message."""


class ControlResponseError(ControlError):
    """The server sent something that is not a reply (a protocol bug or a foreign socket)."""
