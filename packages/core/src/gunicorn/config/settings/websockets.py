"""Section "WebSockets": message limits, compression, keepalive and connection slots of the
asgi worker's WebSockets (the send timeout is the shared ``write_timeout``)."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "WebSockets"

SETTINGS = (
    Setting(
        name="websocket_max_message_size",
        section=SECTION,
        cli=("--websocket-max-message-size",),
        meta="INT",
        default=16 * 1024 * 1024,
        default_doc="16777216",
        validator=v.positive_int(),
        short_help="Largest WebSocket message, in bytes, the asgi worker accepts (0: no limit).",
        doc=(
            "The largest WebSocket message, in bytes, the asgi worker accepts, counted as it "
            "arrives (fragments included) and, for a compressed message, as it is inflated: "
            "inflating stops at the limit, so a small compressed message cannot expand in "
            "memory. A larger message closes the connection with code 1009 and the application "
            "receives `websocket.disconnect` with that code. 0 means no limit (and no bound on "
            "inflation either)."
        ),
    ),
    Setting(
        name="websocket_per_message_deflate",
        section=SECTION,
        cli=("--websocket-per-message-deflate",),
        meta="BOOL",
        default=True,
        validator=v.boolean,
        short_help="Accept the permessage-deflate compression clients offer (on/off).",
        doc=(
            "Accept the permessage-deflate extension (RFC 7692) when a client offers it, as "
            "browsers do: messages are then compressed both ways. It costs CPU per message "
            "(see `websocket_deflate_level`) and memory per connection: about 25 KiB once small "
            "messages were exchanged, up to about 200 KiB with large ones. `off` serves every "
            "WebSocket uncompressed."
        ),
    ),
    Setting(
        name="websocket_deflate_level",
        section=SECTION,
        cli=("--websocket-deflate-level",),
        meta="INT",
        default=1,
        validator=v.positive_int(minimum=1, maximum=9),
        short_help="zlib level (1-9) of the WebSocket messages the server compresses.",
        doc=(
            "The zlib compression level of the messages the server sends on a permessage-deflate "
            "connection: 1 is the fastest, 9 the smallest. Measured on 4 KiB JSON messages "
            "echoed by one worker: about 87 us of server CPU per message at level 1 (output 22% "
            "of the input), 131 us at 6 (16%), 368 us at 9 (15%), against 31 us without "
            "compression. Inflating what clients send costs the same whatever the level."
        ),
    ),
    Setting(
        name="websocket_ping_interval",
        section=SECTION,
        cli=("--websocket-ping-interval",),
        meta="INT",
        default=20,
        validator=v.positive_int(),
        short_help="Seconds of silence from a WebSocket peer before the server pings it (0: never).",
        doc=(
            "When a WebSocket peer has sent nothing for this many seconds, the server sends it a "
            "Ping. This keeps connections through proxies and NAT open (nginx closes a proxied "
            "connection idle for 60 s by default) and, with `websocket_ping_timeout`, finds peers "
            "that are gone without closing. 0 turns pings off."
        ),
    ),
    Setting(
        name="websocket_ping_timeout",
        section=SECTION,
        cli=("--websocket-ping-timeout",),
        meta="INT",
        default=20,
        validator=v.positive_int(),
        short_help="Seconds a pinged WebSocket peer gets to answer before it is dropped (0: never).",
        doc=(
            "After a keepalive Ping, the peer must send something (its Pong, or any other frame) "
            "within this many seconds; otherwise the server closes the connection with code 1011 "
            "and the application receives `websocket.disconnect` with that code. 0 never drops "
            "a silent peer (pings are still sent). Has no effect when `websocket_ping_interval` "
            "is 0."
        ),
    ),
    Setting(
        name="websocket_max_connections",
        section=SECTION,
        cli=("--websocket-max-connections",),
        meta="INT",
        default=0,
        default_doc="0 (nine tenths of worker_connections)",
        validator=v.positive_int(),
        short_help="Most open WebSockets per asgi worker (0: nine tenths of worker_connections).",
        doc=(
            "How many of a worker's `worker_connections` slots WebSockets may hold at once. An "
            "upgrade request beyond it is answered `503 Service Unavailable`, so long-lived "
            "WebSockets cannot lock plain HTTP clients out of the worker. 0 (the default) keeps "
            "a tenth of the slots, at least one, for plain HTTP. A value of `worker_connections` "
            "or more lets WebSockets take every slot."
        ),
    ),
)
