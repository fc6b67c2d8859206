"""Errors of gunicorn-dirty, and how they cross the wire.

Every class carries a stable integer ``code`` (an :class:`ErrorCode`). An ERROR frame carries
``err.to_payload()``; the receiving side calls :func:`error_from_payload`, which looks the code up
in a registry and rebuilds an instance of the *same class* with the same fields, so
``except StashKeyNotFoundError`` works in an HTTP worker for an error raised in the arbiter::

    GunicornError                           gunicorn.errors (core)
    └── DirtyError                      1   root; ``message``
        ├── DirtyTimeoutError           2   ``timeout`` (seconds) elapsed
        ├── DirtyConnectionError        3   ``socket_path`` unreachable / connection lost
        ├── DirtyWorkerError            4   ``worker_id`` died or misbehaved during the call
        ├── DirtyAppError              10   app_path, action, error_type, traceback
        │   ├── DirtyAppNotFoundError  11   no such app (or it failed to load)
        │   └── DirtyActionNotFoundError 12 the app has no such public action
        ├── DirtyNoWorkersAvailableError 20 no worker holds ``app_path``
        ├── DirtyBusyError             21   ``app_path`` already has ``limit`` calls waiting
        ├── DirtyProtocolError         30   malformed frame or payload (remote broke the wire)
        ├── DirtySerializationError    31   value not msgpack-able (local; also a TypeError)
        └── StashError                 40   stash failure (gunicorn.dirty.stash)
            ├── StashTableNotFoundError 41  ``table``
            ├── StashKeyNotFoundError  42   ``table``, ``key`` (also a KeyError)
            └── StashUnavailableError  43   ``address``: the stash's Redis is unreachable
                │                           (also a DirtyConnectionError)
                └── StashTimeoutError  44   ... or did not answer in ``timeout`` seconds
                                            (also a DirtyTimeoutError)

Rebuilding never calls the subclass ``__init__`` (its signature is for raisers, not for the
wire): it restores ``message`` and the class's declared ``fields`` directly. A user-defined
subclass without its own code travels as its nearest registered ancestor.
"""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar

from gunicorn.errors import GunicornError


class ErrorCode(IntEnum):
    """Stable wire codes. Never renumber: old and new processes coexist during a reload."""

    DIRTY = 1
    TIMEOUT = 2
    CONNECTION = 3
    WORKER = 4
    APP = 10
    APP_NOT_FOUND = 11
    ACTION_NOT_FOUND = 12
    NO_WORKERS = 20
    BUSY = 21
    PROTOCOL = 30
    SERIALIZATION = 31
    STASH = 40
    STASH_TABLE_NOT_FOUND = 41
    STASH_KEY_NOT_FOUND = 42
    STASH_UNAVAILABLE = 43
    STASH_TIMEOUT = 44


class DirtyError(GunicornError):
    """Root of every gunicorn-dirty error. ``str(err)`` is ``err.message`` plus context."""

    code: ClassVar[ErrorCode] = ErrorCode.DIRTY
    # Attribute names (besides ``message``) that travel in the payload and are restored.
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str = "dirty error") -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle through the wire form so the keyword-only constructors never get in the way.
        return (error_from_payload, (self.to_payload(),))

    def to_payload(self) -> dict[str, Any]:
        """The msgpack-able map an ERROR frame carries under ``"error"``."""
        return {
            "code": int(self.code),
            "type": type(self).__name__,
            "message": self.message,
            "fields": {name: getattr(self, name, None) for name in self.fields},
        }


class DirtyTimeoutError(DirtyError):
    """A call (or the wait for the next stream chunk) took longer than ``timeout`` seconds."""

    code = ErrorCode.TIMEOUT
    fields: ClassVar[tuple[str, ...]] = ("timeout",)

    def __init__(self, message: str = "operation timed out", timeout: float | None = None) -> None:
        self.timeout = timeout
        super().__init__(message)


class DirtyConnectionError(DirtyError):
    """The dirty arbiter at ``socket_path`` cannot be reached, or the connection dropped."""

    code = ErrorCode.CONNECTION
    fields: ClassVar[tuple[str, ...]] = ("socket_path",)

    def __init__(self, message: str = "connection failed", socket_path: str | None = None) -> None:
        self.socket_path = socket_path
        super().__init__(message)

    def __str__(self) -> str:
        if self.socket_path and self.socket_path not in self.message:
            return f"{self.message} (socket {self.socket_path})"
        return self.message


class DirtyWorkerError(DirtyError):
    """The dirty worker ``worker_id`` (a pid) died or failed while holding the call."""

    code = ErrorCode.WORKER
    fields: ClassVar[tuple[str, ...]] = ("worker_id",)

    def __init__(self, message: str = "dirty worker failed", worker_id: int | None = None) -> None:
        self.worker_id = worker_id
        super().__init__(message)


class DirtyAppError(DirtyError):
    """An action raised. ``error_type`` is the original exception class name, ``traceback`` the
    formatted traceback from the dirty worker (``None`` when not available)."""

    code = ErrorCode.APP
    fields: ClassVar[tuple[str, ...]] = ("app_path", "action", "error_type", "traceback")

    def __init__(
        self,
        message: str = "dirty app error",
        app_path: str | None = None,
        action: str | None = None,
        error_type: str | None = None,
        traceback: str | None = None,
    ) -> None:
        self.app_path = app_path
        self.action = action
        self.error_type = error_type
        self.traceback = traceback
        super().__init__(message)

    def __str__(self) -> str:
        text = f"{self.error_type}: {self.message}" if self.error_type else self.message
        where = ".".join(part for part in (self.app_path, self.action) if part)
        return f"{text} (in {where})" if where else text


class DirtyAppNotFoundError(DirtyAppError):
    """No app ``app_path`` is configured, or it cannot be imported."""

    code = ErrorCode.APP_NOT_FOUND

    def __init__(self, app_path: str | None = None, message: str | None = None) -> None:
        super().__init__(message or f"dirty app not found: {app_path}", app_path=app_path)


class DirtyActionNotFoundError(DirtyAppError):
    """The app has no public action by that name (names starting with ``_`` are refused)."""

    code = ErrorCode.ACTION_NOT_FOUND

    def __init__(
        self, app_path: str | None = None, action: str | None = None, message: str | None = None
    ) -> None:
        text = message or f"unknown action {action!r} for dirty app {app_path}"
        super().__init__(text, app_path=app_path, action=action)


class DirtyNoWorkersAvailableError(DirtyError):
    """No running dirty worker holds ``app_path`` (none started, or all died)."""

    code = ErrorCode.NO_WORKERS
    fields: ClassVar[tuple[str, ...]] = ("app_path",)

    def __init__(self, app_path: str | None = None, message: str | None = None) -> None:
        self.app_path = app_path
        super().__init__(message or f"no dirty worker available for {app_path}")


class DirtyBusyError(DirtyError):
    """Backpressure: ``app_path`` already has ``limit`` calls waiting. Map it to HTTP 503."""

    code = ErrorCode.BUSY
    fields: ClassVar[tuple[str, ...]] = ("app_path", "limit")

    def __init__(
        self, app_path: str | None = None, limit: int | None = None, message: str | None = None
    ) -> None:
        self.app_path = app_path
        self.limit = limit
        super().__init__(message or f"dirty app {app_path} is busy ({limit} calls waiting)")


class DirtyProtocolError(DirtyError):
    """A peer sent bytes that are not a valid frame or payload. The connection is unusable."""

    code = ErrorCode.PROTOCOL

    def __init__(self, message: str = "protocol error") -> None:
        super().__init__(message)


class DirtySerializationError(DirtyError, TypeError):
    """A value to send is not msgpack-able; ``type_name`` names its type. Raised on the sending
    side, before anything is written, so the connection stays usable. Also a ``TypeError``."""

    code = ErrorCode.SERIALIZATION
    fields: ClassVar[tuple[str, ...]] = ("type_name",)

    def __init__(self, type_name: str | None = None, message: str | None = None) -> None:
        self.type_name = type_name
        super().__init__(
            message
            or f"cannot send a value of type {type_name}: only None, bool, int, float, str,"
            " bytes, list/tuple and dict travel to dirty workers"
        )


class StashError(DirtyError):
    """Root of the stash errors."""

    code = ErrorCode.STASH

    def __init__(self, message: str = "stash error") -> None:
        super().__init__(message)


class StashTableNotFoundError(StashError):
    """The stash table ``table`` does not exist."""

    code = ErrorCode.STASH_TABLE_NOT_FOUND
    fields: ClassVar[tuple[str, ...]] = ("table",)

    def __init__(self, table: str | None = None, message: str | None = None) -> None:
        self.table = table
        super().__init__(message or f"stash table not found: {table}")


class StashKeyNotFoundError(StashError, KeyError):
    """``key`` is not in stash table ``table``. A ``KeyError`` too, so ``t[missing]`` raises what a
    dict would."""

    code = ErrorCode.STASH_KEY_NOT_FOUND
    fields: ClassVar[tuple[str, ...]] = ("table", "key")

    def __init__(
        self, table: str | None = None, key: Any = None, message: str | None = None
    ) -> None:
        self.table = table
        self.key = key
        super().__init__(message or f"key {key!r} not found in stash table {table}")


class StashUnavailableError(StashError, DirtyConnectionError):
    """The store holding the stash (Redis, with ``dirty_stash_url``) cannot be reached, or the
    connection dropped. ``address`` names it without credentials. Also a
    :class:`DirtyConnectionError`, which is what an unreachable dirty arbiter raises, so one
    ``except`` serves both backends. The call may be retried: nothing was stored unless the
    connection dropped after the request was sent."""

    code = ErrorCode.STASH_UNAVAILABLE
    fields: ClassVar[tuple[str, ...]] = ("address",)

    def __init__(self, message: str = "the stash is unreachable",
                 address: str | None = None) -> None:
        self.address = address
        self.socket_path = None
        DirtyError.__init__(self, message)

    def __str__(self) -> str:
        return self.message


class StashTimeoutError(StashUnavailableError, DirtyTimeoutError):
    """The stash's Redis did not answer within ``timeout`` seconds. The operation may or may not
    have been applied. Also a :class:`DirtyTimeoutError`, as for the in-arbiter store."""

    code = ErrorCode.STASH_TIMEOUT
    fields: ClassVar[tuple[str, ...]] = ("address", "timeout")

    def __init__(self, message: str = "the stash did not answer in time",
                 address: str | None = None, timeout: float | None = None) -> None:
        self.timeout = timeout
        super().__init__(message, address)


ERROR_CLASSES: MappingProxyType[int, type[DirtyError]] = MappingProxyType(
    {
        cls.code: cls
        for cls in (
            DirtyError,
            DirtyTimeoutError,
            DirtyConnectionError,
            DirtyWorkerError,
            DirtyAppError,
            DirtyAppNotFoundError,
            DirtyActionNotFoundError,
            DirtyNoWorkersAvailableError,
            DirtyBusyError,
            DirtyProtocolError,
            DirtySerializationError,
            StashError,
            StashTableNotFoundError,
            StashKeyNotFoundError,
            StashUnavailableError,
            StashTimeoutError,
        )
    }
)


def wrap_app_error(exc: BaseException, app_path: str | None, action: str | None = None,
                   message: str | None = None) -> DirtyError:
    """An exception raised by user code, as it travels to the caller.

    A DirtyError keeps its class; anything else becomes a :class:`DirtyAppError` whose
    ``error_type`` is the original class name and ``traceback`` the worker's traceback.
    ``message`` replaces the exception's own text (used to say *when* it failed).
    """
    if isinstance(exc, DirtyError):
        return exc
    import traceback  # only on the failure path: keeps importing this module cheap

    return DirtyAppError(message or str(exc) or type(exc).__name__, app_path=app_path,
                         action=action, error_type=type(exc).__name__,
                         traceback="".join(traceback.format_exception(exc)))


def error_from_payload(payload: Any) -> DirtyError:
    """Rebuild the error an ERROR frame carries (``payload`` is its ``"error"`` map).

    The class comes from the registry by ``code``; an unknown code (a newer peer) gives a plain
    :class:`DirtyError` with the message. A payload that is not a map with a str ``message``
    gives a :class:`DirtyProtocolError` describing it; this function never raises.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), str):
        return DirtyProtocolError(f"malformed error payload: {payload!r:.200}")
    code = payload.get("code")
    cls = ERROR_CLASSES.get(code, DirtyError) if isinstance(code, int) else DirtyError
    fields = payload.get("fields")
    if not isinstance(fields, dict):
        fields = {}
    err = cls.__new__(cls)
    err.message = payload["message"]
    for name in cls.fields:
        setattr(err, name, fields.get(name))
    # Exception.__init__ (not the subclass's) sets ``args`` without re-deriving the message.
    Exception.__init__(err, err.message)
    return err
