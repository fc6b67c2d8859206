"""Play systemd: bind ``-b HOST:PORT`` onto fd 3, set LISTEN_PID/LISTEN_FDS, exec arb_run.py."""

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
            if sock.fileno() == 3:
                os.set_inheritable(sock.detach(), True)
            else:
                os.dup2(sock.fileno(), 3)  # dup2 makes fd 3 inheritable
                sock.close()
        else:
            args.append(arg)
    env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
    runner = str(Path(__file__).with_name("arb_run.py"))
    # arb_run.py binds 127.0.0.1:8000 by default; socket activation must win over it.
    os.execve(sys.executable, [sys.executable, runner, *args], env)


if __name__ == "__main__":
    main(sys.argv[1:])
