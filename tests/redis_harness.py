"""A real redis-server for the stash tests, in a temporary directory.

    binary = require_redis()                     # skips the test when redis-server cannot be had
    with RedisServer(tmp_path) as rs:            # a free loopback port and a Unix socket
        rs.url                                    # redis://127.0.0.1:PORT/0
        rs.unix_url                               # unix:///.../redis.sock?db=0
        rs.kill(); rs.start()                     # SIGKILL, then the same port and files again

No persistence unless ``aof=True`` (an append-only file fsynced on every write, in the
directory, so a killed server loses nothing it acknowledged). Readiness is PING polled with a
deadline. When the binary is missing, :func:`require_redis` runs ``tests/tools/ensure-tool.sh
redis-server redis-server`` once and skips with its explanation otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import socket
import ssl
import subprocess
from pathlib import Path
from types import TracebackType

from harness import REPO, free_port, wait_until

ENSURE_SCRIPT = REPO / "tests" / "tools" / "ensure-tool.sh"


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


@functools.cache
def _ensure() -> str:
    try:
        done = subprocess.run(["sh", str(ENSURE_SCRIPT), "redis-server", "redis-server"],
                              capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ensure-tool.sh failed to run: {exc}"
    return (done.stdout + done.stderr).strip()


def require_redis() -> str:
    """The redis-server executable; installs it if we can, else skips the calling test."""
    import pytest

    binary = redis_binary()
    if binary is None:
        why = _ensure()
        binary = redis_binary()
        if binary is None:
            pytest.skip(f"redis-server is not available: {why}")
    return binary


class RedisServer:
    """One redis-server listening on 127.0.0.1:``port`` (a free one by default) and on
    ``directory/redis.sock``, with its files in ``directory``."""

    def __init__(self, directory: Path, *, port: int | None = None, aof: bool = False,
                 password: str | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = require_redis()
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.socket = self.dir / "redis.sock"
        self.password = password
        self.aof = aof
        self.tls = tls  # (certificate, key): the port speaks TLS only
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def _config(self) -> str:
        if self.tls:
            cert, key = self.tls
            listen = ["port 0", f"tls-port {self.port}", f"tls-cert-file {cert}",
                      f"tls-key-file {key}", f"tls-ca-cert-file {cert}", "tls-auth-clients no"]
        else:
            listen = [f"port {self.port}"]
        lines = [*listen, "bind 127.0.0.1", f"unixsocket {self.socket}",
                 "unixsocketperm 700", f"dir {self.dir}", 'save ""', "daemonize no",
                 f"logfile {self.dir / 'redis.log'}", "databases 4"]
        if self.aof:
            lines += ["appendonly yes", "appendfsync always"]
        else:
            lines += ["appendonly no"]
        if self.password:
            lines.append(f"requirepass {self.password}")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> RedisServer:
        conf = self.dir / "redis.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([self.binary, str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, timeout, message=f"redis-server on port {self.port}\n"
                                                f"{self.log()}")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.log()}")
        return self.ping()

    def ping(self) -> bool:
        """Whether the server answers PING (a NOAUTH refusal counts: it is up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                s = raw
                if self.tls:
                    context = ssl.create_default_context(cafile=str(self.tls[0]))
                    s = context.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = s.recv(64)
        except OSError:  # ssl.SSLError too
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def log(self) -> str:
        try:
            return (self.dir / "redis.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown save, as in a crash."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def __enter__(self) -> RedisServer:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, made with the openssl command;
    skips the calling test when openssl is missing."""
    import pytest

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not available")
    cert, key = directory / "redis.crt", directory / "redis.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key
