"""Tiny worker classes for the arbiter tests: they only answer a fixed HTTP response.

They exercise the Worker contract (heartbeat, wakeup fd, signals) without depending on the real
sync/gthread drivers.
"""

from __future__ import annotations

import os
import select
import time

from gunicorn.workers.base import Worker


class FixedResponseWorker(Worker):
    """Accept, read the request head, answer ``200`` with ``pid=<pid> <app body>``, close."""

    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
        interval = self.timeout or 0.5
        while self.alive:
            self.notify()
            if not self.check_parent():
                break
            readable, _, _ = select.select([*self.sockets, self.wakeup_fd], [], [], interval)
            for ready in readable:
                if ready == self.wakeup_fd:
                    self.drain_wakeup()
                    continue
                try:
                    conn, _ = ready.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                with conn:
                    self.serve(conn)
                self.nr += 1
                if self.max_requests and self.nr >= self.max_requests:
                    self.alive = False

    def serve(self, conn) -> None:
        conn.setblocking(True)
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        chunks = []

        def start_response(status, headers, exc_info=None):
            chunks.append(status)

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": None}
        app_body = b"".join(self.wsgi(environ, start_response))
        body = f"pid={os.getpid()} ".encode() + app_body
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))


class StuckWorker(FixedResponseWorker):
    """Boots, then stops notifying (as a worker stuck in a request would)."""

    def run(self) -> None:
        while True:
            time.sleep(0.05)


class SlowStopWorker(FixedResponseWorker):
    """Ignores graceful stop requests for a while (for stop timeouts)."""

    def handle_exit(self, sig, frame) -> None:
        pass
