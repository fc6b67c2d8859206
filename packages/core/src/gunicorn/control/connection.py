"""One client connection to the control socket, driven by the arbiter's loop.

Requests on a connection are answered strictly in order, one at a time::

    IDLE --request--> (core command: reply at once) --> IDLE
    IDLE --request--> BUSY (plugin command in a thread) --result or timeout--> IDLE
    any  --too-large frame, refused peer, EOF--> CLOSING (flush the output, then close)

While a request is running or output is pending, the connection is not read: a client that
pipelines requests or never reads its replies cannot make the master buffer without bound.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time

from gunicorn.control.codec import FrameDecoder

RECV_SIZE = 65536
# Above this much unsent output we stop taking requests until the client reads.
OUTPUT_HIGH_WATER = 1024 * 1024


class ControlConnection:
    """Buffers and flags of one accepted connection (no protocol logic)."""

    def __init__(self, sock: socket.socket, peer: tuple[int, int, int], allowed: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer_pid, self.peer_uid, self.peer_gid = peer
        self.allowed = allowed
        self.decoder = FrameDecoder()
        self.output = bytearray()
        self.busy = False
        self.eof = False
        self.closing = False
        self.closed = False
        self.last_active = time.monotonic()

    @property
    def can_take_request(self) -> bool:
        return (not self.busy and not self.closing and not self.closed
                and len(self.output) < OUTPUT_HIGH_WATER)

    def poll_events(self) -> int:
        events = 0
        if self.output:
            events |= select.POLLOUT
        if not self.output and not self.busy and not self.eof and not self.closing:
            events |= select.POLLIN
        return events

    def receive(self) -> None:
        """Read what is there into the decoder; note EOF. Errors end the connection."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self.last_active = time.monotonic()
        if not data:
            self.eof = True
        else:
            self.decoder.feed(data)

    def send(self, frame: bytes) -> None:
        self.output += frame
        self.flush()

    def flush(self) -> None:
        while self.output and not self.closed:
            try:
                sent = self.sock.send(self.output)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # EPIPE, ECONNRESET: the client went away; its replies are not needed any more.
                self.close()
                return
            del self.output[:sent]
            self.last_active = time.monotonic()

    @property
    def finished(self) -> bool:
        """Nothing more will happen: close it now."""
        if self.closed:
            return True
        if self.output or self.busy:
            return False
        return self.closing or self.eof

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.close()

    def close_in_child(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.sock.detach())
        self.closed = True
