"""The control-socket commands of gunicorn-dirty: ``show dirty``, ``dirty add|remove``, ``stash``.

The master's control server runs each handler in a short-lived command thread (see
docs/plugins.md); a handler opens a fresh :class:`~gunicorn.dirty.client.DirtyClient` to the
dirty arbiter's socket, sends one STATUS, MANAGE or STASH frame, and closes the client before
returning. Nothing stays open between commands, so the master's descriptor count is the same
after any number of commands and reloads, and the dirty arbiter is managed by messages, never
by signals.

The plugin registers these only when a pool is configured; otherwise the core's placeholders
answer ``show dirty`` (``enabled: false``) and ``dirty add|remove`` (an error). With the stash
in Redis (``dirty_stash_url``) the ``stash`` commands ask Redis directly, on a connection
opened and closed per command like the arbiter's, and exist with or without a pool.

Replies are JSON objects (the control codec is JSON): stash values are converted by
:func:`jsonable_value`, which tags ``bytes`` as ``{"type": "bytes", "base64": ...}``.
Usage errors raise :class:`ValueError`; a refusal the operator should simply read (the arbiter
is restarting, a stash key or table is missing) raises
:class:`~gunicorn.control.errors.CommandError`, a ``ValueError`` too, so the client gets the
message as it is and the master's log gets no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable
from typing import Any

from gunicorn.control.errors import CommandError
from gunicorn.dirty.client import DirtyClient
from gunicorn.dirty.codec import MessageType
from gunicorn.dirty.errors import (
    DirtyConnectionError,
    DirtyError,
    DirtyTimeoutError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    StashUnavailableError,
)
from gunicorn.dirty.stash.backend import ArbiterBackend, StashBackend
from gunicorn.dirty.stash.config import DEFAULT_PREFIX
from gunicorn.dirty.stash.rules import key_text

Handler = Callable[[list[str]], dict[str, Any]]

# Well inside the control server's 15 s limit: an arbiter that does not answer in this time is
# reported as such rather than as a generic command timeout.
REQUEST_TIMEOUT = 5.0


class DirtyCommands:
    """The command handlers for one master, talking to the dirty arbiter at ``socket_path``
    (``None``: no pool) and to the stash in Redis at ``stash_url`` (``None``: in the arbiter)."""

    def __init__(self, socket_path: str | None, timeout: float = REQUEST_TIMEOUT, *,
                 stash_url: str | None = None, stash_prefix: str = DEFAULT_PREFIX) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.stash_url = stash_url
        self.stash_prefix = stash_prefix

    def handlers(self) -> dict[str, Handler]:
        """``{"command words": handler}`` for the ``control_commands`` plugin hook."""
        pool = {
            "show dirty": _handler(self.show_dirty, "show dirty",
                                   "dirty arbiter, dirty workers and apps"),
            "dirty add": _handler(self.dirty_add, "dirty add [N]",
                                  "run N more dirty workers (default 1)"),
            "dirty remove": _handler(self.dirty_remove, "dirty remove [N]",
                                     "run N fewer dirty workers (default 1)"),
        }
        stash = {
            "stash tables": _handler(self.stash_tables, "stash tables",
                                     "stash tables with their key counts"),
            "stash keys": _handler(self.stash_keys, "stash keys TABLE [PATTERN]",
                                   "keys of a stash table, optionally matching a glob"),
            "stash get": _handler(self.stash_get, "stash get TABLE KEY",
                                  "the value of one stash key"),
        }
        commands = pool if self.socket_path else {}
        if self.socket_path or self.stash_url:
            commands.update(stash)
        return commands

    # -- show dirty ---------------------------------------------------------------------------

    def show_dirty(self, args: list[str]) -> dict[str, Any]:
        _no_args("show dirty", args)
        try:
            status = self._request(MessageType.STATUS, {})
        except CommandError as exc:
            # Between a crash and the master's respawn there is no arbiter: say so, as data.
            return {"enabled": True, "running": False, "workers": [], "error": str(exc)}
        data: dict[str, Any] = {"enabled": True, "running": True,
                                "pid": status.get("arbiter_pid")}
        data.update((k, v) for k, v in status.items() if k != "arbiter_pid")
        return data

    # -- dirty add / remove -------------------------------------------------------------------

    def dirty_add(self, args: list[str]) -> dict[str, Any]:
        return self._manage("add", "added", args)

    def dirty_remove(self, args: list[str]) -> dict[str, Any]:
        return self._manage("remove", "removed", args)

    def _manage(self, op: str, done_key: str, args: list[str]) -> dict[str, Any]:
        count = _count(f"dirty {op}", args)
        result = self._request(MessageType.MANAGE, {"op": op, "count": count})
        reply: dict[str, Any] = {done_key: result.get("done"), "requested": count,
                                 "total": result.get("workers"), "target": result.get("target")}
        if result.get("reason"):
            reply["reason"] = result["reason"]
        return reply

    # -- stash --------------------------------------------------------------------------------

    def stash_tables(self, args: list[str]) -> dict[str, Any]:
        _no_args("stash tables", args)
        info = self._stash({"op": "info"})
        tables = [{"name": name, "keys": counts.get("keys"), "expiring": counts.get("expiring")}
                  for name, counts in sorted(info.items())]
        return {"tables": tables, "count": len(tables)}

    def stash_keys(self, args: list[str]) -> dict[str, Any]:
        if not 1 <= len(args) <= 2:
            raise ValueError("usage: stash keys TABLE [PATTERN]")
        table = args[0]
        pattern = args[1] if len(args) == 2 else None
        keys = self._stash({"op": "keys", "table": table, "pattern": pattern})
        keys = sorted(keys, key=lambda k: (key_text(k), type(k).__name__))
        return {"table": table, "pattern": pattern, "count": len(keys),
                "keys": [jsonable_value(k) for k in keys]}

    def stash_get(self, args: list[str]) -> dict[str, Any]:
        if len(args) != 2:
            raise ValueError("usage: stash get TABLE KEY")
        table, text = args
        for key in _key_candidates(text):
            try:
                value = self._stash({"op": "get", "table": table, "key": key})
            except CommandError as exc:
                if isinstance(exc.__cause__, StashKeyNotFoundError):
                    continue
                raise
            return {"table": table, "key": jsonable_value(key), "key_type": type(key).__name__,
                    "value": jsonable_value(value), "value_type": type(value).__name__}
        raise CommandError(f"no key {text!r} in stash table {table!r}")

    def _stash(self, payload: dict[str, Any]) -> Any:
        """One stash operation, on a backend opened and closed for it."""
        backend: StashBackend
        if self.stash_url:
            from gunicorn.dirty.stash.redis_backend import RedisBackend

            backend = RedisBackend(self.stash_url, self.stash_prefix, self.timeout)
        else:
            backend = ArbiterBackend(self.socket_path, self.timeout)
        with contextlib.closing(backend):
            return self._answer(lambda: backend.call(payload))

    # -- the round trip -----------------------------------------------------------------------

    def _request(self, kind: MessageType, payload: dict[str, Any]) -> Any:
        """One frame to the dirty arbiter on a client closed before returning."""
        client = DirtyClient(self.socket_path, timeout=self.timeout)
        with contextlib.closing(client):
            return self._answer(lambda: client.request(kind, payload))

    def _answer(self, run: Callable[[], Any]) -> Any:
        """``run()``, its failures turned into messages for the operator."""
        try:
            return run()
        except StashUnavailableError as exc:  # before DirtyConnectionError: it is one too
            raise CommandError(str(exc)) from exc
        except DirtyConnectionError as exc:
            raise CommandError(f"the dirty arbiter is not running (it may be restarting): "
                               f"{exc}") from exc
        except DirtyTimeoutError as exc:
            raise CommandError(f"the dirty arbiter did not answer within "
                               f"{self.timeout:g}s") from exc
        except (StashTableNotFoundError, StashKeyNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        except DirtyError as exc:
            if self.stash_url:
                raise CommandError(str(exc)) from exc
            raise CommandError(f"the dirty arbiter refused: {exc}") from exc


def jsonable_value(value: Any) -> Any:
    """A stash value (any msgpack value) made of JSON types.

    ``bytes`` become ``{"type": "bytes", "base64": "..."}``, non-finite floats their ``str``
    (``"nan"``, ``"inf"``), and map keys that JSON cannot carry (bytes) their ``repr``.
    """
    if isinstance(value, bytes | bytearray):
        return {"type": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable_value(v) for v in value]
    if isinstance(value, dict):
        return {_map_key(k): jsonable_value(v) for k, v in value.items()}
    return value


def _map_key(key: Any) -> Any:
    if key is None or isinstance(key, str | int | float | bool):
        return key
    return repr(key)


def _key_candidates(text: str) -> list[Any]:
    """The stash keys a command-line KEY may name: as typed, then as an int, then as bytes.

    ``stash keys`` shows int keys as numbers and matches bytes keys decoded as latin-1, so
    the same spellings find them here.
    """
    candidates: list[Any] = [text]
    with contextlib.suppress(ValueError):
        number = int(text, 10)
        if str(number) == text:
            candidates.append(number)
    with contextlib.suppress(UnicodeEncodeError):
        candidates.append(text.encode("latin-1"))
    return candidates


def _handler(run: Handler, usage: str, summary: str) -> Handler:
    """``run`` with the ``help`` summary (first docstring line) and ``usage`` the core reads."""
    def handler(args: list[str]) -> dict[str, Any]:
        return run(args)

    handler.__doc__ = summary
    handler.usage = usage  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = run.__name__
    return handler


def _no_args(name: str, args: list[str]) -> None:
    if args:
        raise ValueError(f"{name} takes no arguments (got: {' '.join(args)})")


def _count(name: str, args: list[str]) -> int:
    if len(args) > 1:
        raise ValueError(f"usage: {name} [N]")
    if not args:
        return 1
    try:
        count = int(args[0], 10)
    except ValueError:
        raise ValueError(f"N must be a positive integer, not {args[0]!r}") from None
    if count < 1:
        raise ValueError(f"N must be a positive integer, not {count}")
    return count
