"""How many connections wait in a listener's accept queue (the listen backlog).

What reports it: on Linux, ``getsockopt(TCP_INFO)`` on a *listening* TCP socket fills
``tcpi_unacked`` with the accept queue's current length (``sk_ack_backlog``) and
``tcpi_sacked`` with its limit (``sk_max_ack_backlog``), the same numbers ``ss -lt`` shows as
Recv-Q and Send-Q. It costs one system call per listener (well under a microsecond) and needs
no /proc parsing. ``SO_ACCEPTCONN`` only says whether a socket listens, and ``FIONREAD`` on a
listener says nothing about the queue. UNIX-socket listeners have no such option (their queue
is only visible through netlink sock_diag), so they are not reported; neither is anything on
other systems.

``struct tcp_info`` starts with eight one-byte fields and then 32-bit ones::

    offset 0   u8 x 8   state, ca_state, retransmits, probes, backoff, options, wscale, flags
    offset 8   u32      rto, ato, snd_mss, rcv_mss
    offset 24  u32      unacked   <- accept queue length (listening socket)
    offset 28  u32      sacked    <- accept queue limit  (listening socket)
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TCP_LISTEN = 10  # tcpi_state of a listening socket (include/net/tcp_states.h)
_HEAD = struct.Struct("=B7xIIIIII")
_TCP_INFO = getattr(socket, "TCP_INFO", None)


@dataclass(frozen=True, slots=True)
class Backlog:
    """One listener's accept queue: ``queued`` connections of at most ``limit``."""

    listener: str
    queued: int
    limit: int


def listener_backlog(sock: socket.socket) -> tuple[int, int] | None:
    """(queued, limit) of a listening TCP socket, or None where that cannot be known."""
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _HEAD.size)
    except OSError:
        return None
    if len(raw) < _HEAD.size:
        return None
    state, _rto, _ato, _snd_mss, _rcv_mss, unacked, sacked = _HEAD.unpack_from(raw)
    if state != TCP_LISTEN:
        return None
    return unacked, sacked


def sample(listeners: Iterable[Any]) -> list[Backlog]:
    """The accept queues of every listener that reports one (``listener.sock``, ``str()``)."""
    found = []
    for listener in listeners:
        sock = getattr(listener, "sock", listener)
        if not isinstance(sock, socket.socket):
            continue
        numbers = listener_backlog(sock)
        if numbers is not None:
            found.append(Backlog(str(listener), numbers[0], numbers[1]))
    return found
