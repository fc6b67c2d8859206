"""The command table of the control socket: the core's commands plus the plugins'.

A command is a sequence of words (``worker add``) followed by arguments (``2``). The request's
``command`` string is split like a shell would (``shlex``) and its ``args`` appended; the
command is the longest run of leading words, compared case-insensitively, that names an entry of
the table; the remaining words are its arguments, kept as they are (stash keys are
case-sensitive).

Core commands run in the arbiter's loop and must be quick: they read memory, change a counter
or queue a signal. Plugin commands (``control_commands(cfg)`` hook: ``{"stash get": handler}``)
may block briefly on another process, so they come back as a :class:`Deferred` that the server
runs in a command thread. The dirty commands have core placeholders so that ``show dirty``
answers ``enabled: false`` and ``dirty add`` explains what is missing when gunicorn-dirty is not
installed; gunicorn-dirty's handlers replace them.
"""

from __future__ import annotations

import logging
import shlex
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn.control import views
from gunicorn.control.errors import CommandError
from gunicorn.control.views import ControlledArbiter

Handler = Callable[[list[str]], Any]
DIRTY_DISABLED = ("dirty arbiters are not enabled (install gunicorn-dirty and set dirty_apps "
                  "to use them)")
# Core entries a plugin may replace; any other name clash keeps the core's command.
PLUGIN_REPLACEABLE = frozenset({"show dirty", "dirty add", "dirty remove"})
SHUTDOWN_SIGNALS = {"graceful": signal.SIGTERM, "quick": signal.SIGINT}

log = logging.getLogger("gunicorn.error")


@dataclass(frozen=True, slots=True)
class Deferred:
    """Work that may block: the server runs ``run()`` in a command thread."""

    name: str
    run: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the table. ``run(args)`` returns the reply data or a :class:`Deferred`."""

    name: str
    usage: str
    summary: str
    run: Callable[[list[str]], dict[str, Any] | Deferred]


class CommandTable:
    """Commands by name, resolved by longest word prefix."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self._commands = {c.name: c for c in commands}
        self._depth = max((len(name.split()) for name in self._commands), default=1)

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def __iter__(self) -> Any:
        return iter(self._commands.values())

    def resolve(self, words: list[str]) -> tuple[Command, list[str]]:
        """The command named by the leading ``words`` and its arguments; CommandError if none."""
        if not words:
            raise CommandError("empty command")
        lowered = [w.lower() for w in words]
        for n in range(min(len(words), self._depth), 0, -1):
            command = self._commands.get(" ".join(lowered[:n]))
            if command is not None:
                return command, words[n:]
        siblings = sorted(name for name in self._commands if name.split()[0] == lowered[0])
        text = " ".join(words)
        if siblings and len(words) == 1:
            raise CommandError(f"incomplete command: {text} (one of: {', '.join(siblings)})")
        if siblings:
            raise CommandError(f"unknown command: {text} (one of: {', '.join(siblings)})")
        raise CommandError(f"unknown command: {text} (try: help)")

    def execute(self, command: str, args: Iterable[str] = ()) -> dict[str, Any] | Deferred:
        """Parse and run ``command`` + ``args``; CommandError/ValueError for the client."""
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise CommandError(f"cannot parse command {command!r}: {exc}") from None
        found, rest = self.resolve(words + list(args))
        return found.run(rest)

    def help(self) -> dict[str, Any]:
        return {"commands": {c.usage: c.summary for c in self._commands.values()}}


# -- building the table -----------------------------------------------------------------------


def build_table(arbiter: ControlledArbiter, plugin_handlers: Mapping[str, Handler],
                control_path: Callable[[], str | None]) -> CommandTable:
    """The core commands bound to ``arbiter``, plus the plugins' ``plugin_handlers``."""
    core = CoreCommands(arbiter, control_path, plugin_handler(plugin_handlers, "show dirty"))
    commands = {c.name: c for c in core.commands()}
    plugins: dict[str, Command] = {}
    for raw_name, handler in plugin_handlers.items():
        name = " ".join(raw_name.lower().split())
        if not name or (name in commands and name not in PLUGIN_REPLACEABLE):
            log.warning("Control command %r from a plugin ignored: the name is taken", raw_name)
            continue
        plugins[name] = plugin_command(name, handler)
    commands.update(plugins)
    table = CommandTable(commands.values())
    core.table = table
    return table


def plugin_handler(handlers: Mapping[str, Handler], name: str) -> Handler | None:
    for raw_name, handler in handlers.items():
        if " ".join(raw_name.lower().split()) == name:
            return handler
    return None


def plugin_command(name: str, handler: Handler) -> Command:
    doc = (getattr(handler, "__doc__", None) or "").strip()
    summary = doc.splitlines()[0] if doc else f"{name} (plugin command)"
    usage = getattr(handler, "usage", None) or name

    def run(args: list[str]) -> Deferred:
        return Deferred(name, lambda: handler(list(args)))

    return Command(name, str(usage), summary, run)


class CoreCommands:
    """The core's handlers, bound to one arbiter."""

    def __init__(self, arbiter: ControlledArbiter, control_path: Callable[[], str | None],
                 plugin_show_dirty: Handler | None = None) -> None:
        self.arbiter = arbiter
        self.control_path = control_path
        self.plugin_show_dirty = plugin_show_dirty
        # Set by build_table once the whole table exists (help lists the plugins' too).
        self.table: CommandTable | None = None

    def commands(self) -> list[Command]:
        return [
            Command("show all", "show all", "master, HTTP workers, sidecars, stats and dirty "
                    "workers", self.show_all),
            Command("show workers", "show workers", "HTTP workers: pid, age, booted, requests, "
                    "last heartbeat", self.show_workers),
            Command("show dirty", "show dirty", "dirty arbiter and workers (gunicorn-dirty)",
                    self.show_dirty),
            Command("show config", "show config", "the current value of every setting",
                    self.show_config),
            Command("show stats", "show stats", "uptime, spawned and killed workers, reloads",
                    self.show_stats),
            Command("show listeners", "show listeners", "the listening sockets",
                    self.show_listeners),
            Command("worker add", "worker add [N]", "run N more HTTP workers (default 1)",
                    self.worker_add),
            Command("worker remove", "worker remove [N]", "run N fewer HTTP workers, at least 1",
                    self.worker_remove),
            Command("worker kill", "worker kill PID", "stop one HTTP worker gracefully (it is "
                    "replaced)", self.worker_kill),
            Command("dirty add", "dirty add [N]", "run N more dirty workers (gunicorn-dirty)",
                    self.dirty_disabled),
            Command("dirty remove", "dirty remove [N]", "run N fewer dirty workers "
                    "(gunicorn-dirty)", self.dirty_disabled),
            Command("reload", "reload", "reload the configuration and replace the workers (HUP)",
                    self.reload),
            Command("reopen", "reopen", "reopen the log files (USR1)", self.reopen),
            Command("shutdown", "shutdown [graceful|quick]", "stop the server (TERM, or INT "
                    "for quick)", self.shutdown),
            Command("help", "help", "this list", self.help),
        ]

    # -- show -------------------------------------------------------------------------------

    def show_all(self, args: list[str]) -> dict[str, Any] | Deferred:
        no_args("show all", args)
        data = views.all_data(self.arbiter, self.control_path())
        handler = self.plugin_show_dirty
        if handler is None:
            return data

        def with_dirty() -> dict[str, Any]:
            try:
                data["dirty"] = handler([])
            except Exception as exc:  # plugin code: show what we have rather than nothing
                log.warning("show all: the dirty part failed: %s", exc, exc_info=True)
                data["dirty"] = {"enabled": True, "workers": [], "error": str(exc)}
            return data

        return Deferred("show all", with_dirty)

    def show_workers(self, args: list[str]) -> dict[str, Any]:
        no_args("show workers", args)
        return views.workers_data(self.arbiter)

    def show_dirty(self, args: list[str]) -> dict[str, Any]:
        no_args("show dirty", args)
        return views.no_dirty()

    def show_config(self, args: list[str]) -> dict[str, Any]:
        no_args("show config", args)
        return views.config_data(self.arbiter.cfg, self.control_path())

    def show_stats(self, args: list[str]) -> dict[str, Any]:
        no_args("show stats", args)
        return views.stats_data(self.arbiter)

    def show_listeners(self, args: list[str]) -> dict[str, Any]:
        no_args("show listeners", args)
        return views.listeners_data(self.arbiter)

    # -- workers ----------------------------------------------------------------------------

    def worker_add(self, args: list[str]) -> dict[str, Any]:
        count = count_arg("worker add", args)
        previous = self.arbiter.num_workers
        # The setter runs the nworkers_changed hook; the loop spawns right after this turn.
        self.arbiter.num_workers = previous + count
        return {"added": count, "previous": previous, "total": previous + count}

    def worker_remove(self, args: list[str]) -> dict[str, Any]:
        count = count_arg("worker remove", args)
        previous = self.arbiter.num_workers
        total = max(1, previous - count)
        if total != previous:
            self.arbiter.num_workers = total
        return {"removed": previous - total, "previous": previous, "total": total}

    def worker_kill(self, args: list[str]) -> dict[str, Any]:
        if len(args) != 1:
            raise CommandError("usage: worker kill PID")
        pid = parse_int(args[0], "PID")
        if pid not in self.arbiter.workers:
            raise CommandError(f"no HTTP worker with pid {pid}")
        self.arbiter.kill_worker(pid, signal.SIGTERM)
        return {"killed": pid}

    def dirty_disabled(self, args: list[str]) -> dict[str, Any]:
        raise CommandError(DIRTY_DISABLED)

    # -- process ----------------------------------------------------------------------------

    def reload(self, args: list[str]) -> dict[str, Any]:
        no_args("reload", args)
        self.arbiter.signals.put(signal.SIGHUP)
        return {"status": "reloading"}

    def reopen(self, args: list[str]) -> dict[str, Any]:
        no_args("reopen", args)
        self.arbiter.signals.put(signal.SIGUSR1)
        return {"status": "reopening"}

    def shutdown(self, args: list[str]) -> dict[str, Any]:
        if len(args) > 1:
            raise CommandError("usage: shutdown [graceful|quick]")
        mode = args[0].lower() if args else "graceful"
        if mode not in SHUTDOWN_SIGNALS:
            raise CommandError(f"shutdown mode must be graceful or quick, not {args[0]!r}")
        self.arbiter.signals.put(SHUTDOWN_SIGNALS[mode])
        return {"status": "shutting_down", "mode": mode}

    def help(self, args: list[str]) -> dict[str, Any]:
        no_args("help", args)
        assert self.table is not None
        return self.table.help()


def no_args(name: str, args: list[str]) -> None:
    if args:
        raise CommandError(f"{name} takes no arguments (got: {' '.join(args)})")


def parse_int(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise CommandError(f"{what} must be an integer, not {text!r}") from None


def count_arg(name: str, args: list[str]) -> int:
    if len(args) > 1:
        raise CommandError(f"usage: {name} [N]")
    count = parse_int(args[0], "N") if args else 1
    if count < 1:
        raise CommandError(f"N must be a positive integer, not {count}")
    return count
