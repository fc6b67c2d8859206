"""The root of gunicorn-core's exceptions.

::

    GunicornError
    ├── ConfigError            a setting has a bad value (exit code 2 before anything forks)
    ├── AppImportError         the application named on the command line cannot be loaded (exit 4)
    ├── PluginError            a plugin failed to load or registered something invalid
    ├── UnsafePathError        a directory or file the server would trust is not safe to trust
    └── HaltServer             the arbiter must stop (worker boot failure, app load failure)

Protocol errors of the HTTP/1.1 engine have their own tree in :mod:`gunicorn.http.errors`, rooted
at ``HTTPError`` which also derives from :class:`GunicornError`.
"""

from __future__ import annotations


class GunicornError(Exception):
    """Root of every error raised by gunicorn-core."""


class ConfigError(GunicornError):
    """A setting has an invalid value, or a config file cannot be loaded.

    ``setting`` names the setting (``None`` when the error is not about one setting, e.g. a config
    file with a syntax error). ``str(err)`` is one line fit to print before exiting with code 2.
    """

    def __init__(self, setting: str | None, message: str) -> None:
        self.setting = setting
        self.message = message
        super().__init__(f"{setting}: {message}" if setting else message)


class AppImportError(GunicornError):
    """The WSGI/ASGI application cannot be imported or is not callable."""


class PluginError(GunicornError):
    """A plugin could not be loaded or registered something invalid."""


class UnsafePathError(GunicornError):
    """A private directory, socket directory or record file fails the ownership, type or mode
    rules of :mod:`gunicorn.private_dir`; the message names the path and the reason."""


class HaltServer(GunicornError):
    """Raised in the arbiter to stop the whole server with ``exit_status``."""

    def __init__(self, reason: str, exit_status: int = 1) -> None:
        self.reason = reason
        self.exit_status = exit_status
        super().__init__(reason)
