"""Settings of gunicorn-http2 (section "HTTP/2"), added to the core registry by the plugin."""

from __future__ import annotations

from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "HTTP/2"
CLEARTEXT_MODES = ("off", "prior-knowledge", "upgrade", "both")
MAX_WINDOW = 2**31 - 1  # RFC 9113 §6.9.1
MIN_FRAME, MAX_FRAME = 2**14, 2**24 - 1  # RFC 9113 §6.5.2


def cleartext(value: Any) -> str:
    """off | prior-knowledge | upgrade | both; booleans map to prior-knowledge / off."""
    if value is True:
        return "prior-knowledge"
    if value is None or value is False:
        return "off"
    mode: str = v.choice(*CLEARTEXT_MODES)(value)
    return mode


SETTINGS = (
    Setting(
        name="http2_cleartext",
        section=SECTION,
        cli=("--http2-cleartext",),
        meta="MODE",
        default="off",
        default_doc="off",
        validator=cleartext,
        choices=CLEARTEXT_MODES,
        short_help="Cleartext HTTP/2 (h2c): off, prior-knowledge, upgrade or both.",
        doc=(
            "Serve HTTP/2 without TLS (h2c) to peers in `forwarded_allow_ips` (Unix-socket "
            "peers always qualify): `prior-knowledge` when the connection starts with the "
            "HTTP/2 preface, `upgrade` when an HTTP/1.1 request without a body asks for "
            "`Upgrade: h2c`, `both` for either. Other peers get HTTP/1.1 untouched. Needs `h2` "
            "in `http_protocols`; has no effect on TLS listeners, which use ALPN."
        ),
    ),
    Setting(
        name="http2_max_concurrent_streams",
        section=SECTION,
        cli=("--http2-max-concurrent-streams",),
        meta="INT",
        default=100,
        validator=v.positive_int(1, 2**31 - 1),
        short_help="Streams a client may have open at once on one connection.",
        doc=(
            "Announced in SETTINGS_MAX_CONCURRENT_STREAMS. A stream opened beyond it is refused "
            "alone (RST_STREAM REFUSED_STREAM, which clients retry); the connection stays up. "
            "A stream the client resets keeps its place until its application has returned. "
            "On `gthread` the streams of all connections also share the `threads` pool."
        ),
    ),
    Setting(
        name="http2_initial_window_size",
        section=SECTION,
        cli=("--http2-initial-window-size",),
        meta="INT",
        default=65535,
        validator=v.positive_int(0, MAX_WINDOW),
        short_help="Request body bytes a client may send per stream before the app reads.",
        doc=(
            "The flow-control window of each stream (SETTINGS_INITIAL_WINDOW_SIZE): how many "
            "request body bytes a client may send ahead of the application. Credit is returned "
            "as the application reads the body, so a slow reader slows the sender instead of "
            "filling memory. The connection window is raised to the same value when larger "
            "than 65535. Larger windows speed up big uploads over long round trips."
        ),
    ),
    Setting(
        name="http2_max_frame_size",
        section=SECTION,
        cli=("--http2-max-frame-size",),
        meta="INT",
        default=16384,
        validator=v.positive_int(MIN_FRAME, MAX_FRAME),
        short_help="Largest frame payload accepted from clients (16384..16777215).",
        doc=(
            "SETTINGS_MAX_FRAME_SIZE: the largest frame payload the server accepts. Frames the "
            "server sends are bounded by the client's own announced maximum."
        ),
    ),
    Setting(
        name="http2_max_header_list_size",
        section=SECTION,
        cli=("--http2-max-header-list-size",),
        meta="INT",
        default=65536,
        validator=v.positive_int(0),
        short_help="Largest decoded request header list in bytes; 0 = no limit announced.",
        doc=(
            "SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2: names plus values plus 32 bytes "
            "per field). 0 means unlimited: the setting is then not announced at all (sending "
            "0 would tell clients that no header fits)."
        ),
    ),
    Setting(
        name="http2_max_request_body",
        section=SECTION,
        cli=("--http2-max-request-body",),
        meta="BYTES",
        default=0,
        validator=v.positive_int(0),
        short_help="Largest request body accepted on one stream; 0 = no limit.",
        doc=(
            "A request whose `content-length` exceeds it is answered 413 without running the "
            "application; a body that grows past it is cut off (413 if the response has not "
            "started, else RST_STREAM CANCEL). Memory per stream is bounded by the flow-control "
            "window in any case; this bounds what the application is asked to consume."
        ),
    ),
    Setting(
        name="http2_max_reset_rate",
        section=SECTION,
        cli=("--http2-max-reset-rate",),
        meta="INT",
        default=100,
        validator=v.positive_int(0),
        short_help="Stream resets per second tolerated per connection; 0 = no limit.",
        doc=(
            "Rapid-reset protection (CVE-2023-44487, and CVE-2025-8671 \"MadeYouReset\"): "
            "every stream reset counts, by the client (RST_STREAM) or by the server because of "
            "the client (refused streams, malformed requests, frames on a stream the client "
            "had already ended), in a token bucket refilled at this many per second, with a "
            "burst of twice as many. A connection that runs out gets GOAWAY ENHANCE_YOUR_CALM "
            "and is closed."
        ),
    ),
)
