"""``gunictl``: the command line of a running server's control socket.

    gunictl [-s SOCKET] [--json] [--timeout S] COMMAND...

With no COMMAND it opens an interactive prompt. Exit status: 0 success, 1 the server answered
an error, 2 usage error, 3 cannot connect. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem
from gunicorn.ctl.client import DEFAULT_TIMEOUT, ENV_SOCKET, ControlClient
from gunicorn.ctl.command import run_command
from gunicorn.ctl.errors import ControlError
from gunicorn.ctl.shell import interactive
from gunicorn.version import __version__

COMPLETION_TIMEOUT = 0.5
# Offered by shell completion when the server cannot be asked for its own list.
KNOWN_COMMANDS = (
    "show all", "show workers", "show dirty", "show config", "show stats", "show listeners",
    "worker add", "worker remove", "worker kill", "dirty add", "dirty remove", "reload",
    "reopen", "shutdown graceful", "shutdown quick", "help", "stash tables", "stash keys",
    "stash get",
)


def _command_names(socket: str | None) -> list[str]:
    """The server's command names (from ``help``), or the built-in list if it cannot answer."""
    try:
        with ControlClient(socket, timeout=COMPLETION_TIMEOUT) as client:
            usages = client.send("help").get("commands", {})
    except ControlError:
        return list(KNOWN_COMMANDS)
    names = []
    for usage in usages:
        words = []
        for word in str(usage).split():
            if word.startswith("[") or word.isupper():
                break  # the arguments: "worker kill PID", "worker add [N]"
            words.append(word)
        names.append(" ".join(words))
    if "shutdown" in names:
        names += ["shutdown graceful", "shutdown quick"]
    return names


def complete_command(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    typed = [w.lower() for w in ctx.params.get("command") or ()]
    offered = set()
    for name in _command_names(ctx.params.get("socket")):
        words = name.split()
        if len(words) > len(typed) and words[:len(typed)] == typed:
            if words[len(typed)].startswith(incomplete.lower()):
                offered.add(words[len(typed)])
    return [CompletionItem(word) for word in sorted(offered)]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--socket", metavar="PATH", default=None,
              help=f"The control socket (default: ${ENV_SOCKET}, else the server's default: "
                   "$XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl).")
@click.option("--json", "as_json", is_flag=True, help="Print the reply's data as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_TIMEOUT, show_default=True, metavar="S",
              help="Seconds to wait for the server.")
@click.version_option(__version__, "-V", "--version", prog_name="gunictl")
@click.argument("command", nargs=-1, shell_complete=complete_command)
@click.pass_context
def cli(ctx: click.Context, socket: str | None, as_json: bool, timeout: float,
        command: tuple[str, ...]) -> None:
    """Inspect and manage a running gunicorn server through its control socket.

    COMMAND is one of: show all|workers|dirty|config|stats|listeners, worker add [N],
    worker remove [N], worker kill PID, dirty add [N], dirty remove [N], reload, reopen,
    shutdown [graceful|quick], help (plus plugin commands such as stash tables). Without
    COMMAND, gunictl opens an interactive prompt.

    Exit status: 0 ok, 1 the server answered an error, 2 usage error, 3 cannot connect.
    """
    client = ControlClient(socket, timeout=timeout)
    if not command:
        ctx.exit(interactive(client, as_json))
    try:
        status = run_command(client, command, as_json)
    finally:
        client.close()
    ctx.exit(status)


def main() -> None:
    cli(prog_name="gunictl")
