"""Section "Server Socket": what the server listens on."""

from __future__ import annotations

from collections.abc import Mapping

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Server Socket"


def _bind_from_env(env: Mapping[str, str]) -> list[str] | None:
    # Platforms such as Heroku announce the port to use in $PORT.
    port = env.get("PORT")
    return [f"0.0.0.0:{port}"] if port else None


SETTINGS = (
    Setting(
        name="bind",
        section=SECTION,
        cli=("-b", "--bind"),
        action="append",
        meta="ADDRESS",
        default=["127.0.0.1:8000"],
        default_env=_bind_from_env,
        default_doc="['127.0.0.1:8000'], or ['0.0.0.0:$PORT'] when $PORT is set",
        validator=v.bind_list,
        short_help="The socket to bind (repeatable).",
        doc=(
            "The addresses to listen on; repeat the option to listen on several. Forms: `HOST`, "
            "`HOST:PORT`, `[IPV6]:PORT`, `tcp://HOST:PORT`, `unix:PATH` for a Unix socket and "
            "`fd://N` for a listening socket inherited as file descriptor N. A missing port means "
            "8000. When `$PORT` is set in the environment the default becomes `0.0.0.0:$PORT`. "
            "Every address is checked when the setting is read."
        ),
    ),
    Setting(
        name="backlog",
        section=SECTION,
        cli=("--backlog",),
        meta="INT",
        default=2048,
        validator=v.positive_int(minimum=1),
        short_help="The maximum number of pending connections.",
        doc=(
            "How many connections the kernel may queue on a listening socket before refusing new "
            "ones (the `listen()` backlog). The kernel may lower it (`net.core.somaxconn`)."
        ),
    ),
)
