"""One control command, sent and answered: what the command line and the interactive prompt
of ``gunictl`` share (they import this module, never each other).

Exit status: 0 success, 1 the server answered an error, 2 usage error, 3 cannot connect.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

import click
from gunicorn.ctl import format as fmt
from gunicorn.ctl.client import ControlClient
from gunicorn.ctl.errors import ControlCommandError, ControlConnectionError, ControlError

EXIT_OK = 0
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3


def run_command(client: ControlClient, words: Sequence[str], as_json: bool) -> int:
    """Send one command, print its reply (a table, or JSON); return the exit status."""
    try:
        data = client.send(shlex.join(words))
    except ControlConnectionError as exc:
        click.echo(f"gunictl: {exc}", err=True)
        return EXIT_CONNECT
    except ControlCommandError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_SERVER_ERROR
    except ControlError as exc:
        click.echo(f"gunictl: {exc}", err=True)
        return EXIT_SERVER_ERROR
    click.echo(json.dumps(data, indent=2) if as_json else fmt.render(words, data))
    return EXIT_OK
