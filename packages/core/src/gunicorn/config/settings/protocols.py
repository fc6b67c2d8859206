"""Section "Protocols": which HTTP versions the server offers on its connections."""

from __future__ import annotations

from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Protocols"
TOKENS = ("h1", "h2")


def http_protocols(value: Any) -> list[str]:
    """A comma list (or a list) of protocol tokens, in preference order; empty means h1."""
    tokens = [token.lower() for token in v.string_list(value)]
    for token in tokens:
        if token not in TOKENS:
            raise ValueError(f"unknown protocol {token!r} (expected {' or '.join(TOKENS)})")
    if len(set(tokens)) != len(tokens):
        raise ValueError("a protocol is listed twice")
    return tokens or ["h1"]


SETTINGS = (
    Setting(
        name="http_protocols",
        section=SECTION,
        cli=("--http-protocols",),
        meta="LIST",
        default=["h1"],
        default_doc="h1",
        validator=http_protocols,
        short_help="Protocols offered on connections, in preference order: h1, h2.",
        doc=(
            "The HTTP versions the server offers, most preferred first: a comma-separated string "
            "(`h2,h1`) or a list. `h1` is HTTP/1.1 (and 1.0); `h2` is HTTP/2 and needs the "
            "`gunicorn-http2` package, without which the server refuses to start. Over TLS the "
            "list becomes the ALPN offer; cleartext HTTP/2 (h2c) is controlled by "
            "`http2_cleartext`. The `gthread` and `asgi` workers serve h2; the `sync` worker "
            "serves HTTP/1.1 only and warns when h2 is asked of it. Leaving `h1` out refuses "
            "HTTP/1.1 clients on TLS listeners (ALPN) and on trusted h2c connections."
        ),
    ),
)
