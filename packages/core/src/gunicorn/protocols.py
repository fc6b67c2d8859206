"""Connection protocols beyond HTTP/1.1: how a plugin describes one and how a worker picks it.

The core speaks HTTP/1.1 only. A plugin (gunicorn-http2) adds a protocol through the
``protocols(cfg)`` hook, returning :class:`ConnectionProtocol` records. A connection switches to
one of them in exactly three ways, each checked once, at the start of the connection::

    TLS handshake done ──> ALPN id chosen by the client ─────────────> protocol.alpn_id
    cleartext, trusted peer ──> first bytes == protocol.preface ─────> prior knowledge (h2c)
    HTTP/1.1 request, trusted peer, no body ──> Upgrade: <token> ───> protocol.upgrade_token

"Trusted" is ``forwarded_allow_ips`` (UNIX-socket peers always are): cleartext protocol switches
are for proxies and meshes in front of the server, never for the open internet. An untrusted peer
gets plain HTTP/1.1, byte for byte, with no sniffing.

The decision is made here, once, for every driver (:meth:`ProtocolSet.after_handshake`,
:meth:`ProtocolSet.first_bytes`, :meth:`ProtocolSet.upgrade`): a driver only moves bytes and
asks, and never names a protocol. What a protocol needs is declared by its plugin on the
:class:`ConnectionProtocol` (the fields an ``Upgrade`` request must carry, the bytes a bad
preface is answered with). The verdict is a :class:`Switch`::

    after_handshake(alpn id)    ──> SWITCH (its protocol) | HTTP1 | REFUSE (no protocol we serve)
    first_bytes(data, final)    ──> SWITCH | MORE (a preface has begun: read on, within
                                    PREFACE_BUDGET) | HTTP1 | REFUSE (no preface, no HTTP/1.1)
    upgrade(request, ...)       ──> the protocol to switch to, or None (serve the request)

The worker then hands the connection to the protocol's driver entry for its concurrency model
(``threaded`` for gthread, ``asyncio`` for asgi) together with a :class:`Handoff` saying what
has already been read; from then on the plugin owns the connection. The sync worker offers no
protocol but HTTP/1.1 (it serves one connection at a time, and HTTP/2 multiplexes many requests
on one connection), and does not advertise any other in ALPN.

Validation: :func:`check_config` runs before anything forks; asking for a protocol no installed
plugin provides is a :class:`~gunicorn.errors.ConfigError` on ``http_protocols`` naming the
package to install.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings
    from gunicorn.http.dates import DateCache
    from gunicorn.http.events import Request
    from gunicorn.http.options import ParserOptions
    from gunicorn.http.trust import AddressMatcher
    from gunicorn.plugins import PluginManager
    from gunicorn.wsgi.exchange import ExchangeRunner

H1 = "h1"
HTTP11_ALPN = "http/1.1"
# Which distribution provides a protocol token, for the error message when it is missing.
PROVIDERS: Mapping[str, str] = MappingProxyType({"h2": "gunicorn-http2"})

# Total time a trusted cleartext peer gets to complete a preface it started: one budget for the
# whole preface (bytes trickled one by one do not extend it), on every driver.
PREFACE_BUDGET = 1.0

log = logging.getLogger("gunicorn.error")


@dataclass(frozen=True, slots=True)
class Handoff:
    """What a worker passes to a protocol driver along with the connection.

    * ``how``: ``"alpn"``, ``"preface"`` or ``"upgrade"``;
    * ``data``: bytes already read from the socket that belong to the new protocol (the sniffed
      preface and whatever followed it, or the bytes pipelined after an upgrade request);
    * ``request``: the HTTP/1.1 request that asked to upgrade (``how == "upgrade"``), else None.
      The driver answers it (``101 Switching Protocols``) and serves it on the new protocol.
    """

    how: str
    data: bytes = b""
    request: Request | None = None


class ConnectionDriver(Protocol):
    """A connection adopted by a threaded protocol driver, as the gthread poller sees it."""

    def readable(self) -> None:
        """The socket is readable: read without blocking and dispatch (poller thread)."""
        ...

    def tick(self, now: float) -> None:
        """Called about twice a second (poller thread): idle timeouts, housekeeping."""
        ...

    def shutdown(self) -> None:
        """Graceful stop: stop taking new requests, finish in-flight ones, then close."""
        ...


class ThreadedHandler(Protocol):
    """The parts of the gthread worker's request handler a threaded driver may use.

    ``runner`` runs the WSGI application for each request (:mod:`gunicorn.wsgi.exchange`: a
    driver makes an ``Exchange`` over its own stream and calls ``runner.run``); ``options``,
    ``forwarded`` (the ``forwarded_allow_ips`` matcher) and ``io_timeout`` are the worker's
    HTTP policy; ``dates`` formats the Date field.
    """

    cfg: CoreSettings
    log: Any
    runner: ExchangeRunner
    options: ParserOptions
    forwarded: AddressMatcher
    io_timeout: float | None
    dates: DateCache


class ThreadedHost(Protocol):
    """What the gthread worker offers a threaded protocol driver.

    ``handler`` is described by :class:`ThreadedHandler`. ``submit(job)`` runs ``job()`` on a
    pool thread. ``adopt(conn, driver)`` has the poller call ``driver.readable()`` whenever the
    socket is readable (level-triggered) and ``driver.tick(now)`` periodically; ``release(conn)``
    ends that and frees the connection's ``worker_connections`` slot (the driver closes the socket
    itself). ``conn`` has ``sock``, ``fd``, ``peer``, ``is_ssl``, ``base_environ``, ``wait()``
    and ``close()`` (:class:`gunicorn.workers.connection.Connection`).
    """

    handler: ThreadedHandler
    keepalive: float

    def submit(self, job: Callable[[], None]) -> None: ...
    def adopt(self, conn: Any, driver: ConnectionDriver) -> None: ...
    def release(self, conn: Any) -> None: ...


ThreadedEntry = Callable[[ThreadedHost, Any, Handoff], None]
AsyncioEntry = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ConnectionProtocol:
    """A connection protocol provided by a plugin's ``protocols(cfg)`` hook.

    ``name`` is the token users put in ``http_protocols`` (``"h2"``). ``alpn_id`` selects it in a
    TLS handshake; ``preface`` selects it on a cleartext connection whose first bytes are exactly
    these (prior knowledge); ``upgrade_token`` selects it from an HTTP/1.1 ``Upgrade`` request
    that carries every field in ``upgrade_requires``. ``preface_refusal`` answers a cleartext
    connection whose first bytes are no preface when HTTP/1.1 is not offered. The plugin sets
    ``preface`` and ``upgrade_token`` only when its own settings enable them, so the core needs
    no knowledge of those settings. ``threaded(host, conn, handoff)`` takes over a
    gthread connection; ``asyncio(host, transport, handoff)`` returns the ``asyncio.Protocol``
    that takes over an asgi connection. Either may be None when the plugin lacks that driver.
    """

    name: str
    alpn_id: str | None = None
    preface: bytes | None = None
    upgrade_token: str | None = None
    threaded: ThreadedEntry | None = None
    asyncio: AsyncioEntry | None = None
    # Request fields (upper-case names) an Upgrade request must carry to switch (else it is
    # served as HTTP/1.1), and what a cleartext connection whose first bytes are no preface is
    # told before the close when HTTP/1.1 is not offered (b"": nothing).
    upgrade_requires: tuple[str, ...] = ()
    preface_refusal: bytes = b""


class Route(Enum):
    """What a connection does next, as :class:`ProtocolSet` decides it."""

    HTTP1 = "http1"  # serve HTTP/1.1 (with the bytes read so far)
    SWITCH = "switch"  # hand the connection to the protocol's driver
    MORE = "more"  # a preface has begun: read more (within PREFACE_BUDGET)
    REFUSE = "refuse"  # send ``refusal`` (maybe nothing), then close


@dataclass(frozen=True, slots=True)
class Switch:
    """A decision of :class:`ProtocolSet`: the route, its protocol (SWITCH), its bytes (REFUSE)."""

    route: Route
    protocol: ConnectionProtocol | None = None
    refusal: bytes = b""


HTTP1 = Switch(Route.HTTP1)
MORE = Switch(Route.MORE)
CLOSE = Switch(Route.REFUSE)


class ProtocolSet:
    """The protocols one worker offers, with the lookups its connections need.

    ``driver`` is ``"threaded"`` or ``"asyncio"``: protocols without an entry for it are left
    out (with a warning), as are protocols not named in ``http_protocols``.
    """

    __slots__ = ("protocols", "alpn", "by_alpn", "prefaces", "by_upgrade", "h1")

    def __init__(self, wanted: Iterable[str], available: Iterable[ConnectionProtocol],
                 driver: str) -> None:
        wanted = list(wanted)
        self.h1 = H1 in wanted
        offered: dict[str, ConnectionProtocol] = {}
        for proto in available:
            if proto.name not in wanted or proto.name in offered:
                continue
            if getattr(proto, driver, None) is None:
                log.warning("%s is not supported by this worker class; serving without it",
                            proto.name)
                continue
            offered[proto.name] = proto
        # Configured order is preference order, for ALPN as for everything else.
        self.protocols = [offered[name] for name in wanted if name in offered]
        self.alpn: list[str] = []
        for name in wanted:
            alpn_id = HTTP11_ALPN if name == H1 else (
                offered[name].alpn_id if name in offered else None)
            if alpn_id:
                self.alpn.append(alpn_id)
        self.by_alpn = {p.alpn_id: p for p in self.protocols if p.alpn_id}
        self.prefaces = [(p.preface, p) for p in self.protocols if p.preface]
        self.by_upgrade = {p.upgrade_token.lower(): p for p in self.protocols if p.upgrade_token}

    def __bool__(self) -> bool:
        return bool(self.protocols)

    # -- the switch policy (one for every driver) -----------------------------------------------

    def after_handshake(self, alpn_id: str | None) -> Switch:
        """The TLS handshake chose ``alpn_id`` (None: the client offered none we know)."""
        proto = self.by_alpn.get(alpn_id) if alpn_id else None
        if proto is not None:
            return Switch(Route.SWITCH, proto)
        return HTTP1 if self.h1 else CLOSE  # no protocol we serve: nothing to say in it

    def sniffs(self, *, is_ssl: bool, trusted: bool) -> bool:
        """Are the first bytes of this connection matched against the prefaces?"""
        return bool(self.prefaces) and not is_ssl and trusted

    def first_bytes(self, data: bytes, *, final: bool) -> Switch:
        """The first bytes of a sniffed connection; ``final``: no more will come (EOF, or the
        PREFACE_BUDGET ran out), so a preface begun but not finished is no preface."""
        proto, partial = self.sniff(data)
        if proto is not None:
            return Switch(Route.SWITCH, proto)
        if partial and not final:
            return MORE
        if self.h1:
            return HTTP1
        if not data:
            return CLOSE  # the peer said nothing: nothing to answer
        # RFC 9113 §3.4: an invalid preface is a connection error; the protocol says how.
        return Switch(Route.REFUSE, refusal=self.prefaces[0][1].preface_refusal)

    def upgrade(self, request: Request, *, is_ssl: bool, trusted: bool
                ) -> ConnectionProtocol | None:
        """The protocol an HTTP/1.1 ``Upgrade`` request switches to, or None to serve it.

        Only from a trusted cleartext peer, on a request without a body (so it is read whole
        before the switch, RFC 9110 §7.8), carrying the fields the protocol requires.
        """
        proto = self.for_upgrade(request.upgrade)
        if proto is None or is_ssl or request.chunked or (request.content_length or 0) > 0 \
                or not trusted:
            return None
        for name in proto.upgrade_requires:
            if request.header(name) is None:
                return None
        return proto

    # -- lookups --------------------------------------------------------------------------------

    def sniff(self, data: bytes) -> tuple[ConnectionProtocol | None, bool]:
        """Match the first bytes of a cleartext connection against the prefaces.

        Returns ``(protocol, False)`` on a full match, ``(None, True)`` while ``data`` is still a
        prefix of some preface (read more), ``(None, False)`` when nothing can match.
        """
        partial = False
        for preface, proto in self.prefaces:
            if data[:len(preface)] == preface:
                return proto, False
            if preface.startswith(data):
                partial = True
        return None, partial

    def for_upgrade(self, value: str | None) -> ConnectionProtocol | None:
        """The protocol named in an ``Upgrade`` header value (a comma list), if any."""
        if not value or not self.by_upgrade:
            return None
        for token in value.split(","):
            proto = self.by_upgrade.get(token.strip().lower())
            if proto is not None:
                return proto
        return None


def hand_over(transport: Any, proto: ConnectionProtocol, host: Any, handoff: Handoff) -> None:
    """Give an asyncio ``transport`` to ``proto``'s asyncio driver for good (the caller has
    left the worker's connection set; the new protocol takes the slot over)."""
    assert proto.asyncio is not None
    transport.set_protocol(proto.asyncio(host, transport, handoff))


def provided(cfg: CoreSettings, plugins: PluginManager) -> list[ConnectionProtocol]:
    """Every protocol the loaded plugins provide under ``cfg``."""
    found = []
    for proto in plugins.protocols(cfg):
        if not isinstance(proto, ConnectionProtocol):
            raise ConfigError("http_protocols",
                              f"a plugin returned {type(proto).__name__}, not ConnectionProtocol")
        found.append(proto)
    return found


def check_config(cfg: CoreSettings, plugins: PluginManager) -> None:
    """Stop before forking when ``http_protocols`` names a protocol nobody provides.

    Raises ConfigError naming ``http_protocols`` and the package to install.
    """
    names = {p.name for p in provided(cfg, plugins)}
    for token in cfg.http_protocols:
        if token != H1 and token not in names:
            package = PROVIDERS.get(token)
            hint = f": pip install {package}" if package else ""
            raise ConfigError("http_protocols",
                              f"{token} needs a plugin that provides it{hint}")


def load(cfg: CoreSettings, plugins: PluginManager | None = None) -> list[ConnectionProtocol]:
    """The protocols available in a worker process: from ``plugins``, the master's plugin
    manager (the same plugin objects, so state their earlier hooks kept, such as metric
    families, is there), else plugins loaded again from entry points, honouring
    ``disable_plugin`` (a worker made without an arbiter)."""
    if list(cfg.http_protocols) == [H1]:
        return []  # the common case costs no entry-point scan
    if plugins is None:
        from gunicorn.plugins import PluginManager

        plugins = PluginManager.from_entry_points(cfg.disable_plugin or ())
    return provided(cfg, plugins)
