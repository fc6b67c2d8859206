"""``ControlClient``: send commands to a running server's control socket.

    from gunicorn.ctl import ControlClient

    with ControlClient() as client:              # the default socket path, like the server's
        workers = client.send("show workers")["workers"]
        client.send("worker add", [2])

The framing is gunicorn-core's own codec (:mod:`gunicorn.control.codec`), so client and server
cannot disagree on it.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from gunicorn.control.codec import FrameDecoder, Reply, Request, encode, parse_reply
from gunicorn.control.errors import ControlProtocolError
from gunicorn.control.paths import resolve_socket_path
from gunicorn.ctl.errors import (
    ControlCommandError,
    ControlConnectionError,
    ControlResponseError,
    ControlTimeoutError,
)

ENV_SOCKET = "GUNICORN_CONTROL_SOCKET"
DEFAULT_TIMEOUT = 30.0
RECV_SIZE = 65536
SETTING_HINT = "is the server running? The path is its control_socket setting; pass -s PATH"


def socket_path(path: str | os.PathLike[str] | None = None) -> str | None:
    """The path a client uses: ``path``, else ``$GUNICORN_CONTROL_SOCKET``, else the server's
    default (``$XDG_RUNTIME_DIR/gunicorn.ctl`` or ``~/.gunicorn/gunicorn.ctl``)."""
    chosen = os.fspath(path) if path is not None else os.environ.get(ENV_SOCKET) or None
    return resolve_socket_path(chosen)


class ControlClient:
    """A connection to one server's control socket.

    ``path``: the socket (see :func:`socket_path` for the default). ``timeout``: seconds to
    wait for connecting and for each reply. The connection is opened on first use and kept for
    the following commands; after a connection error the next command reconnects.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = socket_path(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder()
        self._ids = itertools.count(1)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection now (``send`` does it when needed).

        Raises ControlConnectionError naming the path when nothing answers there.
        """
        if self._sock is not None:
            return
        if self.path is None:
            raise ControlConnectionError(
                "no control socket path: $XDG_RUNTIME_DIR is not a directory and there is no "
                "home directory; pass -s PATH (the server's control_socket setting)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc)
            raise ControlConnectionError(
                f"cannot connect to the control socket {self.path}: {reason} ({SETTING_HINT})",
                self.path) from exc
        self._sock = sock
        self._decoder = FrameDecoder()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, command: str, args: Iterable[str | int] = ()) -> dict[str, Any]:
        """Run ``command`` (``"show workers"``, ``"worker add 2"``) and return the reply data.

        ``args`` are appended to the command's words. Raises ControlCommandError when the
        server answers with an error, ControlConnectionError (ControlTimeoutError) when it
        cannot be reached or does not answer, ControlResponseError on a malformed reply.
        """
        reply = self.request(command, args)
        if reply.error is not None:
            raise ControlCommandError(reply.error)
        return reply.data

    def request(self, command: str, args: Iterable[str | int] = ()) -> Reply:
        """Like :meth:`send`, but return the :class:`~gunicorn.control.codec.Reply` as it is."""
        request = Request(next(self._ids), command, tuple(str(a) for a in args))
        self.connect()
        try:
            return self._exchange(request)
        except BaseException:
            self.close()  # the stream position is unknown: start afresh next time
            raise

    def _exchange(self, request: Request) -> Reply:
        assert self._sock is not None
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(encode(request.to_obj()))
            while True:
                try:
                    obj = self._decoder.next_object()
                except ControlProtocolError as exc:
                    raise ControlResponseError(f"bad reply from {self.path}: {exc}") from exc
                if obj is not None:
                    try:
                        reply = parse_reply(obj)
                    except ControlProtocolError as exc:
                        raise ControlResponseError(f"bad reply from {self.path}: {exc}") from exc
                    if reply.id in (request.id, None):
                        return reply
                    continue  # a late answer to an earlier, abandoned request
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._sock.settimeout(remaining)
                data = self._sock.recv(RECV_SIZE)
                if not data:
                    raise ControlConnectionError(
                        f"the server at {self.path} closed the connection", self.path)
                self._decoder.feed(data)
        except TimeoutError as exc:
            raise ControlTimeoutError(
                f"no reply from {self.path} within {self.timeout:g}s", self.path) from exc
        except ControlConnectionError:
            raise
        except OSError as exc:
            raise ControlConnectionError(
                f"connection to {self.path} lost: {exc.strerror or exc}", self.path) from exc
