"""gunicorn-ctl: ``gunictl`` and the :class:`ControlClient` Python API (see docs/ctl.md)."""

from gunicorn.ctl.client import ControlClient, socket_path
from gunicorn.ctl.errors import (
    ControlCommandError,
    ControlConnectionError,
    ControlError,
    ControlResponseError,
    ControlTimeoutError,
)

__all__ = [
    "ControlClient",
    "ControlCommandError",
    "ControlConnectionError",
    "ControlError",
    "ControlResponseError",
    "ControlTimeoutError",
    "socket_path",
]
