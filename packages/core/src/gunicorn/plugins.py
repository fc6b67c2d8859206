"""The plugin relay: how gunicorn-http2, gunicorn-dirty and third parties plug into the core.

A plugin is an object registered in the ``gunicorn.plugins`` entry-point group. The entry point
may name a class (instantiated with no arguments), a module, or an instance. Every hook is
optional; the relay calls only the ones a plugin defines. The core never imports a plugin package:
this module is the only way in.

Hooks (see :class:`PluginHooks` for signatures):

``add_settings(registry)``
    Contribute settings (``dirty_*``, ``http2_*``) to the same registry as the core's, before the
    command line is parsed.
``configure(cfg)``
    Validate the final configuration; raise :class:`~gunicorn.errors.ConfigError` to stop with
    exit code 2 before anything forks.
``sidecars(cfg) -> list[SidecarSpec]``
    Processes the arbiter supervises next to the HTTP workers (the dirty arbiter is the first).
``worker_environ(cfg) -> dict[str, str]``
    Environment variables set in each HTTP worker (and sidecar) before it starts.
``protocols(cfg) -> list``
    Connection protocols beyond HTTP/1.1 (chosen by ALPN id or by sniffing the first bytes).
``control_commands(cfg) -> dict[str, handler]``
    Commands added to the control socket.
``metrics(families)``
    Declare the plugin's metric families on ``families`` (a
    :class:`~gunicorn.instrument.metrics.MetricFamilies`: ``counter``, ``gauge``,
    ``histogram``, ``process_dead``) and keep the returned objects. Called once in the master
    before anything forks, whether metrics are on (prometheus_client objects) or off (objects
    that record nothing), so a plugin records unconditionally.
``health(cfg) -> dict[str, dict] | None``
    Sections added to the ``/healthz`` body, e.g. ``{"dirty": {"ok": True, "ready": 2,
    "expected": 2}}``; a section with ``"ok": False`` makes the answer 503. Called in the
    metrics sidecar for each ``/healthz`` request: it must answer within a second or so (read
    shared state, do not wait on workers).

A plugin can be blocked with ``--disable-plugin NAME`` (repeatable), also honoured from
``GUNICORN_CMD_ARGS``; NAME is the entry-point name.

Every plugin is checked when it is loaded (:func:`verify_plugin`), so a mistake is an error that
stops the server with exit code 2, not a hook silently never called: a hook that cannot be called
with its arguments, and a public method whose name is a near miss of a hook's (``add_setting``,
``sidecar``, ``workerEnviron``: within two edits, ignoring case, as for config-file typos). Helpers that are not hooks and
look like one are named with a leading underscore.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gunicorn.config.suggest import closest
from gunicorn.errors import PluginError

if TYPE_CHECKING:
    from gunicorn.config import Registry
    from gunicorn.config.typed import CoreSettings
    from gunicorn.instrument.metrics import MetricFamilies

PLUGIN_GROUP = "gunicorn.plugins"
# Each hook and the positional arguments the relay calls it with (see PluginHooks).
HOOK_PARAMETERS: Mapping[str, tuple[str, ...]] = types.MappingProxyType({
    "add_settings": ("registry",),
    "configure": ("cfg",),
    "sidecars": ("cfg",),
    "worker_environ": ("cfg",),
    "protocols": ("cfg",),
    "control_commands": ("cfg",),
    "metrics": ("families",),
    "health": ("cfg",),
})
HOOK_NAMES = tuple(HOOK_PARAMETERS)

log = logging.getLogger("gunicorn.error")


@runtime_checkable
class PluginHooks(Protocol):
    """The hooks a plugin may define. All are optional; this Protocol documents their shape."""

    def add_settings(self, registry: Registry) -> None: ...
    def configure(self, cfg: CoreSettings) -> None: ...
    def sidecars(self, cfg: CoreSettings) -> list[SidecarSpec]: ...
    def worker_environ(self, cfg: CoreSettings) -> dict[str, str]: ...
    def protocols(self, cfg: CoreSettings) -> list[Any]: ...
    def control_commands(self, cfg: CoreSettings) -> dict[str, Callable[..., Any]]: ...
    def metrics(self, families: MetricFamilies) -> None: ...
    def health(self, cfg: CoreSettings) -> Mapping[str, Mapping[str, Any]] | None: ...


def verify_plugin(name: str, obj: Any) -> None:
    """Check the hooks of the plugin ``name`` (pluggy's hook verification, without markers).

    Raises :class:`PluginError` naming the plugin, the method and the hooks when a hook cannot
    be called with the hook's positional arguments, when a hook attribute is not callable, or
    when a public method's name is a near miss of a hook's without being one (ignoring case;
    "near" is the config-file typo rule of :func:`gunicorn.config.suggest.closest`: two edits,
    one for names of up to 4 characters). Other public methods are the plugin's own business.
    """
    for attr, value in _public_callables(obj):
        if attr in HOOK_PARAMETERS:
            _check_signature(name, attr, value)
            continue
        near = closest(attr.lower(), HOOK_NAMES)
        if near is not None:
            raise PluginError(f"plugin {name!r}: method {attr!r} is not a hook (did you mean "
                              f"{near!r}?); the hooks are {_hook_list()}")
    for attr in HOOK_PARAMETERS:
        value = getattr(obj, attr, None)
        if value is not None and not callable(value):
            raise PluginError(f"plugin {name!r}: hook {attr!r} is not callable "
                              f"({type(value).__name__}); the hooks are {_hook_list()}")


def _public_callables(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, types.ModuleType):
        # A module plugin: only its own functions (not what it imported).
        return [(attr, value) for attr, value in vars(obj).items()
                if not attr.startswith("_") and inspect.isfunction(value)
                and value.__module__ == obj.__name__]
    found = []
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        value = getattr(obj, attr, None)
        if callable(value) and not isinstance(value, type):
            found.append((attr, value))
    return found


def _check_signature(plugin: str, hook: str, fn: Any) -> None:
    params = HOOK_PARAMETERS[hook]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check
    try:
        signature.bind(*params)
    except TypeError:
        raise PluginError(f"plugin {plugin!r}: hook {hook}{signature} cannot be called as "
                          f"{hook}({', '.join(params)}); the hooks are {_hook_list()}") from None


def _hook_list() -> str:
    return ", ".join(f"{hook}({', '.join(params)})" for hook, params in HOOK_PARAMETERS.items())


def _no_heartbeat() -> None:
    """``notify`` of a sidecar whose spec asks for no heartbeat."""


@dataclass(frozen=True, slots=True)
class SidecarContext:
    """What a sidecar's ``run`` receives in its forked child process.

    ``notify()`` tells the master the sidecar is alive; call it from the sidecar's loop (it is
    cheap and rate-limited) when the spec has a ``heartbeat_timeout``.
    """

    cfg: CoreSettings
    log: Any
    master_pid: int
    name: str
    notify: Callable[[], None] = _no_heartbeat


@dataclass(frozen=True, slots=True)
class SidecarSpec:
    """A process the arbiter supervises next to the HTTP workers.

    ``run(ctx)`` is called in a freshly forked child after the HTTP listeners have been closed in
    that child; its return value is the exit code (``None`` means 0). The sidecar must exit when
    the master dies (it can poll ``os.getppid() != ctx.master_pid``).

    Signals: the arbiter forwards HUP and USR1 as they are; on graceful stop it sends TERM and waits
    up to ``graceful_timeout`` seconds, on quick stop it sends QUIT; then SIGKILL. A sidecar that
    exits while the server runs is respawned with exponential backoff (``backoff_min`` doubling up
    to ``backoff_max`` seconds; reset once it stayed up ``backoff_max`` seconds).

    ``heartbeat_timeout`` (seconds, 0 for none): a sidecar that has not called ``ctx.notify()``
    for that long is hung; the master sends it SIGABRT, then SIGKILL, and respawns it.

    ``env`` is set in the child's environment before ``run``. With ``orphan_record`` the arbiter
    records the child (pid and start time) in its private runtime directory, and a master that
    starts fresh stops the sidecar of that name a crashed master of the same server left running,
    once the record proves the process is that sidecar (see :mod:`gunicorn.arbiter.orphans`).
    """

    name: str
    run: Callable[[SidecarContext], int | None]
    env: Mapping[str, str] = field(default_factory=dict)
    graceful_timeout: float = 30.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    orphan_record: bool = False
    heartbeat_timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    name: str
    obj: Any


class PluginManager:
    """Loads plugins from entry points and relays hook calls to them, in load order."""

    def __init__(self, plugins: Iterable[LoadedPlugin] = ()) -> None:
        self._plugins: list[LoadedPlugin] = list(plugins)
        for plugin in self._plugins:
            verify_plugin(plugin.name, plugin.obj)

    @classmethod
    def from_entry_points(cls, disabled: Iterable[str] = ()) -> PluginManager:
        """Load every ``gunicorn.plugins`` entry point except the ``disabled`` names."""
        blocked = set(disabled)
        loaded = []
        for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            if ep.name in blocked:
                log.debug("plugin %s disabled", ep.name)
                continue
            loaded.append(LoadedPlugin(ep.name, cls._instantiate(ep)))
        return cls(loaded)

    @staticmethod
    def _instantiate(ep: EntryPoint) -> Any:
        try:
            target = ep.load()
        except Exception as exc:  # a broken third-party plugin must be named, not crash blindly
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        return target() if isinstance(target, type) else target

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._plugins]

    def only(self, name: str) -> PluginManager:
        """A manager relaying to the plugin ``name`` alone (LookupError when not loaded)."""
        found = [p for p in self._plugins if p.name == name]
        if not found:
            raise LookupError(f"no installed plugin named {name!r}")
        return PluginManager(found)

    def call(self, hook: str, *args: Any) -> list[Any]:
        """Call ``hook`` on every plugin that defines it; return their results in load order."""
        if hook not in HOOK_NAMES:
            raise PluginError(f"unknown plugin hook {hook!r}")
        results = []
        for plugin in self._plugins:
            fn = getattr(plugin.obj, hook, None)
            if fn is not None:
                results.append(fn(*args))
        return results

    # Typed conveniences for the core's call sites.

    def add_settings(self, registry: Registry) -> None:
        self.call("add_settings", registry)

    def configure(self, cfg: CoreSettings) -> None:
        self.call("configure", cfg)

    def sidecars(self, cfg: CoreSettings) -> list[SidecarSpec]:
        return [spec for specs in self.call("sidecars", cfg) for spec in (specs or [])]

    def worker_environ(self, cfg: CoreSettings) -> dict[str, str]:
        env: dict[str, str] = {}
        for part in self.call("worker_environ", cfg):
            env.update(part or {})
        return env

    def protocols(self, cfg: CoreSettings) -> list[Any]:
        return [p for ps in self.call("protocols", cfg) for p in (ps or [])]

    def control_commands(self, cfg: CoreSettings) -> dict[str, Callable[..., Any]]:
        commands: dict[str, Callable[..., Any]] = {}
        for part in self.call("control_commands", cfg):
            commands.update(part or {})
        return commands

    def metrics(self, families: MetricFamilies) -> None:
        self.call("metrics", families)

    def health(self, cfg: CoreSettings) -> dict[str, Mapping[str, Any]]:
        """Every plugin's ``/healthz`` sections, merged (a later plugin's name wins)."""
        sections: dict[str, Mapping[str, Any]] = {}
        for part in self.call("health", cfg):
            sections.update(part or {})
        return sections
