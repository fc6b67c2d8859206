"""Errors of the ASGI layer.

::

    GunicornError                          gunicorn.errors
    └── ASGIError
        ├── LifespanFailure                lifespan startup/shutdown failed or timed out
        └── ProtocolViolation              local: the app sent an ASGI message the server cannot
                                           accept (wrong order, wrong type, bad status)
    OSError
    └── ClientDisconnected                 remote: send() after the client went away (ASGI 2.4
                                           asks for an OSError subclass here)
"""

from __future__ import annotations

from gunicorn.errors import GunicornError


class ASGIError(GunicornError):
    """Root of the ASGI layer's errors."""


class LifespanFailure(ASGIError):
    """The application's lifespan startup (or shutdown) failed; ``str()`` says why."""


class ProtocolViolation(ASGIError, RuntimeError):
    """The application broke the ASGI message sequence (answered with 500 if nothing was sent)."""


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client has gone away (ASGI HTTP spec 2.4)."""
