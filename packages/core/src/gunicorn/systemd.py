"""systemd integration: socket activation (``LISTEN_FDS``) and readiness (``sd_notify``).

Socket activation passes listening sockets as fds 3, 4, ... with ``LISTEN_PID`` naming the
process they are meant for; a child that inherits the variables must not take them, hence the
pid check. Readiness is a datagram such as ``READY=1`` sent to ``$NOTIFY_SOCKET`` (a leading
``@`` means the Linux abstract namespace).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping
from typing import Any

SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment: bool = True,
               environ: MutableMapping[str, str] | None = None) -> list[int]:
    """The fds systemd passed to this process (empty when not socket-activated).

    With ``unset_environment`` the ``LISTEN_*`` variables are removed so that children (workers,
    a re-exec'd master) do not mistake them for their own.
    """
    env = os.environ if environ is None else environ
    try:
        target_pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    if target_pid != os.getpid() or count <= 0:
        return []
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(name, None)
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def sd_notify(state: str, log: Any = None, unset_environment: bool = False,
              environ: MutableMapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to ``$NOTIFY_SOCKET``; return True when sent.

    Never raises: readiness notification is best effort and must not stop the server.
    """
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if unset_environment:
        env.pop("NOTIFY_SOCKET", None)
    target: str | bytes = address
    if address.startswith("@"):
        target = b"\0" + address[1:].encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError as exc:
        (log or logging.getLogger("gunicorn.error")).debug(
            "sd_notify to %s failed: %s", address, exc)
        return False
    return True
