"""Calling user code whose failure must be logged, not propagated.

Server hooks (``worker_exit``, ``child_exit``, ``post_request``, ``dirty_post_fork`` ...) and a
few user callables (a dirty app's ``close()``) run at points where the server has to go on
whatever they raise: a worker that is exiting still exits with its own status, the arbiter keeps
supervising, the connection is still answered. Every such call site goes through
:func:`call_user_hook`, so there is one broad catch for them instead of one per site.

Hooks that are *meant* to stop the server (``on_starting``, ``when_ready``, an ``AppImportError``
at load) are not called through here: their exceptions keep propagating.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def call_user_hook(log: Any, name: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Call ``fn(*args)``; log an exception it raises with its traceback and swallow it.

    Args:
        log: a gunicorn Logger or a stdlib logger (needs ``exception``).
        name: what failed, as the log line names it, e.g. ``"worker_exit hook"``.
        fn: the user callable.
        *args: passed to ``fn`` positionally.

    Returns:
        True when ``fn`` returned, False when it raised an ``Exception`` (logged as
        ``Exception in <name>``). ``BaseException``s (SystemExit, KeyboardInterrupt) propagate:
        a hook that exits on purpose is obeyed.
    """
    try:
        fn(*args)
    except Exception:  # the point of this helper: user code must not break the caller's duty
        log.exception("Exception in %s", name)
        return False
    return True
