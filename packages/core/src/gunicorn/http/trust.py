"""Which peers are trusted proxies (``forwarded_allow_ips``, ``proxy_allow_ips``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A worker sees a bounded set of proxies but possibly many direct clients; the cache is cleared
# rather than grown without bound when a scan of client addresses fills it.
_CACHE_LIMIT = 4096


class AddressMatcher:
    """Decide whether a peer address is in a list of IPs / CIDR networks.

    ``AddressMatcher(["127.0.0.1", "10.0.0.0/8", "::1"])``; ``"*"`` anywhere in the list allows
    every peer. A comma-separated string is accepted too. Invalid entries raise ``ValueError``.
    """

    __slots__ = ("_any", "_networks", "_cache")

    def __init__(self, allowed: Iterable[str] | str | None) -> None:
        if allowed is None:
            allowed = ()
        elif isinstance(allowed, str):
            allowed = allowed.split(",")
        entries = [entry.strip() for entry in allowed if entry and entry.strip()]
        self._any = "*" in entries
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")
        self._cache: dict[str, bool] = {}

    @property
    def allows_any(self) -> bool:
        return self._any

    def allows(self, peer: Any) -> bool:
        """True if ``peer`` is trusted.

        ``peer`` is what ``socket.getpeername()`` returned: a ``(host, port, ...)`` tuple for
        TCP, or a str / bytes (possibly empty) / None for a UNIX-socket peer. UNIX-socket peers
        are always trusted: only local processes can reach them, as with gunicorn.
        """
        if not isinstance(peer, tuple):
            return True
        if self._any:
            return True
        host = peer[0]
        cached = self._cache.get(host)
        if cached is None:
            cached = self._match(host)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[host] = cached
        return cached

    def _match(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except (ValueError, AttributeError):
            return False
        candidates = [address]
        # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            candidates.append(mapped)
        return any(candidate in network for candidate in candidates for network in self._networks
                   if candidate.version == network.version)
