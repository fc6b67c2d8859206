"""The interactive prompt of ``gunictl`` (started when no command is given).

One connection for the session (re-opened on the next command if it breaks), readline
editing and history in ``~/.gunictl_history`` when the terminal has them, ``help`` from the
server, ``quit``/``exit``/EOF to leave. Ctrl-C abandons the current line.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from typing import Any

import click
from gunicorn.ctl.client import ControlClient
from gunicorn.ctl.command import EXIT_CONNECT, EXIT_OK, run_command
from gunicorn.ctl.errors import ControlConnectionError

PROMPT = "gunictl> "
HISTORY_FILE = "~/.gunictl_history"
HISTORY_LENGTH = 1000
QUIT_WORDS = frozenset({"quit", "exit", "q"})


def interactive(client: ControlClient, as_json: bool) -> int:
    """Run the prompt until quit or EOF; the exit status (3 if the socket is unreachable)."""
    try:
        client.connect()
    except ControlConnectionError as exc:
        click.echo(f"gunictl: {exc}", err=True)
        return EXIT_CONNECT
    readline = _readline()
    history = os.path.expanduser(HISTORY_FILE)
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
        readline.set_history_length(HISTORY_LENGTH)
    click.echo(f"Connected to {client.path}. Type 'help' for commands, 'quit' to leave.")
    try:
        return _loop(client, as_json)
    finally:
        client.close()
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)


def _loop(client: ControlClient, as_json: bool) -> int:
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            click.echo()
            return EXIT_OK
        except KeyboardInterrupt:
            click.echo()
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            click.echo(f"Error: {exc}", err=True)
            continue
        if not words:
            continue
        if words[0].lower() in QUIT_WORDS:
            return EXIT_OK
        try:
            run_command(client, words, as_json)
        except KeyboardInterrupt:
            client.close()  # the reply may still come: do not read it as the next one's
            click.echo()


def _readline() -> Any:
    """The readline module on an interactive terminal, else None (it may print escapes)."""
    if not sys.stdin.isatty():
        return None
    try:
        import readline
    except ImportError:
        return None
    return readline
