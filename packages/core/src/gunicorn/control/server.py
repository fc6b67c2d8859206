"""The control server: the master's side of ``gunictl``, run from the arbiter's own loop.

There is no server thread. The arbiter adds :meth:`ControlServer.poll_fds` to what its loop
polls and hands the ready ones to :meth:`ControlServer.handle`; every socket is non-blocking, so
a slow or hostile client never stalls the loop, and there is nothing to stop or restart around a
fork (a thread holding a lock at fork time is how gunicorn's control socket deadlocked). In a
forked child :meth:`ControlServer.close_in_child` drops the fds (they are close-on-exec too).

Core commands run inline in the loop. Plugin commands (which may talk to the dirty arbiter)
run in a short-lived thread per command; the result comes back through a queue and
``wake()`` (the arbiter's self-pipe), and a command still running after
:data:`COMMAND_TIMEOUT` seconds is answered with an error (its late result is dropped).

Who may send commands: the peer's credentials (``SO_PEERCRED``) are read at accept; only our
own uid and root are obeyed. Anyone else gets one error reply and is disconnected, and the
attempt is logged. The file mode (0600 by default) normally keeps them out before that.

USR2: a new master started by re-exec (``Master.2``) does not open the control socket while
its parent lives, so ``gunictl`` keeps talking to the master that owns the workers; the old
master removes the socket as it exits, and the new one opens it when it is promoted.
"""

from __future__ import annotations

import itertools
import queue
import select
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gunicorn.control.binding import ControlSocket, open_control_socket
from gunicorn.control.codec import Reply, encode, message_id, parse_request
from gunicorn.control.commands import CommandTable, Deferred, build_table
from gunicorn.control.connection import ControlConnection
from gunicorn.control.errors import ControlProtocolError, FrameTooLarge, MalformedMessage
from gunicorn.control.paths import resolve_socket_path
from gunicorn.control.views import ControlledArbiter, jsonable
from gunicorn.private_dir import uid_is_trusted
from gunicorn.sockets import peer_credentials

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

COMMAND_TIMEOUT = 15.0
IDLE_TIMEOUT = 300.0
MAX_CONNECTIONS = 32
# Command threads alive at once, counting ones that overran their timeout and still run.
MAX_THREADS = 8
ACCEPT_BATCH = 16


@dataclass(slots=True)
class _Job:
    conn: ControlConnection
    request_id: int | str | None
    name: str
    deadline: float


class ControlServer:
    """The control socket of one master. ``wake`` wakes the arbiter's loop from a thread."""

    def __init__(self, arbiter: ControlledArbiter, log: Any, wake: Callable[[], None]) -> None:
        self._arbiter = arbiter
        self._log = log
        self._wake = wake
        self._socket: ControlSocket | None = None
        self._key: tuple[Any, ...] | None = None
        self._table: CommandTable | None = None
        self._conns: dict[int, ControlConnection] = {}
        self._jobs: dict[int, _Job] = {}
        self._job_ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._results: queue.SimpleQueue[tuple[int, Reply]] = queue.SimpleQueue()

    @property
    def path(self) -> str | None:
        """The socket path while listening, else None."""
        return self._socket.path if self._socket is not None else None

    # -- life cycle -------------------------------------------------------------------------

    def open(self, cfg: CoreSettings) -> None:
        """Listen as ``cfg`` says (start, HUP, promotion). Re-binds only when the path, mode
        or disable flag changed; a failure is logged once per setting change."""
        self._table = self._build_table(cfg)
        if cfg.control_socket_disable:
            key: tuple[Any, ...] = ("disabled",)
            path = None
        else:
            path = resolve_socket_path(cfg.control_socket)
            key = (path, cfg.control_socket_mode)
        if key == self._key:
            return
        self._key = key
        self._close_listener()
        if cfg.control_socket_disable:
            return
        if path is None:
            self._log.warning("Control socket disabled: $XDG_RUNTIME_DIR is not a directory and "
                              "there is no home directory (set control_socket)")
            return
        self._socket = open_control_socket(path, cfg.control_socket_mode, self._log)
        if self._socket is not None:
            self._log.info("Control socket listening at: %s", path)

    def _build_table(self, cfg: CoreSettings) -> CommandTable:
        handlers: Mapping[str, Any] = {}
        plugins = getattr(self._arbiter, "plugins", None)
        if plugins is not None:
            try:
                handlers = plugins.control_commands(cfg)
            except Exception:  # plugin code: the core commands must stay available whatever it did
                self._log.exception("A plugin's control_commands hook failed; its commands are "
                                    "unavailable")
        return build_table(self._arbiter, handlers, lambda: self.path)

    def _close_listener(self) -> None:
        if self._socket is not None:
            self._socket.close(unlink=True)
            self._socket = None

    def close(self) -> None:
        """Stop serving (the master is stopping): flush what we can, close, remove the file."""
        for conn in self._conns.values():
            conn.flush()
            conn.close()
        self._conns.clear()
        self._jobs.clear()
        self._close_listener()
        self._key = None

    def close_in_child(self) -> None:
        """In a forked worker or sidecar: release our fds without touching the shared socket."""
        for conn in self._conns.values():
            conn.close_in_child()
        self._conns.clear()
        self._jobs.clear()
        self._threads.clear()
        if self._socket is not None:
            self._socket.close_in_child()
            self._socket = None

    # -- the loop's side --------------------------------------------------------------------

    def poll_fds(self) -> dict[int, int]:
        """fd -> poll events this server waits for (only non-zero masks: a connection that
        waits for its command must not report a hang-up on every loop turn)."""
        fds = {}
        if self._socket is not None and len(self._conns) < MAX_CONNECTIONS:
            fds[self._socket.fileno()] = select.POLLIN
        for fd, conn in self._conns.items():
            events = conn.poll_events()
            if events:
                fds[fd] = events
        return fds

    def handle(self, ready: Mapping[int, int]) -> None:
        """Do the work ``ready`` (fd -> returned poll events) allows, and any due work."""
        self._collect_results()
        if self._socket is not None and self._socket.fileno() in ready:
            self._accept()
        for fd, events in ready.items():
            conn = self._conns.get(fd)
            if conn is None:
                continue  # the listener, or stale readiness for an fd closed this turn
            if events & select.POLLOUT or events & (select.POLLHUP | select.POLLERR):
                conn.flush()
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR) \
                    and conn.poll_events() & select.POLLIN:
                conn.receive()
            self._pump(conn)
        self._expire(time.monotonic())

    # -- connections ------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._socket is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock = self._socket.accept()
            except OSError as exc:
                self._log.warning("Control socket: accept failed: %s", exc)
                return
            if sock is None:
                return
            if len(self._conns) >= MAX_CONNECTIONS:
                self._log.warning("Control socket: too many connections, closing a new one")
                sock.close()
                continue
            try:
                peer = peer_credentials(sock)
            except OSError:
                sock.close()
                continue
            allowed = uid_is_trusted(peer[1])
            if not allowed:
                self._log.warning("Control socket: refusing commands from uid %s (pid %s)",
                                  peer[1], peer[0])
            conn = ControlConnection(sock, peer, allowed)
            self._conns[conn.fd] = conn

    def _pump(self, conn: ControlConnection) -> None:
        """Answer the requests already received, in order, as far as the connection allows."""
        while conn.can_take_request:
            try:
                obj = conn.decoder.next_object()
            except FrameTooLarge as exc:
                self._reply(conn, Reply(None, error=str(exc)))
                conn.closing = True  # the frame's payload was never read: no way to resync
                break
            except ControlProtocolError as exc:
                self._reply(conn, Reply(None, error=str(exc)))
                continue
            if obj is None:
                break
            if not conn.allowed:
                self._reply(conn, Reply(message_id(obj), error=(
                    f"permission denied: uid {conn.peer_uid} may not use this control socket "
                    "(only its owner and root may)")))
                conn.closing = True
                break
            try:
                request = parse_request(obj)
            except MalformedMessage as exc:
                self._reply(conn, Reply(message_id(obj), error=str(exc)))
                continue
            self._execute(conn, request.id, request.command, request.args)

    def _execute(self, conn: ControlConnection, request_id: Any, command: str,
                 args: tuple[str, ...]) -> None:
        assert self._table is not None
        self._log.debug("Control command from pid %s: %r %r", conn.peer_pid, command, args)
        try:
            outcome = self._table.execute(command, args)
        except ValueError as exc:  # CommandError: usage, unknown command, refused
            self._reply(conn, Reply(request_id, error=str(exc)))
            return
        except Exception as exc:  # a core command's bug must not take the master down
            self._log.exception("Control command %r failed", command)
            self._reply(conn, Reply(request_id, error=f"command failed: {exc}"))
            return
        if isinstance(outcome, Deferred):
            self._start_job(conn, request_id, outcome)
        else:
            self._reply(conn, Reply(request_id, data=outcome))

    def _reply(self, conn: ControlConnection, reply: Reply) -> None:
        try:
            frame = encode(reply.to_obj(), default=str)
        except (ControlProtocolError, ValueError, TypeError) as exc:
            frame = encode(Reply(reply.id, error=f"reply cannot be sent: {exc}").to_obj())
        conn.send(frame)

    # -- command threads --------------------------------------------------------------------

    def _start_job(self, conn: ControlConnection, request_id: Any, work: Deferred) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        if len(self._threads) >= MAX_THREADS:
            self._reply(conn, Reply(request_id, error="too many control commands still "
                                                      "running; try again later"))
            return
        job_id = next(self._job_ids)
        self._jobs[job_id] = _Job(conn, request_id, work.name,
                                  time.monotonic() + COMMAND_TIMEOUT)
        conn.busy = True
        thread = threading.Thread(target=self._run_job, args=(job_id, work), daemon=True,
                                  name=f"gunicorn-control-{job_id}")
        self._threads.append(thread)
        thread.start()

    def _run_job(self, job_id: int, work: Deferred) -> None:
        """In the command thread: run the plugin's handler, hand the reply to the loop."""
        try:
            result = work.run()
            reply = Reply(None, data=result if isinstance(result, dict)
                          else {"result": jsonable(result)})
        except ValueError as exc:  # the handler's usage error
            reply = Reply(None, error=str(exc))
        except Exception as exc:  # plugin code: report it to the client, keep the traceback in the log
            self._log.error("Control command %r failed", work.name, exc_info=True)
            reply = Reply(None, error=f"{work.name} failed: {exc}")
        self._results.put((job_id, reply))
        self._wake()

    def _collect_results(self) -> None:
        while True:
            try:
                job_id, reply = self._results.get_nowait()
            except queue.Empty:
                return
            job = self._jobs.pop(job_id, None)
            if job is None:
                continue  # answered already (timed out)
            job.conn.busy = False
            if not job.conn.closed:
                self._reply(job.conn, Reply(job.request_id, reply.data, reply.error))
                self._pump(job.conn)

    def _expire(self, now: float) -> None:
        for job_id, job in list(self._jobs.items()):
            if now >= job.deadline:
                del self._jobs[job_id]
                self._log.warning("Control command %r timed out after %gs", job.name,
                                  COMMAND_TIMEOUT)
                job.conn.busy = False
                if not job.conn.closed:
                    self._reply(job.conn, Reply(job.request_id, error=(
                        f"{job.name} timed out after {COMMAND_TIMEOUT:g}s")))
                    self._pump(job.conn)
        for fd, conn in list(self._conns.items()):
            idle = not conn.busy and not conn.output and now - conn.last_active > IDLE_TIMEOUT
            if conn.finished or idle:
                conn.close()
                del self._conns[fd]
