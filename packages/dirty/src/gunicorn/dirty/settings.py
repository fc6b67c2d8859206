"""The settings gunicorn-dirty adds to the core registry (sections "Dirty Arbiters" and
"Dirty Arbiter Hooks").

They are ordinary :class:`~gunicorn.config.Setting` records: the core generates their command
line flags, config-file handling, ``--print-config`` and validation exactly as for its own.
"""

from __future__ import annotations

from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting
from gunicorn.dirty.resources import parse_resources
from gunicorn.dirty.stash import config as stash_config

SECTION = "Dirty Arbiters"
HOOKS_SECTION = "Dirty Arbiter Hooks"
_DOTTED = "The value may also be a dotted path to the function (`pkg.module.function`)."


def _noop(*args: Any) -> None:
    """The default for every dirty hook: do nothing."""


def _hook(name: str, arity: int, signature: str, doc: str) -> Setting:
    return Setting(
        name=name,
        section=HOOKS_SECTION,
        default=_noop,
        default_doc=f"def {name}{signature}: pass",
        validator=v.hook(arity),
        hook_arity=arity,
        doc=f"Called as `{name}{signature}`. {doc} {_DOTTED}",
    )


SETTINGS = (
    Setting(
        name="dirty_apps",
        section=SECTION,
        cli=("--dirty-app",),
        action="append",
        meta="STRING",
        default=[],
        validator=v.appended_list,
        short_help="A dirty app to load: module:Class or module:Class:N (repeatable).",
        doc=(
            "Dirty apps served by the dirty worker pool, as `module:Class`, or "
            "`module:Class:N` to load the app in at most N dirty workers (otherwise the "
            "class attribute `workers` decides, and by default every dirty worker loads it). "
            "The pool only starts when this list is not empty and `dirty_workers` > 0."
        ),
    ),
    Setting(
        name="dirty_workers",
        section=SECTION,
        cli=("--dirty-workers",),
        meta="INT",
        default=0,
        validator=v.positive_int(),
        short_help="The number of dirty worker processes (0 disables the pool).",
        doc=(
            "How many dirty worker processes the dirty arbiter runs. Apps limited to fewer "
            "workers are spread over the least-loaded workers; a worker that would load no app "
            "is not started. 0 disables the dirty arbiter."
        ),
    ),
    Setting(
        name="dirty_timeout",
        section=SECTION,
        cli=("--dirty-timeout",),
        meta="INT",
        default=300,
        validator=v.positive_int(),
        short_help="Seconds a dirty call may run before it fails and its worker is recycled.",
        doc=(
            "A call that runs longer than this many seconds (for a stream: a gap between two "
            "chunks) fails its caller with `DirtyTimeoutError`, and the worker that holds it "
            "is replaced (SIGTERM, then SIGKILL after `dirty_graceful_timeout`). A worker whose "
            "event loop stops sending heartbeats for this long is replaced too. 0 disables "
            "both checks: calls may run for ever."
        ),
    ),
    Setting(
        name="dirty_threads",
        section=SECTION,
        cli=("--dirty-threads",),
        meta="INT",
        default=1,
        validator=v.positive_int(minimum=1),
        short_help="Concurrent calls per dirty worker.",
        doc=(
            "The size of each dirty worker's thread pool for synchronous actions, and the "
            "number of calls the dirty arbiter hands one worker at a time (`async def` actions "
            "count too). Raise it for actions that wait on I/O or release the GIL."
        ),
    ),
    Setting(
        name="dirty_graceful_timeout",
        section=SECTION,
        cli=("--dirty-graceful-timeout",),
        meta="INT",
        default=30,
        validator=v.positive_int(),
        short_help="Seconds dirty workers get to finish their calls when stopping.",
        doc=(
            "On a graceful stop or a replacement, a dirty worker may finish its running calls "
            "for this many seconds before it is killed. The master also waits this long for "
            "the dirty arbiter."
        ),
    ),
    Setting(
        name="dirty_max_queue",
        section=SECTION,
        cli=("--dirty-max-queue",),
        meta="INT",
        default=1024,
        validator=v.positive_int(),
        short_help="Calls that may wait per dirty app before new ones fail as busy (0: no bound).",
        doc=(
            "When every worker holding an app is busy, calls for it wait in a queue in the "
            "dirty arbiter. Past this many waiting calls, new calls fail at once with "
            "`DirtyBusyError` (an HTTP app can answer 503). 0 means no bound."
        ),
    ),
    _hook("on_dirty_starting", 1, "(arbiter)",
          "Runs in the dirty arbiter when it starts, before it binds its socket and forks "
          "workers."),
    _hook("dirty_post_fork", 2, "(arbiter, worker)",
          "Runs in the dirty arbiter just after a dirty worker was forked."),
    _hook("dirty_worker_init", 1, "(worker)",
          "Runs in a dirty worker once all of its apps are loaded and initialised."),
    _hook("dirty_worker_exit", 2, "(arbiter, worker)",
          "Runs in the dirty arbiter after a dirty worker has exited (for any reason)."),
    Setting(
        name="dirty_stash_file",
        section=SECTION,
        cli=("--dirty-stash-file",),
        meta="FILE",
        default=None,
        validator=v.optional_string,
        short_help="Keep the stash tables in this file across restarts.",
        doc=(
            "A file where the dirty arbiter keeps the stash tables, so they survive a restart "
            "of the dirty arbiter or of the whole server: loaded at start, written atomically "
            "on stop and every `dirty_stash_save_interval` seconds when they changed. Without "
            "it the stash lives in memory only. The file is created with mode 0600; its "
            "directory must exist and be writable by the dirty arbiter, which runs as `user` "
            "when that is set."
        ),
    ),
    Setting(
        name="dirty_stash_save_interval",
        section=SECTION,
        cli=("--dirty-stash-save-interval",),
        meta="INT",
        default=30,
        validator=v.positive_int(),
        short_help="Seconds between periodic saves of dirty_stash_file (0: only at stop).",
        doc=(
            "How often, in seconds, the dirty arbiter writes `dirty_stash_file` when the stash "
            "changed (in a background thread). 0 saves only when the dirty arbiter stops. "
            "Changes made after the last save are lost if the dirty arbiter is killed."
        ),
    ),
    # -- the stash on Redis (docs/scaling.md) --
    Setting(
        name="dirty_stash_url",
        section=SECTION,
        cli=("--dirty-stash-url",),
        meta="URL",
        default=None,
        validator=stash_config.validate_url,
        redact=stash_config.redact_setting,
        short_help="Keep the stash tables in Redis at this URL, shared by every host.",
        doc=(
            "Keep the stash tables in a Redis server instead of the dirty arbiter's memory, so "
            "that servers on several hosts share them: `redis://[[user]:password@]host[:port]"
            "[/db]`, `rediss://...` for TLS, or `unix:///path/to/redis.sock?db=N`. Every HTTP "
            "worker, dirty arbiter and dirty worker then reaches Redis directly; the API and "
            "its errors stay the same, and the stash works even without a dirty pool. Needs "
            "the `gunicorn-dirty[redis]` extra. Cannot be combined with `dirty_stash_file`: "
            "Redis persists the tables itself (RDB/AOF). The password is never shown by "
            "`--print-config`, `show config`, logs or errors. See docs/scaling.md."
        ),
    ),
    Setting(
        name="dirty_stash_prefix",
        section=SECTION,
        cli=("--dirty-stash-prefix",),
        meta="STRING",
        default=None,
        default_doc="proc_name",
        validator=stash_config.validate_prefix,
        short_help="The prefix of the stash's Redis keys (default: the process name).",
        doc=(
            "With `dirty_stash_url`, every Redis key of the stash starts with `{PREFIX}:`, so "
            "the servers of one application share their tables and nothing else in the same "
            "Redis database is touched. Unset: `proc_name` (`gunicorn` when that is unset "
            "too): give each application on one Redis its own name or prefix. No `{` or `}`."
        ),
    ),
    # -- resource slots (issue 14) --------------------------------------------------------
    Setting(
        name="dirty_resources",
        section=SECTION,
        cli=("--dirty-resource",),
        action="append",
        meta="NAME=TOKENS",
        default=[],
        validator=parse_resources,
        default_doc="{}",
        short_help="A resource whose tokens dirty workers are granted: NAME=0,1,2 or NAME=N "
                   "(repeatable).",
        doc=(
            "Named resources the dirty arbiter hands out to dirty workers, one token per unit "
            "(a GPU, a licence seat). `--dirty-resource gpu=0,1,2,3` lists the tokens; "
            "`--dirty-resource gpu=4` means tokens 0 to 3. In a config file: a list of "
            "`NAME=TOKENS` strings or a dict such as `{\"gpu\": 4}`. A dirty app declares what "
            "each worker holding it needs with the class attribute `resources = {\"gpu\": 1}`. "
            "Tokens are granted before the worker imports its apps: the app sees them as "
            "`self.resources` (`{\"gpu\": [\"2\"]}`) and the worker's environment carries "
            "`GUNICORN_DIRTY_RESOURCE_GPU=2` and, for the resource named `gpu`, "
            "`CUDA_VISIBLE_DEVICES=2`. No two live workers hold the same token; an app is "
            "started in no more workers than there are free tokens for it."
        ),
    ),
)
