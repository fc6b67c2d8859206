"""The gunicorn-http2 plugin object, loaded by the core from the ``gunicorn.plugins`` group.

It adds the ``http2_*`` settings and provides the ``h2`` connection protocol: ALPN id ``h2``,
the cleartext preface and the ``h2c`` upgrade token when ``http2_cleartext`` allows them, and
the drivers for the gthread worker (:mod:`gunicorn.http2.threaded`) and the asgi worker
(:mod:`gunicorn.http2.aio`). Modules with the protocol machinery are imported only when a
worker actually serves h2. Its metric families (:mod:`gunicorn.http2.metrics`) are declared in
the master by the ``metrics`` hook and handed to the drivers the workers make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.protocols import ConnectionProtocol, Handoff

if TYPE_CHECKING:
    from gunicorn.config import Config, Registry

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
# RFC 9113 §3.4: an invalid client preface is a connection error of type PROTOCOL_ERROR. The
# server's own preface (a SETTINGS frame, here empty) must be its first frame, then GOAWAY:
#
#   length (24) | type (8) | flags (8) | R + stream id (32) | payload
#   0x000000    | 0x04     | 0x00      | 0                  |                         SETTINGS
#   0x000008    | 0x07     | 0x00      | 0                  | last stream 0, code 0x1 GOAWAY
PREFACE_REFUSAL = (b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                   b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"
                   b"\x00\x00\x00\x00\x00\x00\x00\x01")


class _ThreadedEntry:
    """``ConnectionProtocol.threaded``: imports the threaded driver on the first h2
    connection."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics

    def __call__(self, host: Any, conn: Any, handoff: Handoff) -> None:
        from gunicorn.http2.threaded import serve

        serve(host, conn, handoff, self._metrics)


class _AsyncioEntry:
    """Imports the asyncio driver on the first h2 connection, then delegates to it (one
    instance per worker process: ``protocols(cfg)`` runs in each worker)."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics
        self._entry: Any = None

    def __call__(self, ctx: Any, transport: Any, handoff: Handoff) -> Any:
        entry = self._entry
        if entry is None:
            from gunicorn.http2.aio import AsyncioEntry

            entry = self._entry = AsyncioEntry(self._metrics)
        return entry(ctx, transport, handoff)


class HTTP2Plugin:
    """Hooks of gunicorn-http2 (see :mod:`gunicorn.plugins` for when the core calls them)."""

    def __init__(self) -> None:
        self._metrics: Any = None  # H2Metrics once the metrics hook ran (metrics on)

    def add_settings(self, registry: Registry) -> None:
        from gunicorn.http2.settings import SETTINGS

        registry.add_all(SETTINGS)

    def metrics(self, families: Any) -> None:
        """Declare the http2 families (gunicorn_http2_*; see docs/metrics.md)."""
        if families.enabled:
            from gunicorn.http2.metrics import H2Metrics

            self._metrics = H2Metrics(families)

    def protocols(self, cfg: Config) -> list[ConnectionProtocol]:
        mode = cfg.http2_cleartext
        return [ConnectionProtocol(
            name="h2",
            alpn_id="h2",
            preface=PREFACE if mode in ("prior-knowledge", "both") else None,
            upgrade_token="h2c" if mode in ("upgrade", "both") else None,
            # RFC 7540 §3.2.1: an h2c upgrade request carries exactly one HTTP2-Settings field.
            upgrade_requires=("HTTP2-SETTINGS",),
            preface_refusal=PREFACE_REFUSAL,
            threaded=_ThreadedEntry(self._metrics),
            asyncio=_AsyncioEntry(self._metrics),
        )]
