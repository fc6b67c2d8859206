"""Bind each ``-b HOST:PORT`` here, then exec arb_run.py with ``-b fd://N`` instead.

This is how a process manager hands gunicorn an already-open socket (``--bind fd://N``).
"""

import os
import socket
import sys
from pathlib import Path


def main(argv):
    args = []
    it = iter(argv)
    for arg in it:
        if arg == "-b":
            host, _, port = next(it).rpartition(":")
            sock = socket.create_server((host, int(port)))
            fd = sock.detach()
            os.set_inheritable(fd, True)
            args += ["-b", f"fd://{fd}"]
        else:
            args.append(arg)
    runner = str(Path(__file__).with_name("arb_run.py"))
    os.execv(sys.executable, [sys.executable, runner, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
