"""Section "Worker Processes": how many workers, of which kind, and their time limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Worker Processes"


def _workers_from_env(env: Mapping[str, str]) -> str | None:
    return env.get("WEB_CONCURRENCY") or None


def _worker_class(value: Any) -> str | type:
    # Resolved lazily by cfg.worker_class: the class's module may import heavy dependencies.
    if isinstance(value, type):
        return value
    return v.string(value)


SETTINGS = (
    Setting(
        name="workers",
        section=SECTION,
        cli=("-w", "--workers"),
        meta="INT",
        default=1,
        default_env=_workers_from_env,
        default_doc="1, or $WEB_CONCURRENCY when set",
        validator=v.positive_int(minimum=1),
        short_help="The number of worker processes.",
        doc=(
            "How many worker processes serve requests. A common starting point is two to four "
            "per CPU core. `$WEB_CONCURRENCY`, when set, replaces the default."
        ),
    ),
    Setting(
        name="worker_class",
        section=SECTION,
        cli=("-k", "--worker-class"),
        meta="STRING",
        default="sync",
        validator=_worker_class,
        short_help="The type of worker to use.",
        doc=(
            "The worker implementation: a name registered in the `gunicorn.workers` entry-point "
            "group (`sync`, `gthread` and `asgi` come with the core, `gevent` with its `gevent` "
            "extra) or a dotted path to a worker class. `sync` serves one request at a time per "
            "process; `gthread` serves several connections per process with a thread pool; "
            "`gevent` a greenlet per connection; `asgi` runs ASGI applications on an event loop."
        ),
    ),
    Setting(
        name="threads",
        section=SECTION,
        cli=("--threads",),
        meta="INT",
        default=1,
        validator=v.positive_int(minimum=1),
        short_help="The number of threads per worker.",
        doc=(
            "The size of each worker's thread pool, used by the `gthread` worker. Giving more "
            "than one thread with the `sync` worker makes gunicorn switch to `gthread`."
        ),
    ),
    Setting(
        name="worker_connections",
        section=SECTION,
        cli=("--worker-connections",),
        meta="INT",
        default=1000,
        validator=v.positive_int(minimum=1),
        short_help="The maximum number of simultaneous clients per worker.",
        doc=(
            "The most connections one worker holds open at once (the gthread, gevent and asgi "
            "workers; on gevent also the most greenlets serving them). Further connections wait "
            "in the listen queue."
        ),
    ),
    Setting(
        name="max_requests",
        section=SECTION,
        cli=("--max-requests",),
        meta="INT",
        default=0,
        validator=v.positive_int(),
        short_help="Restart a worker after this many requests (0: never).",
        doc=(
            "After serving this many requests a worker exits gracefully and is replaced, which "
            "bounds the damage of slow memory leaks. 0 turns the restarts off."
        ),
    ),
    Setting(
        name="max_requests_jitter",
        section=SECTION,
        cli=("--max-requests-jitter",),
        meta="INT",
        default=0,
        validator=v.positive_int(),
        short_help="The maximum random addition to max_requests.",
        doc=(
            "Each worker adds a random number between 0 and this value to `max_requests`, so "
            "workers started together do not all restart at the same moment."
        ),
    ),
    Setting(
        name="timeout",
        section=SECTION,
        cli=("-t", "--timeout"),
        meta="INT",
        default=30,
        validator=v.positive_int(),
        short_help="Kill and replace workers silent for this many seconds.",
        doc=(
            "A worker that has not notified the master for this many seconds is killed and "
            "replaced. For the sync worker this bounds the time one request may take; threaded "
            "workers notify from their main loop, so it only catches a stuck process (on gevent: "
            "a request that blocks the hub, such as a CPU loop). 0 turns "
            "the check off."
        ),
    ),
    Setting(
        name="graceful_timeout",
        section=SECTION,
        cli=("--graceful-timeout",),
        meta="INT",
        default=30,
        validator=v.positive_int(),
        short_help="Seconds workers get to finish on a graceful stop.",
        doc=(
            "On a graceful stop or restart, workers get this many seconds to finish the requests "
            "they are serving; those still running afterwards are killed."
        ),
    ),
    Setting(
        name="keepalive",
        section=SECTION,
        cli=("--keep-alive",),
        meta="INT",
        default=2,
        validator=v.positive_int(),
        short_help="Seconds to wait for the next request on a keep-alive connection.",
        doc=(
            "How long an idle keep-alive connection waits for its next request before it is "
            "closed. Behind a load balancer, use a value above the balancer's idle timeout. The "
            "sync worker always closes connections after one request; 0 turns keep-alive off."
        ),
    ),
    Setting(
        name="header_timeout",
        section=SECTION,
        cli=("--header-timeout",),
        meta="INT",
        default=10,
        validator=v.positive_int(),
        short_help="Seconds a client gets to send a whole request head.",
        doc=(
            "Once the first byte of a request head has arrived, the whole head (request line and "
            "header fields) must arrive within this many seconds, however slowly it trickles in; "
            "otherwise the connection is closed. This bounds slow-header (slowloris) clients. "
            "The sync, gthread and gevent workers bound a TLS handshake the same way. 0 disables "
            "the limit (on sync, gthread and gevent each read still waits at most `timeout`)."
        ),
    ),
    Setting(
        name="write_timeout",
        section=SECTION,
        cli=("--write-timeout",),
        meta="INT",
        default=30,
        validator=v.positive_int(),
        short_help="Seconds a response write may make no progress before the client is dropped.",
        doc=(
            "A client that stops reading its response (HTTP/1.1, HTTP/2 or a WebSocket) is "
            "dropped when the socket has accepted no byte of pending output for this many "
            "seconds, so a slow reader cannot hold a worker's thread or the application's send "
            "forever. The time restarts with every byte the client takes. The sync worker also "
            "waits at most half of `timeout` (it does not heartbeat while it writes). 0 disables "
            "it (sync, gthread and gevent then wait at most `timeout` per write, asgi without "
            "limit)."
        ),
    ),
    Setting(
        name="asgi_loop",
        section=SECTION,
        cli=("--asgi-loop",),
        meta="STRING",
        default="auto",
        validator=v.choice("auto", "asyncio", "uvloop"),
        choices=("auto", "asyncio", "uvloop"),
        short_help="The event loop of the ASGI worker.",
        doc=(
            "The event loop the ASGI worker runs: `asyncio`, `uvloop` (must be installed), or "
            "`auto` to use uvloop when it is importable and asyncio otherwise."
        ),
    ),
    Setting(
        name="asgi_lifespan",
        section=SECTION,
        cli=("--asgi-lifespan",),
        meta="STRING",
        default="auto",
        validator=v.choice("auto", "on", "off"),
        choices=("auto", "on", "off"),
        short_help="ASGI lifespan protocol: auto, on or off.",
        doc=(
            "Whether the ASGI worker runs the lifespan protocol (startup and shutdown events). "
            "`on` requires the application to support it, `off` never sends it, and `auto` "
            "tries it and carries on if the application does not support it."
        ),
    ),
    Setting(
        name="asgi_disconnect_grace_period",
        section=SECTION,
        cli=("--asgi-disconnect-grace-period",),
        meta="INT",
        default=3,
        validator=v.positive_int(),
        short_help="Seconds an ASGI app gets to finish after the client disconnects.",
        doc=(
            "When a client goes away mid-request, the ASGI application gets this many seconds "
            "to notice the disconnect and return before its task is cancelled. 0 cancels at once."
        ),
    ),
    Setting(
        name="http_parser",
        section=SECTION,
        cli=("--http-parser",),
        meta="STRING",
        default="auto",
        validator=v.choice("auto", "fast", "python"),
        choices=("auto", "fast", "python"),
        short_help="Accepted for gunicorn compatibility: our one HTTP/1.1 parser is always used.",
        doc=(
            "gunicorn chooses between its pure-Python parser and an optional C parser with this "
            "setting. gunicorn-core has one strict, sans-IO HTTP/1.1 parser, always used; the "
            "values are accepted so gunicorn command lines keep working, and `fast` logs one "
            "line saying our parser is used."
        ),
    ),
    Setting(
        name="asgi_lifespan_timeout",
        section=SECTION,
        cli=("--asgi-lifespan-timeout",),
        meta="INT",
        default=30,
        validator=v.positive_int(minimum=1),
        short_help="Seconds an ASGI app gets for each lifespan phase (startup, shutdown).",
        doc=(
            "How long the asgi worker waits for the application to complete lifespan startup, "
            "and later shutdown. An application that loads a large model at startup may need "
            "more than the default. A startup that does not complete in time fails like a "
            "startup error (see `asgi_lifespan`)."
        ),
    ),
)
