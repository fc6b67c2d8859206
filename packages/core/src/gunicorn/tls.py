"""TLS for the HTTP listeners: the server SSLContext and the per-connection handshake.

The context is built once per worker through the ``ssl_context(config, default_factory)`` hook,
so a user can start from our default and adjust it (or return a context of their own). Sockets are
wrapped right after ``accept`` without handshaking; the handshake then runs in the thread that
serves the connection, so a slow or hostile client never blocks the accept loop.
"""

from __future__ import annotations

import select
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn.errors import ConfigError

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

# The only application protocol the core speaks by itself. Workers that serve protocols from
# plugins (gunicorn.protocols) pass their own list, e.g. ["h2", "http/1.1"]; the sync worker never
# does, so it cannot be picked for a protocol it would answer with HTTP/1.1 bytes.
ALPN_PROTOCOLS = ("http/1.1",)


class HandshakeTimeout(ssl.SSLError):
    """The client did not finish the TLS handshake in time."""


def default_context(cfg: CoreSettings, alpn: Sequence[str] | None = None) -> ssl.SSLContext:
    """The context gunicorn users expect from certfile/keyfile/ca_certs/cert_reqs/ciphers.

    ``alpn`` is the ALPN offer in preference order (default: HTTP/1.1 only)."""
    if cfg.certfile is None:
        raise ConfigError("certfile", "keyfile is set but certfile is not")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile=cfg.certfile, keyfile=cfg.keyfile)
    ctx.verify_mode = ssl.VerifyMode(cfg.cert_reqs)
    if cfg.ca_certs:
        ctx.load_verify_locations(cafile=cfg.ca_certs)
    if cfg.ciphers:
        ctx.set_ciphers(cfg.ciphers)
    ctx.set_alpn_protocols(list(alpn or ALPN_PROTOCOLS))
    return ctx


def ssl_context(cfg: CoreSettings, alpn: Sequence[str] | None = None) -> ssl.SSLContext:
    """Build the server context through the ``ssl_context`` hook.

    The hook gets ``cfg`` and a zero-argument factory returning :func:`default_context`; the
    default hook just calls the factory. Errors (missing files, bad ciphers) propagate: a worker
    that cannot build its context must fail to boot rather than serve plain text on a TLS port.
    """
    def factory() -> ssl.SSLContext:
        return default_context(cfg, alpn)

    ctx = cfg.ssl_context(cfg, factory)
    if not isinstance(ctx, ssl.SSLContext):
        raise TypeError(f"the ssl_context hook returned {type(ctx).__name__}, not SSLContext")
    return ctx


def wrap(ctx: ssl.SSLContext, sock: Any, cfg: CoreSettings) -> ssl.SSLSocket:
    """Wrap an accepted (non-blocking) socket; the handshake is left to :func:`handshake`."""
    return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False,
                           suppress_ragged_eofs=bool(cfg.suppress_ragged_eofs))


def handshake(sock: ssl.SSLSocket, wait: Callable[[int, float | None], bool],
              timeout: float | None) -> None:
    """Run the handshake of a non-blocking SSLSocket, waiting with ``wait(events, timeout)``.

    Raises ssl.SSLError (including :class:`HandshakeTimeout`) or OSError; the caller logs and
    closes the connection.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            events = select.POLLIN
        except ssl.SSLWantWriteError:
            events = select.POLLOUT
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0 or not wait(events, left):
            raise HandshakeTimeout("TLS handshake timed out")
