"""The ``sync`` worker: one request at a time, one request per connection.

Each response carries ``Connection: close`` (as gunicorn's sync worker does: a process that
waited for a keep-alive client would serve nobody else meanwhile). The loop::

    while alive:
        notify; accept on every listener until EAGAIN, serving each connection fully;
        if nothing was accepted: select(listeners + wakeup_fd, timeout); check the parent

Request handling is the shared :class:`~gunicorn.workers.handler.RequestHandler`.

Slow clients: the worker is theirs while it serves them, so each wait is bounded. A request head
gets ``header_timeout`` in all from its first byte (a TLS handshake as much from the accept), a
response write ``write_timeout`` for each byte the client takes, and every wait at most half of
``timeout`` (the worker does not tell the arbiter it is alive while it serves: a longer wait
would get it killed).
"""

from __future__ import annotations

import errno
import select
from typing import Any

from gunicorn.workers.base import Worker
from gunicorn.workers.connection import Connection, accept_nowait
from gunicorn.workers.handler import RequestHandler


class SyncWorker(Worker):
    """Serves one connection at a time in the worker's main thread."""

    def run(self) -> None:
        if any(token != "h1" for token in self.cfg.http_protocols):
            # One connection at a time cannot multiplex streams; ALPN offers http/1.1 only, so
            # no client is ever told this worker speaks HTTP/2.
            self.log.warning("HTTP/2 is not supported by the sync worker; serving HTTP/1.1 "
                             "only (use -k gthread or -k asgi)")
        io_timeout = self.io_timeout()
        handler = RequestHandler(self, multithread=False, keepalive=False, io_timeout=io_timeout)
        self.head_timeout = float(self.cfg.header_timeout)
        write = float(self.cfg.write_timeout)
        self.write_timeout = min(write, io_timeout) if write and io_timeout else write or io_timeout
        listeners = [listener.sock for listener in self.sockets]
        for sock in listeners:
            sock.setblocking(False)
        wait = self.timeout if self.timeout and self.timeout > 0 else 0.5
        readable: list[Any] = [*listeners, self.wakeup_fd]
        while self.alive:
            self.notify()
            if self._accept_all(listeners, handler):
                continue
            if not self.check_parent():
                break
            try:
                ready, _, _ = select.select(readable, [], [], wait)
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EBADF:  # a listener was closed under us: we are stopping
                    break
                raise
            if self.wakeup_fd in ready:
                self.drain_wakeup()

    def io_timeout(self) -> float | None:
        """How long one wait for a slow client may last: below the arbiter's kill timeout."""
        timeout = self.cfg.timeout
        return max(timeout * 0.5, 1.0) if timeout > 0 else None

    def _accept_all(self, listeners: list[Any], handler: RequestHandler) -> bool:
        """Accept and serve everything waiting; True if at least one connection was served."""
        served = False
        for sock in listeners:
            while self.alive:
                accepted = accept_nowait(sock)
                if accepted is None:
                    break
                client, peer = accepted
                served = True
                conn = handler.connection(client, peer)
                conn.head_timeout = self.head_timeout
                conn.write_timeout = self.write_timeout
                if not conn.is_ssl or self._handshake(conn):
                    handler.serve(conn, handler.io_timeout)
                self.notify()
        return served

    def _handshake(self, conn: Connection) -> bool:
        """The TLS handshake, bounded by header_timeout like a request head."""
        try:
            conn.handshake()
        except OSError as exc:  # ssl.SSLError is an OSError
            self.log.debug("TLS handshake with %r failed: %s", conn.peer, exc)
            conn.close()
            return False
        return True
