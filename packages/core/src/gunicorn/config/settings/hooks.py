"""Section "Server Hooks": user callables run at points of the server's life.

A hook is set in a config file as a function (``def post_fork(server, worker): ...``) or, from
anywhere, as a dotted path to one (``myproject.hooks.post_fork``). Its arity is checked when it is
set, so a hook that would fail on every call stops the server from starting instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

SECTION = "Server Hooks"
_DOTTED = "The value may also be a dotted path to the function (`pkg.module.function`)."


def _noop(*args: Any) -> None:
    """The default for every hook: do nothing."""


def _default_ssl_context(config: CoreSettings, default_ssl_context_factory: Any) -> Any:
    return default_ssl_context_factory()


def _hook(name: str, arity: int | tuple[int, ...], signature: str, doc: str,
          default: Any = _noop) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        default=default,
        default_doc=f"def {name}{signature}: pass" if default is _noop else None,
        validator=v.hook(arity),
        hook_arity=arity,
        doc=f"Called as `{name}{signature}`. {doc} {_DOTTED}",
    )


SETTINGS = (
    _hook("on_starting", 1, "(server)",
          "Runs in the master just before it initialises (after the pidfile is written)."),
    _hook("on_reload", 1, "(server)",
          "Runs in the master on a reload (HUP), before the new workers start."),
    _hook("when_ready", 1, "(server)",
          "Runs in the master once the sockets listen and the sidecars are started."),
    _hook("pre_fork", 2, "(server, worker)",
          "Runs in the master just before a worker is forked."),
    _hook("post_fork", 2, "(server, worker)",
          "Runs in the new worker process just after the fork."),
    _hook("post_worker_init", 1, "(worker)",
          "Runs in a worker once it has loaded the application."),
    _hook("worker_int", 1, "(worker)",
          "Runs in a worker that received INT or QUIT (also when the reloader stops it)."),
    _hook("worker_abort", 1, "(worker)",
          "Runs in a worker that received SIGABRT, which the master sends on a timeout."),
    _hook("pre_exec", 1, "(server)",
          "Runs in the new master forked on USR2, just before it executes the new binary."),
    _hook("pre_request", 2, "(worker, req)",
          "Runs in a worker before each request is handed to the application."),
    _hook("post_request", (2, 3, 4), "(worker, req, environ, resp)",
          "Runs in a worker after each request. Functions taking only `(worker, req)` or "
          "`(worker, req, environ)` are accepted and called with that many arguments."),
    _hook("child_exit", 2, "(server, worker)",
          "Runs in the master after a worker process has been reaped."),
    _hook("worker_exit", 2, "(server, worker)",
          "Runs in a worker as it exits."),
    _hook("nworkers_changed", 3, "(server, new_value, old_value)",
          "Runs in the master whenever the number of workers changes (TTIN, TTOU, reload); "
          "`old_value` is None the first time."),
    _hook("on_exit", 1, "(server)",
          "Runs in the master just before it exits."),
    Setting(
        name="ssl_context",
        section=SECTION,
        default=_default_ssl_context,
        default_doc="def ssl_context(config, default_ssl_context_factory): "
                    "return default_ssl_context_factory()",
        validator=v.hook(2),
        hook_arity=2,
        doc=(
            "Called as `ssl_context(config, default_ssl_context_factory)` to build the "
            "`ssl.SSLContext` of the listening sockets. Calling the factory gives the context "
            "the SSL settings describe (certificate chain, `cert_reqs`, `ca_certs`, `ciphers`), "
            "which the hook may adjust or replace, for instance to set a minimum TLS version."
        ),
    ),
)
