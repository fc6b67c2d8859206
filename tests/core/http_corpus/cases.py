"""Helpers to write corpus cases compactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Valid:
    id: str
    raw: bytes
    expect: tuple[dict[str, Any], ...]
    options: dict[str, Any] = field(default_factory=dict)
    parser: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    id: str
    raw: bytes
    error: str
    status: int
    options: dict[str, Any] = field(default_factory=dict)
    parser: dict[str, Any] = field(default_factory=dict)
    before: int = 0          # requests that parse completely before the error
    eof: bool = False        # the peer closes after ``raw``


def msg(*lines: str, body: bytes = b"") -> bytes:
    """A request head from lines (CRLF added), then ``body``."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(target: str = "/", *headers: str, version: str = "1.1") -> bytes:
    return msg(f"GET {target} HTTP/{version}", "Host: example.com", *headers)


def chunked(*headers: str, body: bytes) -> bytes:
    return msg("POST /upload HTTP/1.1", "Host: example.com", "Transfer-Encoding: chunked",
               *headers, body=body)


def ok(id: str, raw: bytes, *expect: dict[str, Any], options: dict[str, Any] | None = None,
       parser: dict[str, Any] | None = None) -> Valid:
    return Valid(id, raw, expect or ({},), options or {}, parser or {})


def bad(id: str, raw: bytes, error: str, status: int = 400, *, options: dict[str, Any] | None = None,
        parser: dict[str, Any] | None = None, before: int = 0, eof: bool = False) -> Invalid:
    return Invalid(id, raw, error, status, options or {}, parser or {}, before, eof)


def proxy_v2(command: int, family: int, transport: int, addresses: bytes, tlv: bytes = b"",
             version: int = 2) -> bytes:
    payload = addresses + tlv
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([version << 4 | command, family << 4 | transport])
            + len(payload).to_bytes(2, "big") + payload)


INET = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + (51000).to_bytes(2, "big") + (443).to_bytes(2, "big")
INET6 = (bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("20010db8000000000000000000000002")
         + (51000).to_bytes(2, "big") + (8443).to_bytes(2, "big"))
