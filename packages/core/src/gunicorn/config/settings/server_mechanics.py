"""Section "Server Mechanics", process side: how the master and workers run.

The request-handling half of this section (proxies, header policy) is in ``http_handling.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Server Mechanics"


def _sendfile_from_env(env: Mapping[str, str]) -> str | None:
    return env.get("SENDFILE") or None


def _sendfile(value: Any) -> bool | None:
    return None if value is None else v.boolean(value)


SETTINGS = (
    Setting(
        name="preload_app",
        section=SECTION,
        cli=("--preload",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Load the application before forking the workers.",
        doc=(
            "Import the application in the master before the workers are forked. Workers then "
            "share its memory pages copy-on-write and boot faster, but a reload (HUP) can no "
            "longer pick up new application code: restart the server (or USR2) instead."
        ),
    ),
    Setting(
        name="sendfile",
        section=SECTION,
        cli=("--no-sendfile",),
        action="store_const",
        const=False,
        default=None,
        default_env=_sendfile_from_env,
        default_doc="None (enabled), or the boolean in $SENDFILE when set",
        validator=_sendfile,
        short_help="Do not use sendfile() for file responses.",
        doc=(
            "Whether file responses (`wsgi.file_wrapper`) are sent with `sendfile()`. It is on "
            "unless turned off with `--no-sendfile`, by `sendfile = False` in a config file, or by "
            "a false `$SENDFILE` environment variable. Turn it off on file systems where it is "
            "unreliable (some network mounts, VirtualBox shared folders)."
        ),
    ),
    Setting(
        name="reuse_port",
        section=SECTION,
        cli=("--reuse-port",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Set SO_REUSEPORT on the listening sockets.",
        doc=(
            "Set `SO_REUSEPORT` on the listening sockets, so several servers can bind the same "
            "address and the kernel spreads the connections between them."
        ),
    ),
    Setting(
        name="chdir",
        section=SECTION,
        cli=("--chdir",),
        meta="DIR",
        default=".",
        default_doc="the current directory",
        validator=v.existing_dir,
        short_help="Change to this directory before loading the application.",
        doc=(
            "The directory to change to before the application is imported; it is also put "
            "first on the Python path. It must exist; it is stored as an absolute path."
        ),
    ),
    Setting(
        name="daemon",
        section=SECTION,
        cli=("-D", "--daemon"),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Detach from the terminal and run in the background.",
        doc=(
            "Detach the master from the terminal (double fork) and run in the background, with "
            "standard streams sent to /dev/null unless `enable_stdio_inheritance` is set. Not "
            "needed under a process supervisor such as systemd."
        ),
    ),
    Setting(
        name="raw_env",
        section=SECTION,
        cli=("-e", "--env"),
        action="append",
        meta="ENV",
        default=[],
        validator=v.env_list,
        short_help="Set an environment variable, KEY=VALUE (repeatable).",
        doc=(
            "Environment variables to set in the server's processes before the application is "
            "loaded, each written `KEY=VALUE`. Repeat the option for several."
        ),
    ),
    Setting(
        name="pidfile",
        section=SECTION,
        cli=("-p", "--pid"),
        meta="FILE",
        default=None,
        validator=v.optional_string,
        short_help="Write the master's PID to this file.",
        doc=(
            "A file to write the master's process id to. Start is refused while the file names "
            "a running process; the file is removed on exit."
        ),
    ),
    Setting(
        name="worker_tmp_dir",
        section=SECTION,
        cli=("--worker-tmp-dir",),
        meta="DIR",
        default=None,
        validator=v.optional_string,
        short_help="Directory for the workers' heartbeat files.",
        doc=(
            "Where workers keep the temporary file whose modification time tells the master "
            "they are alive. The default is the system temporary directory; a memory-backed "
            "directory such as `/dev/shm` avoids stalls when `/tmp` is on a slow disk."
        ),
    ),
    Setting(
        name="user",
        section=SECTION,
        cli=("-u", "--user"),
        meta="USER",
        default=None,
        default_doc="the current effective user",
        validator=v.user_or_group,
        short_help="Switch worker processes to this user (name or uid).",
        doc=(
            "The user the workers run as, given as a name or a numeric id. Changing user "
            "requires starting as root (otherwise the server stops with exit code 2 before "
            "anything forks). `cfg.uid` holds the resolved numeric id."
        ),
    ),
    Setting(
        name="group",
        section=SECTION,
        cli=("-g", "--group"),
        meta="GROUP",
        default=None,
        default_doc="the current effective group",
        validator=v.user_or_group,
        short_help="Switch worker processes to this group (name or gid).",
        doc=(
            "The group the workers run as, given as a name or a numeric id. `cfg.gid` holds "
            "the resolved numeric id."
        ),
    ),
    Setting(
        name="umask",
        section=SECTION,
        cli=("-m", "--umask"),
        meta="INT",
        default=0,
        validator=v.octal_int,
        short_help="The umask of the server's processes (octal, e.g. 022).",
        doc=(
            "The file mode creation mask of the server's processes, which also applies to Unix "
            "sockets it creates. Written in octal (`022`, `0o22`) or as a plain integer."
        ),
    ),
    Setting(
        name="initgroups",
        section=SECTION,
        cli=("--initgroups",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Give workers the supplementary groups of their user.",
        doc=(
            "When switching to `user`, also set the supplementary groups that user belongs to, "
            "as a login would. Without it, workers that switch user or group keep no "
            "supplementary groups (never the master's, such as root's group 0)."
        ),
    ),
    Setting(
        name="tmp_upload_dir",
        section=SECTION,
        default=None,
        validator=v.optional_string,
        doc=(
            "A directory for spooling large request bodies to disk. Kept for compatibility; "
            "request bodies are streamed and this setting is not used."
        ),
    ),
    Setting(
        name="pythonpath",
        section=SECTION,
        cli=("--pythonpath",),
        meta="STRING",
        default=None,
        validator=v.optional_string,
        short_help="Comma-separated directories to add to the Python path.",
        doc=(
            "Directories to put at the front of the Python path before the application is "
            "imported, separated by commas."
        ),
    ),
    Setting(
        name="paste",
        section=SECTION,
        cli=("--paste", "--paster"),
        meta="STRING",
        default=None,
        validator=v.optional_string,
        short_help="Load a PasteDeploy configuration file.",
        doc=(
            "A PasteDeploy configuration file to take the application from (`config.ini`, or "
            "`config.ini#name` for a named section)."
        ),
    ),
    Setting(
        name="raw_paste_global_conf",
        section=SECTION,
        cli=("--paste-global",),
        action="append",
        meta="CONF",
        default=[],
        validator=v.env_list,
        short_help="A PasteDeploy global variable, KEY=VALUE (repeatable).",
        doc="Global variables handed to a PasteDeploy configuration, each written `KEY=VALUE`.",
    ),
)
