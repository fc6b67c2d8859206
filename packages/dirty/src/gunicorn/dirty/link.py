"""The transport handling shared by the arbiter's asyncio protocols (clients, workers).

Both ends the arbiter serves, a client connection and a worker's socketpair, write frames that
may outlive the peer: once the connection is lost, a late reply is dropped rather than raised,
so the arbiter's routing code never has to ask whether the peer is still there.
"""

from __future__ import annotations

import asyncio


class TransportLink(asyncio.Protocol):
    """An asyncio protocol whose ``send``/``close`` are no-ops once the connection is gone.

    Subclasses set ``self.transport = None`` in ``connection_lost``.
    """

    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
