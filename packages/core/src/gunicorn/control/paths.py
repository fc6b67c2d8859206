"""Where the control socket lives; shared by the server and ``gunictl`` so they agree.

The default is computed when it is needed, never at import time: ``$XDG_RUNTIME_DIR`` may be
created by the session manager after Python started, and a test (or a container entry point)
may change ``$HOME`` before starting the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SOCKET_NAME = "gunicorn.ctl"
HOME_SUBDIR = ".gunicorn"


def default_socket_path(environ: Mapping[str, str] | None = None) -> str | None:
    """``$XDG_RUNTIME_DIR/gunicorn.ctl`` if that directory exists, else
    ``~/.gunicorn/gunicorn.ctl``; None when there is no runtime dir and no home either."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, SOCKET_NAME)
    home = env.get("HOME")
    if home is None and environ is None:
        expanded = os.path.expanduser("~")  # falls back to the password database
        home = expanded if expanded != "~" else None
    if not home or not os.path.isabs(home):
        return None
    return os.path.join(home, HOME_SUBDIR, SOCKET_NAME)


def resolve_socket_path(configured: str | None, cwd: str | None = None,
                        environ: Mapping[str, str] | None = None) -> str | None:
    """The absolute socket path for a ``control_socket`` value (None or empty: the default).

    A relative path is taken from ``cwd`` (default: the current directory), ``~`` is expanded.
    Returns None only when the default is wanted and cannot be determined.
    """
    path = configured or default_socket_path(environ)
    if path is None:
        return None
    path = os.path.expanduser(path)
    return os.path.abspath(os.path.join(cwd or os.getcwd(), path))
