"""Slow clients against a running server: how long does a normal client wait?

Starts the server under test, then attacks it from a separate process with

* ``--loris`` slowloris connections: each sends a request line and then one more byte of a
  header field every ``--drip`` seconds, never finishing its head; a connection the server
  closes is opened again at once (the attack is sustained);
* ``--readers`` slow readers: each asks for a ``--size`` byte response on a keep-alive
  connection and never reads it; reopened when the server drops it;

and, once the attack is established, measures ``--probes`` requests of a normal client, each on a
fresh connection (connect, ``GET /``, read the whole response), one after the other. Prints the
median and the maximum wait and how many probes failed (no response within ``--probe-timeout``).

::

    .venv/bin/python benchmarks/slowloris.py                                 # -k gthread -w 2 --threads 4
    .venv/bin/python benchmarks/slowloris.py --server-args "-k asgi -w 2"
    .venv/bin/python benchmarks/slowloris.py --size 1048576 --readers 50 --loris 500
    .venv/bin/python benchmarks/slowloris.py --body file        # the slow readers download a file

The same module is the application under test (``slowloris:wsgi`` or ``slowloris:asgi``,
chosen from the worker class), so the script needs nothing but the project's virtualenv.
Nothing asserts on a number: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HELLO = b"Hello, World!"


# -- the application under test ---------------------------------------------------------------

def _size(query: str) -> int:
    return int(query) if query.isdigit() else 0


def _file(size: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"slowloris-{size}.bin")
    if not os.path.exists(path) or os.path.getsize(path) != size:
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False) as f:
            f.write(b"x" * size)
        os.replace(f.name, path)
    return path


def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    """``/large?N``: N bytes in one piece; ``/file?N``: a file of N bytes through
    ``wsgi.file_wrapper``; anything else: a short greeting."""
    path, size = environ["PATH_INFO"], _size(environ.get("QUERY_STRING", ""))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](open(_file(size), "rb"))
    body = b"x" * size if path == "/large" else HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same as :func:`wsgi` for the asgi worker."""
    if scope["type"] != "http":
        return  # no lifespan support: the worker goes on without it (asgi_lifespan auto)
    query = scope.get("query_string", b"").decode()
    body = b"x" * _size(query) if scope["path"] in ("/large", "/file") else HELLO
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# -- the attack (a separate process) ----------------------------------------------------------

async def _loris(host: str, port: int, drip: float, stop: asyncio.Event,
                 stats: dict[str, int]) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        stats["loris_connects"] += 1
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                writer.write(b"X")  # a header field that never ends
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    if await asyncio.wait_for(reader.read(65536), drip) == b"":
                        break  # the server closed us: come back
        except OSError:
            pass
        finally:
            writer.close()


async def _reader(host: str, port: int, target: str, stop: asyncio.Event,
                  stats: dict[str, int]) -> None:
    while not stop.is_set():
        sock = socket.socket()
        # A small receive buffer, as a client on a slow link has; it never reads at all.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            await asyncio.sleep(0.5)
            continue
        stats["reader_connects"] += 1
        try:
            sock.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            while not stop.is_set():
                # Never read: only notice (without consuming the response) that we were dropped.
                await asyncio.sleep(0.5)
                with contextlib.suppress(BlockingIOError):
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        break
        except OSError:
            pass  # reset: the server dropped us
        finally:
            sock.close()


def _attack(host: str, port: int, loris: int, readers: int, drip: float, target: str,
            duration: float) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        stats = dict.fromkeys(("loris_connects", "reader_connects"), 0)
        tasks = [asyncio.ensure_future(_loris(host, port, drip, stop, stats))
                 for _ in range(loris)]
        tasks += [asyncio.ensure_future(_reader(host, port, target, stop, stats))
                  for _ in range(readers)]
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(f"attack: {stats['loris_connects']} slowloris and {stats['reader_connects']} "
              f"slow-reader connections opened", flush=True)

    asyncio.run(main())


# -- the measurement --------------------------------------------------------------------------

def _probe(host: str, port: int, timeout: float) -> float | None:
    """Seconds from connect to the whole response of ``GET /``; None when it did not come."""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    return None
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    return time.monotonic() - start if data.endswith(HELLO) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if _probe(host, port, 1.0) is not None:
            return
        time.sleep(0.1)
    raise SystemExit("server did not become ready")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-args", default="-k gthread -w 2 --threads 4",
                        help="arguments for the server (default: %(default)s)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs `-m gunicorn` (default: this one)")
    parser.add_argument("--loris", type=int, default=500)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--size", type=int, default=16 << 20,
                        help="bytes of each slow reader's response (default: 16 MiB)")
    parser.add_argument("--body", choices=("bytes", "file"), default="bytes",
                        help="the slow readers' response: bytes made by the app, or a file "
                             "(wsgi.file_wrapper; bytes on asgi) (default: %(default)s)")
    parser.add_argument("--drip", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of attack before the first probe")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--probe-timeout", type=float, default=35.0)
    args = parser.parse_args(argv)

    host, port = "127.0.0.1", _free_port()
    server_args = shlex.split(args.server_args)
    app = "slowloris:asgi" if "asgi" in server_args else "slowloris:wsgi"
    cmd = [args.python, "-m", "gunicorn", "-b", f"{host}:{port}", *server_args, app]
    # This directory (the app) first; a PYTHONPATH given (another checkout's sources) next.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))
    print("server:", " ".join(cmd[1:]), flush=True)
    server = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    attack = None
    try:
        _wait_ready(host, port, server, 20.0)
        duration = args.warmup + args.probes * (args.gap + args.probe_timeout) + 10
        attack = multiprocessing.Process(target=_attack, args=(
            host, port, args.loris, args.readers, args.drip,
            f"/{'large' if args.body == 'bytes' else 'file'}?{args.size}", duration))
        attack.start()
        time.sleep(args.warmup)  # let the attack establish itself (this is the benchmark)
        waits: list[float] = []
        failed = 0
        for _ in range(args.probes):
            wait = _probe(host, port, args.probe_timeout)
            if wait is None:
                failed += 1
            else:
                waits.append(wait)
            time.sleep(args.gap)
        if waits:
            print(f"normal client: {len(waits)} served, median {statistics.median(waits):.3f} s, "
                  f"max {max(waits):.3f} s; {failed} failed "
                  f"(no response within {args.probe_timeout:g} s)")
        else:
            print(f"normal client: all {failed} probes failed")
    finally:
        if attack is not None:
            attack.terminate()
            attack.join(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
