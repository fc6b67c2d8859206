"""Listen addresses: parse what users write after ``-b`` into a :class:`BindAddress`.

Accepted forms (the same as gunicorn's):

=====================  ==========================================================
``HOST``               TCP on port 8000
``HOST:PORT``          TCP; an empty host (``:8000``) means every IPv4 interface
``[V6ADDR]:PORT``      TCP over IPv6; ``[::1]`` alone means port 8000
``tcp://HOST:PORT``    the same as ``HOST:PORT``
``unix:PATH``          a Unix socket (``unix://PATH`` is accepted too)
``fd://N``             an already-open listening socket inherited as descriptor N
=====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_PORT = 8000
AddressKind = Literal["tcp", "unix", "fd"]


@dataclass(frozen=True, slots=True)
class BindAddress:
    """One listen address. ``kind`` says which of host/port, path or fd is meaningful."""

    kind: AddressKind
    host: str | None = None
    port: int | None = None
    path: str | None = None
    fd: int | None = None

    @property
    def family_is_ipv6(self) -> bool:
        return self.kind == "tcp" and self.host is not None and ":" in self.host

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if self.family_is_ipv6 else self.host
        return f"{host}:{self.port}"


def _port(text: str, original: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{original!r}: port {text!r} is not a number")
    port = int(text)
    if port > 65535:
        raise ValueError(f"{original!r}: port {port} is out of range (0-65535)")
    return port


def parse_address(text: str) -> BindAddress:
    """Parse one ``-b`` value; raise ValueError saying what is wrong with it."""
    original = text
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"{original!r}: missing socket path after 'unix:'")
        return BindAddress("unix", path=path)
    if text.startswith("fd://"):
        number = text[len("fd://"):]
        if not number.isdigit():
            raise ValueError(f"{original!r}: file descriptor must be a number")
        return BindAddress("fd", fd=int(number))
    if text.startswith("tcp://"):
        text = text[len("tcp://"):]
    if "/" in text or "://" in text:
        raise ValueError(f"{original!r} is not HOST:PORT, unix:PATH or fd://N")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"{original!r}: unterminated '[' in IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{original!r}: expected ':PORT' after ']'")
        port = _port(rest[1:], original) if rest else DEFAULT_PORT
        return BindAddress("tcp", host=host, port=port)
    if text.count(":") > 1:
        # A bare IPv6 address without brackets: no port can be told apart from it.
        return BindAddress("tcp", host=text, port=DEFAULT_PORT)
    host, sep, port_text = text.partition(":")
    port = _port(port_text, original) if sep else DEFAULT_PORT
    return BindAddress("tcp", host=host or "0.0.0.0", port=port)
