"""One client connection as the request handler drives it: socket I/O around a sans-IO parser.

The socket is non-blocking for its whole life. Reads and writes are tried first and only wait
(``poll``) when the kernel says EAGAIN, so the common case costs exactly one syscall per recv or
send, with no ``select`` before each call as a socket timeout would add. The same code serves TLS
sockets: ``SSLWantRead/WriteError`` are the TLS spelling of EAGAIN.

A connection implements :class:`gunicorn.wsgi.input.BodySource` (``read_body``) and
:class:`gunicorn.wsgi.response.Transport` (``send``/``sendfile``) for the request in progress.

Slow clients (``header_timeout``, ``write_timeout``):

* a request head has one deadline from its first byte (:meth:`Connection.head_wait`), however
  slowly it trickles in; each wait is also bounded by ``io_timeout``;
* a write waits at most ``write_timeout`` for the peer to take a byte; the clock restarts with
  every byte it takes;
* with an :class:`~gunicorn.workers.output.OutputBudget` (the threaded driver), output the peer
  is not taking yet is kept in ``out`` (:mod:`gunicorn.workers.output`) instead of holding the
  thread; the driver flushes it from its poller (:meth:`Connection.flush_nowait`), and
  :meth:`Connection.close` waits for it like an asyncio transport's ``close`` (``abort`` does
  not).
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import ssl
import time
from typing import Any

from gunicorn.http.errors import IncompleteRequest
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage
from gunicorn.workers.output import SENDFILE_BLOCK, OutputBudget, PendingOutput
from gunicorn.workers.output import WOULD_BLOCK as _WOULD_BLOCK
from gunicorn.wsgi.exchange import ClientGone

RECV_SIZE = 65536


# accept() failures that concern only the connection being accepted, not the listener.
_ACCEPT_SKIP = frozenset({errno.EAGAIN, errno.ECONNABORTED, errno.EPROTO, errno.EINTR,
                          errno.EPERM})


def accept_nowait(listener: socket.socket) -> tuple[socket.socket, Any] | None:
    """Accept one waiting connection from a non-blocking listener; None when there is none."""
    try:
        return listener.accept()
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno in _ACCEPT_SKIP:
            return None
        raise


class ConnectionLost(ClientGone):
    """Writing to the peer failed: it closed, reset, or stopped reading."""


class ConnectionTimeout(ConnectionLost):
    """The peer neither sent nor accepted bytes in time (or its request head took too long)."""


class Connection:
    """A socket, its peer address, its parser and the state of the request being served.

    ``base_environ`` is the part of the environ shared by all its requests. ``deadline`` is used
    by the threaded driver for expiry while the connection is parked. ``head_timeout`` (0: no
    limit) and ``write_timeout`` (None: wait forever) are the driver's slow-client bounds;
    ``write_timeout`` defaults to ``io_timeout``. ``budget`` (None: never defer output) is the
    worker's :class:`~gunicorn.workers.output.OutputBudget`; ``out`` holds the deferred output
    (None when there is none).
    """

    __slots__ = ("sock", "fd", "peer", "parser", "base_environ", "is_ssl", "io_timeout",
                 "eof", "body_done", "continue_pending", "response", "deadline", "handshaken",
                 "can_sendfile", "head_timeout", "write_timeout", "head_deadline", "budget",
                 "out", "close_pending", "linger_pending")

    def __init__(self, sock: socket.socket, peer: Any, parser: Any,
                 base_environ: dict[str, Any], *, is_ssl: bool, io_timeout: float | None,
                 sendfile: bool = True) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.parser = parser
        self.base_environ = base_environ
        self.is_ssl = is_ssl
        self.io_timeout = io_timeout
        self.eof = False
        self.body_done = True
        self.continue_pending = False
        self.response: Any = None
        self.deadline = 0.0
        self.handshaken = not is_ssl
        # sendfile bypasses TLS encryption, so it is only for plain sockets.
        self.can_sendfile = sendfile and not is_ssl
        self.head_timeout = 0.0
        self.write_timeout = io_timeout
        # When the head (or TLS handshake) in progress must be complete; 0: none in progress.
        self.head_deadline = 0.0
        self.budget: OutputBudget | None = None
        self.out: PendingOutput | None = None
        self.close_pending = False  # close() was called while output was still deferred
        self.linger_pending = False

    # -- slow clients -------------------------------------------------------------------------

    def head_wait(self) -> float | None:
        """How long the next wait for bytes of a request head may last (None: forever).

        The first call of a head starts its clock: ``head_timeout`` seconds in all, however the
        bytes trickle in. Raises ConnectionTimeout once the head is late.
        """
        now = time.monotonic()
        deadline = self.head_deadline
        if not deadline:
            deadline = self.head_deadline = \
                now + self.head_timeout if self.head_timeout > 0 else math.inf
        left = deadline - now
        if left <= 0:
            raise ConnectionTimeout(
                f"request head from {self.peer!r} not complete after {self.head_timeout:g}s")
        io = self.io_timeout
        if io is None:
            return None if left == math.inf else left
        return min(io, left)

    def park_deadline(self, now: float, idle: float) -> float:
        """When a connection parked now expires: ``idle`` seconds from ``now`` when it is
        between requests; in the middle of a head, the head's deadline (and ``io_timeout``
        since its last byte); with deferred output, ``write_timeout`` since the last byte the
        peer took. ``math.inf`` when nothing bounds it."""
        if self.out:
            timeout = self.write_timeout
            return now + timeout if timeout is not None else math.inf
        deadline = self.head_deadline
        if not deadline:
            return now + idle
        io = self.io_timeout
        return min(deadline, now + io) if io is not None else deadline

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, events: int, timeout: float | None) -> bool:
        """Wait until the socket is ready for ``events`` (POLLIN/POLLOUT); False on timeout."""
        poller = select.poll()
        poller.register(self.fd, events)
        ms = -1 if timeout is None else max(int(timeout * 1000), 0)
        return bool(poller.poll(ms))

    # -- reading ------------------------------------------------------------------------------

    def recv_nowait(self) -> bytes | None:
        """One non-blocking recv: bytes, ``b""`` at EOF, None when nothing is there yet."""
        try:
            return self.sock.recv(RECV_SIZE)
        except _WOULD_BLOCK:
            return None
        except ssl.SSLEOFError:  # TLS peer closed without close_notify: an EOF all the same
            return b""
        except ConnectionResetError:
            return b""  # the peer is gone; for the parser that is EOF

    def fill(self, timeout: float | None) -> bool:
        """Feed the parser with the next bytes, waiting up to ``timeout`` for them.

        Returns False on EOF (the parser has been fed ``b""``). Raises ConnectionTimeout.
        """
        if self.eof:
            raise IncompleteRequest(1, "connection already at EOF")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self.recv_nowait()
            if data is not None:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0 or not self.wait(select.POLLIN, left):
                raise ConnectionTimeout(f"no data from {self.peer!r} for {timeout}s")
        if not data:
            self.eof = True
        self.parser.feed(data)
        return bool(data)

    def handshake_nowait(self) -> int:
        """One non-blocking step of the TLS handshake: 0 once it is complete, otherwise the
        poll event (POLLIN or POLLOUT) to wait for. Raises ssl.SSLError or OSError."""
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            return select.POLLIN
        except ssl.SSLWantWriteError:
            return select.POLLOUT
        return 0

    def handshake(self) -> None:
        """Complete the TLS handshake, waiting as for a request head (``head_timeout`` in all,
        ``io_timeout`` per wait). Raises ConnectionTimeout, ssl.SSLError or OSError."""
        while want := self.handshake_nowait():
            if not self.wait(want, self.head_wait()):
                raise ConnectionTimeout(f"TLS handshake with {self.peer!r} timed out")
        self.head_deadline = 0.0  # the request head gets a deadline of its own

    def pending(self) -> bool:
        """True when TLS holds decrypted bytes the kernel no longer reports as readable."""
        return self.is_ssl and self.sock.pending() > 0  # type: ignore[attr-defined]

    # -- BodySource ---------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if self.body_done:
            return b""
        if self.continue_pending:
            self.continue_pending = False
            response = self.response
            if response is None or not response.headers_sent:
                # RFC 9110 §10.1.1: the client waits for this before sending the body.
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        parser = self.parser
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                self.fill(self.io_timeout)
                continue
            cls = type(event)
            if cls is Data:
                data: bytes = event.data
                if data:
                    return data
            elif cls is EndOfMessage:
                self.body_done = True
                return b""
            else:  # pragma: no cover - the parser never yields a Request inside a body
                raise RuntimeError(f"unexpected {event!r} inside a request body")

    def skip_buffered_body(self) -> None:
        """Consume the body events the parser can produce without reading the socket."""
        parser = self.parser
        while not self.body_done:
            event = parser.next_event()
            if event is NEED_DATA:
                return
            if type(event) is EndOfMessage:
                self.body_done = True

    def drain_body(self, limit: int) -> bool:
        """Discard the rest of the request body; False if more than ``limit`` bytes remained."""
        if self.continue_pending and not self.body_done:
            # The client is still waiting for 100 Continue and may never send the body.
            return False
        total = 0
        while not self.body_done:
            total += len(self.read_body())
            if total > limit:
                return False
        return True

    # -- Transport ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write all of ``data`` (or defer what the peer does not take yet, see ``budget``);
        waits up to ``write_timeout`` each time the peer stops reading."""
        if self.out is not None and not self.flush_nowait():
            # Earlier output still waits: queue behind it, or wait for it when over budget.
            if self.out.add_bytes(data, memoryview(data)):
                return
            self.flush()
        sock = self.sock
        try:
            sent = sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            # Tell the handler the peer is gone, as opposed to an OSError of the application.
            raise ConnectionLost(exc.errno, f"sending to {self.peer!r}: {exc}") from exc
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        if self._defer(data, view):
            return
        while view:
            if not self.wait(select.POLLOUT, self.write_timeout):
                raise ConnectionTimeout(f"{self.peer!r} stopped reading the response")
            try:
                sent = sock.send(view)
            except _WOULD_BLOCK:
                continue
            except OSError as exc:
                raise ConnectionLost(exc.errno, f"sending to {self.peer!r}: {exc}") from exc
            view = view[sent:]

    def _defer(self, data: Any, view: memoryview) -> bool:
        """Keep ``view`` (the unsent end of ``data``) for later if the budget allows."""
        if self.budget is None:
            return False
        out = self.out or PendingOutput(self.budget)
        if not out.add_bytes(data, view):
            return False
        self.out = out
        return True

    def flush_nowait(self) -> bool:
        """Send deferred output until the peer stops taking it; True once none is left.

        Raises ConnectionLost (the deferred output is dropped) when the peer is gone.
        """
        out = self.out
        if out is None:
            return True
        try:
            if not out.flush(self.sock):
                return False
        except OSError as exc:
            self._drop_output()
            raise ConnectionLost(exc.errno, f"sending to {self.peer!r}: {exc}") from exc
        self.out = None
        return True

    def flush(self) -> None:
        """Send all deferred output, waiting up to ``write_timeout`` for each byte taken."""
        while not self.flush_nowait():
            if not self.wait(select.POLLOUT, self.write_timeout):
                self._drop_output()
                raise ConnectionTimeout(f"{self.peer!r} stopped reading the response")

    def _drop_output(self) -> None:
        out = self.out
        if out is not None:
            self.out = None
            out.clear()

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        if self.out is not None:
            self.flush()  # the file follows the output queued before it
        total = 0
        while total < count:
            try:
                sent = os.sendfile(self.fd, fd, offset + total, min(count - total, SENDFILE_BLOCK))
            except _WOULD_BLOCK:
                if self.budget is not None:
                    # The rest goes out from the poller, through a descriptor of our own.
                    out = PendingOutput(self.budget)
                    if out.add_file(fd, offset + total, count - total):
                        self.out = out
                        return count
                if not self.wait(select.POLLOUT, self.write_timeout):
                    raise ConnectionTimeout(f"{self.peer!r} stopped reading the file") from None
                continue
            except OSError as exc:
                raise ConnectionLost(exc.errno, f"sendfile to {self.peer!r}: {exc}") from exc
            if sent == 0:  # the file is shorter than announced
                break
            total += sent
        return total

    # -- closing ------------------------------------------------------------------------------

    def close(self, linger: bool = False) -> None:
        """Close the socket. ``linger``: unread request bytes are left, so half-close first and
        read briefly, otherwise the kernel would answer them with a RST that can destroy the
        response still in flight to the client (RFC 9112 §9.6).

        With deferred output left, nothing is closed yet: ``close_pending`` is set and the
        driver closes once the output is flushed (or abandoned, see :meth:`abort`).
        """
        if self.out is not None:
            self.close_pending = True
            self.linger_pending = linger
            return
        sock = self.sock
        if linger and not self.eof:
            try:
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 1.0
                drained = 0
                while drained < RECV_SIZE * 4:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.wait(select.POLLIN, left):
                        break
                    data = self.recv_nowait()
                    if data == b"":
                        break
                    drained += len(data or b"")
            except OSError:
                pass  # the peer is gone already: nothing left to protect
        try:
            sock.close()
        except OSError:
            pass

    def abort(self) -> None:
        """Close now, dropping any deferred output (an expired or failed connection)."""
        self._drop_output()
        self.close_pending = False
        self.close()
