"""Section "Control": the master's control socket, driven by ``gunictl`` (gunicorn-ctl)."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Control"

SETTINGS = (
    Setting(
        name="control_socket",
        section=SECTION,
        cli=("--control-socket",),
        meta="PATH",
        default=None,
        default_doc="$XDG_RUNTIME_DIR/gunicorn.ctl if that directory exists, "
                    "else ~/.gunicorn/gunicorn.ctl",
        validator=v.optional_string,
        short_help="The Unix socket gunictl talks to.",
        doc=(
            "The path of the master's control socket, a Unix socket through which `gunictl` "
            "(or `gunicorn.ctl.ControlClient`) inspects workers, scales them, reloads, reopens "
            "logs and shuts down without signals. A relative path is taken from the server's "
            "working directory (after `--chdir`). The default is computed when the server "
            "starts: `$XDG_RUNTIME_DIR/gunicorn.ctl` when that directory exists, otherwise "
            "`~/.gunicorn/gunicorn.ctl`. A missing directory is created with mode 0700. If the "
            "socket cannot be created (read-only file system, no home directory, no "
            "permission) the server logs one warning and runs without it. A stale socket file "
            "is replaced, but a socket another live server answers on is left alone (this "
            "server then runs without one): give each server its own path. Only the same user "
            "or root may send commands."
        ),
    ),
    Setting(
        name="control_socket_mode",
        section=SECTION,
        cli=("--control-socket-mode",),
        meta="INT",
        default=0o600,
        default_doc="0o600",
        validator=v.octal_int,
        short_help="Permissions of the control socket file (octal, e.g. 0o660).",
        doc=(
            "The permission bits of the control socket file, in octal (`0o660`, `0660`) or "
            "decimal. Connecting needs write permission on the file. Whatever the mode, the "
            "server checks the peer's credentials and only obeys its own user and root."
        ),
    ),
    Setting(
        name="control_socket_disable",
        section=SECTION,
        cli=("--no-control-socket",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Do not open a control socket.",
        doc=(
            "Run without a control socket. Signals (HUP, TTIN, TTOU, USR1, TERM, ...) still "
            "control the server. Note the flag, `--no-control-socket`, differs from the "
            "setting's name."
        ),
    ),
)
