"""DirtyClient: call dirty apps from HTTP workers (threads or asyncio tasks).

::

    client = get_dirty_client()                       # one per thread, from GUNICORN_DIRTY_SOCKET
    client.execute("myapp.ml:MLApp", "predict", data)
    client.call("myapp.ml:MLApp", "predict", args=[data], timeout=5)    # own timeout
    for token in client.stream("myapp.chat:ChatApp", "generate", prompt): ...

    client = await get_dirty_client_async()           # one per event loop
    await client.execute_async("myapp.ml:MLApp", "predict", data)
    async for token in client.stream_async("myapp.chat:ChatApp", "generate", prompt): ...

``execute``/``stream`` pass every keyword through to the action, so options of the call itself
live on the explicit-form methods ``call``/``call_stream`` (and their ``_async`` twins), whose
signature cannot collide with an action's keyword arguments.

One client multiplexes all its calls over one connection per side (sync, asyncio): requests
carry ids, a call that times out sends CANCEL and stays usable, and its late reply is dropped.
The connection is reopened on the next call after the dirty arbiter restarted; calls in flight
when it dropped fail with DirtyConnectionError (DirtyWorkerError if the arbiter reported the
dirty worker's death). A call is resent on the new connection only when its request provably
never reached the arbiter (see :mod:`gunicorn.dirty.client_sync`), so an arbiter restart while
a client is idle costs no failed call, and nothing that may have run is ever run twice.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn.dirty.call import CallKind, CallTable, Event, Failure, Result
from gunicorn.dirty.client_stream import DirtyAsyncStream, DirtyStream
from gunicorn.dirty.client_sync import SyncConnection, UndeliveredError
from gunicorn.dirty.codec import DEFAULT_MAX_FRAME, MessageType, request_payload
from gunicorn.dirty.errors import DirtyConnectionError, DirtyProtocolError, DirtyTimeoutError

if TYPE_CHECKING:
    import asyncio

    from gunicorn.dirty.client_async import AsyncConnection

SOCKET_ENV = "GUNICORN_DIRTY_SOCKET"


def resolve_socket_path(socket_path: str | None = None) -> str:
    """``socket_path``, else ``$GUNICORN_DIRTY_SOCKET``; DirtyConnectionError when neither."""
    path = socket_path or os.environ.get(SOCKET_ENV)
    if not path:
        raise DirtyConnectionError(
            f"no dirty arbiter socket: {SOCKET_ENV} is not set (is a dirty pool configured with "
            "--dirty-app and --dirty-workers?) and no socket_path was given"
        )
    return path


class DirtyClient:
    """A client of the dirty arbiter at ``socket_path`` (default: ``$GUNICORN_DIRTY_SOCKET``).

    ``timeout`` (seconds) bounds each call, and the wait for each chunk of a stream; ``None`` or
    ``0`` waits as long as it takes. Per-call ``timeout=None`` means "the client's timeout".
    The sync methods are thread-safe; the asyncio methods belong to one event loop at a time.
    Values sent and returned are msgpack-able only; anything else raises
    DirtySerializationError before a byte is sent.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        timeout: float | None = 30.0,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        self.timeout = timeout
        self.max_frame_size = max_frame_size
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._conn: SyncConnection | None = None
        self._aconn: AsyncConnection | None = None
        self._aconnecting: asyncio.Task[AsyncConnection] | None = None

    def __repr__(self) -> str:
        return f"<DirtyClient {self.socket_path} timeout={self.timeout}>"

    def _effective(self, timeout: float | None) -> float | None:
        value = self.timeout if timeout is None else timeout
        return value or None

    # -- sync ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now rather than on the first call (DirtyConnectionError)."""
        self._connection()

    def close(self) -> None:
        """Close the sync connection; the next call reopens it. Pending calls fail."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> DirtyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self, probe: bool = True) -> SyncConnection:
        # ``probe=False`` for callers that resend an undelivered request (_begin, _start):
        # they learn about a connection the arbiter closed from the send itself, for free.
        if self._pid != os.getpid():
            self._forget_after_fork()
        conn = self._conn
        if conn is not None and conn.usable(probe):
            return conn
        with self._lock:
            conn = self._conn
            if conn is not None and conn.usable(probe):
                return conn
            if conn is not None:
                conn.close()
            self._conn = None
            conn = SyncConnection(self.socket_path, self._effective(None), self.max_frame_size)
            self._conn = conn
            return conn

    def _forget_after_fork(self) -> None:
        # The connections (and maybe a held lock) belong to the parent. Close our copies of the
        # fds only: the parent keeps using the same streams.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._aconn = None
        self._aconnecting = None

    def _begin(
        self, kind: CallKind, type_: MessageType, payload: Any, deadline: float | None
    ) -> tuple[SyncConnection, int]:
        """Send a call's first frame; returns the connection it went out on and its id.

        A request that never reached the arbiter (the connection was found dead by the send
        itself) is sent once more on a fresh connection: it cannot have run, so this is safe
        for every request, and it makes an arbiter restart invisible to idle clients.
        """
        conn = self._connection(probe=False)
        try:
            return conn, conn.begin(kind, type_, payload, deadline)
        except UndeliveredError:
            conn = self._connection(probe=False)
            return conn, conn.begin(kind, type_, payload, deadline)

    def _start(
        self, starter: Callable[[CallTable], tuple[int, bytes]], deadline: float | None
    ) -> tuple[SyncConnection, int]:
        """:meth:`_begin` for a call registered by ``starter(table)`` (streams)."""
        conn = self._connection(probe=False)
        try:
            return conn, conn.start(starter, deadline)
        except UndeliveredError:
            conn = self._connection(probe=False)
            return conn, conn.start(starter, deadline)

    def _run(self, type_: MessageType, payload: Any, timeout: float | None,
             what: Callable[[], str]) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        conn, request_id = self._begin(CallKind.UNARY, type_, payload, deadline)
        try:
            event = conn.wait_event(request_id, deadline)
        except BaseException:
            conn.cancel(request_id)
            raise
        if event is None:
            raise _timed_out(conn, request_id, timeout, what)
        return _outcome(event)

    def execute(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``action`` of the dirty app ``app_path`` (``"module:Class"``) and return its result.

        Raises DirtyTimeoutError past the client timeout (the call is cancelled), the action's
        error as DirtyAppError (``error_type`` names the original class), DirtyAppNotFoundError,
        DirtyNoWorkersAvailableError, DirtyBusyError, DirtyConnectionError, DirtyWorkerError,
        or DirtySerializationError when an argument cannot be sent. An action that streams
        returns the list of its chunks.
        """
        return self.call(app_path, action, args, kwargs)

    def call(
        self,
        app_path: str,
        action: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`execute` with explicit ``args``/``kwargs`` and this call's ``timeout``."""
        return self._run(*self._unary(app_path, action, args, kwargs, timeout))

    def _unary(
        self, app_path: str, action: str, args: Any, kwargs: dict[str, Any] | None,
        timeout: float | None,
    ) -> tuple[MessageType, Any, float | None, Callable[[], str]]:
        """The arguments of ``_run``/``_run_async`` for a REQUEST (shared by call/call_async).

        The timeout travels in the payload so the dirty side can stop work nobody waits for.
        """
        limit = self._effective(timeout)
        return (MessageType.REQUEST, request_payload(app_path, action, args, kwargs, limit), limit,
                lambda: f"dirty call {app_path}.{action}")

    def stream(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> DirtyStream:
        """Iterate over the chunks a generator action yields (see :class:`DirtyStream`)."""
        return self.call_stream(app_path, action, args, kwargs)

    def call_stream(
        self,
        app_path: str,
        action: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> DirtyStream:
        """Like :meth:`stream`; ``timeout`` bounds each chunk, ``total_timeout`` the stream."""
        return DirtyStream(
            self, app_path, action, args, kwargs, self._effective(timeout), total_timeout
        )

    def request(
        self, type: MessageType, payload: Any = None, timeout: float | None = None
    ) -> Any:
        """Send a control frame (STASH, STATUS, MANAGE) and return its RESPONSE ``result``;
        an ERROR reply raises the error it carries, rebuilt with its class."""
        return self._run(*self._control(type, payload, timeout))

    def _control(
        self, type_: MessageType, payload: Any, timeout: float | None
    ) -> tuple[MessageType, Any, float | None, Callable[[], str]]:
        """The arguments of ``_run``/``_run_async`` for a control request."""
        return (type_, payload, self._effective(timeout),
                lambda: f"dirty {MessageType(type_).name} request")

    # -- asyncio ---------------------------------------------------------------------------

    async def connect_async(self) -> None:
        """Open the asyncio connection now rather than on the first call."""
        await self._async_connection()

    async def close_async(self) -> None:
        """Close the asyncio connection; the next call reopens it. Pending calls fail."""
        conn, self._aconn = self._aconn, None
        if conn is not None:
            conn.close()

    async def __aenter__(self) -> DirtyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close_async()

    async def _async_connection(self) -> AsyncConnection:
        import asyncio

        from gunicorn.dirty.client_async import AsyncConnection

        if self._pid != os.getpid():
            self._forget_after_fork()
        conn = self._aconn
        if conn is not None and conn.usable():
            return conn
        loop = asyncio.get_running_loop()
        task = self._aconnecting
        if task is None or task.get_loop() is not loop:
            if conn is not None and not conn.loop.is_closed():
                conn.close()
            self._aconn = None
            task = loop.create_task(
                AsyncConnection.open(self.socket_path, self._effective(None), self.max_frame_size)
            )
            self._aconnecting = task
        try:
            # Shielded: one caller being cancelled must not abort the others' shared connect.
            conn = await asyncio.shield(task)
        finally:
            if self._aconnecting is task and task.done():
                self._aconnecting = None
        self._aconn = conn
        return conn

    async def _run_async(self, type_: MessageType, payload: Any, timeout: float | None,
                         what: Callable[[], str]) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = await self._async_connection()
        request_id = conn.begin(CallKind.UNARY, type_, payload)
        try:
            await conn.drain()
            event = await conn.wait_event(request_id, deadline)
        except BaseException:
            # Timeout of an enclosing scope, task cancelled: the arbiter drops the call.
            conn.cancel(request_id)
            raise
        if event is None:
            raise _timed_out(conn, request_id, timeout, what)
        return _outcome(event)

    async def execute_async(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`execute` for asyncio; many tasks may call concurrently on one client."""
        return await self.call_async(app_path, action, args, kwargs)

    async def call_async(
        self,
        app_path: str,
        action: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`call` for asyncio. Cancelling the awaiting task cancels the dirty call."""
        return await self._run_async(*self._unary(app_path, action, args, kwargs, timeout))

    def stream_async(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> DirtyAsyncStream:
        """Async-iterate over the chunks a generator action yields."""
        return self.call_stream_async(app_path, action, args, kwargs)

    def call_stream_async(
        self,
        app_path: str,
        action: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        total_timeout: float | None = None,
    ) -> DirtyAsyncStream:
        """:meth:`call_stream` for asyncio."""
        return DirtyAsyncStream(
            self, app_path, action, args, kwargs, self._effective(timeout), total_timeout
        )

    async def request_async(
        self, type: MessageType, payload: Any = None, timeout: float | None = None
    ) -> Any:
        """:meth:`request` for asyncio."""
        return await self._run_async(*self._control(type, payload, timeout))


def _timed_out(conn: SyncConnection | AsyncConnection, request_id: int, timeout: float | None,
               what: Callable[[], str]) -> DirtyTimeoutError:
    """Cancel a unary call whose wait ran out; returns the error to raise.

    ``what()`` names the call in the message; it is built only here, off the fast path.
    """
    conn.cancel(request_id)
    return DirtyTimeoutError(f"{what()} timed out after {timeout}s", timeout=timeout)


def _outcome(event: Event) -> Any:
    if isinstance(event, Result):
        return event.value
    if isinstance(event, Failure):
        raise event.error
    raise DirtyProtocolError(f"unexpected {type(event).__name__} for a unary call")


class _ClientCache:
    """The clients handed out by get_dirty_client*(): one per thread, one per event loop.

    Per loop, not per task (a ContextVar would give each ASGI connection task its own client
    and its own arbiter connection). A WeakKeyDictionary lets a closed, dropped loop take its
    client with it.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.local = threading.local()
        self.by_loop: weakref.WeakKeyDictionary[Any, DirtyClient] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        # Inherited clients share the parent's sockets: never reuse them in the child.
        client = getattr(self.local, "client", None)
        if client is not None:
            client._forget_after_fork()
        self._reset()


# Process-wide by definition (the API promises one client per thread / loop); the only
# module-level state of the package, and reset in forked children.
_CACHE = _ClientCache()
os.register_at_fork(after_in_child=_CACHE.after_fork_in_child)


def get_dirty_client(timeout: float | None = 30.0) -> DirtyClient:
    """This thread's DirtyClient for ``$GUNICORN_DIRTY_SOCKET``, created on first use.

    ``timeout`` applies when the client is created; use ``client.call(..., timeout=)`` for one
    call. Raises DirtyConnectionError when GUNICORN_DIRTY_SOCKET is not set.
    """
    client: DirtyClient | None = getattr(_CACHE.local, "client", None)
    if client is None:
        client = DirtyClient(None, timeout)
        _CACHE.local.client = client
    return client


def close_dirty_client() -> None:
    """Close and forget this thread's cached client (a no-op when there is none)."""
    client = getattr(_CACHE.local, "client", None)
    if client is not None:
        del _CACHE.local.client
        client.close()


async def get_dirty_client_async(timeout: float | None = 30.0) -> DirtyClient:
    """The running event loop's DirtyClient, shared by all its tasks; created on first use."""
    import asyncio

    loop = asyncio.get_running_loop()
    with _CACHE.lock:
        client = _CACHE.by_loop.get(loop)
        if client is None:
            client = DirtyClient(None, timeout)
            _CACHE.by_loop[loop] = client
    return client


async def close_dirty_client_async() -> None:
    """Close and forget the running event loop's cached client."""
    import asyncio

    loop = asyncio.get_running_loop()
    with _CACHE.lock:
        client = _CACHE.by_loop.pop(loop, None)
    if client is not None:
        await client.close_async()
