"""The id of each request: taken from a trusted proxy's header, or made here.

Every request gets one, whether or not anything reads it: it is 16 hex characters from
``os.urandom`` (one ``getrandom`` call, about 0.3 µs; nothing to re-seed after a fork, unlike a
``random.Random`` made in the master and copied into every worker).

The inbound header (``request_id_header``, ``X-Request-ID`` by default) is believed only when
the socket peer is in ``forwarded_allow_ips`` (a UNIX-socket peer always is, as for the other
forwarded headers), and only when its value is a plausible id: 1 to :data:`MAX_LENGTH` visible
ASCII characters other than ``"`` and ``\\``. Anything else gets a fresh id, so an id can always
be written into a log line or a response header as it is.

Where the id goes: the WSGI environ key :data:`ENVIRON_KEY`, the ASGI scope extension
:data:`SCOPE_EXTENSION` (``scope["extensions"]["gunicorn.request_id"]["id"]``), the
``%(request_id)s`` access-log atom and the ``request_id`` field of JSON access lines. The
``HTTP_X_REQUEST_ID`` environ key / scope header stay what the client sent. With
``request_id_response_header`` set, responses carry it too (:func:`with_header`), unless the
application set that header itself.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gunicorn.http.trust import AddressMatcher

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

ENVIRON_KEY = "gunicorn.request_id"
SCOPE_EXTENSION = "gunicorn.request_id"
MAX_LENGTH = 200
_PLAUSIBLE = re.compile(rf"[!#-\[\]-~]{{1,{MAX_LENGTH}}}")


def new_request_id() -> str:
    """A fresh id: 16 lowercase hex characters (64 random bits)."""
    return os.urandom(8).hex()


def plausible(value: str) -> bool:
    """True if ``value`` may be used as an id as it is (see the module docstring)."""
    return _PLAUSIBLE.fullmatch(value) is not None


class RequestIds:
    """Picks the id of each request for one worker.

    ``header`` is the inbound header name (any case; empty: never take one), ``trusted`` the
    ``forwarded_allow_ips`` matcher. :attr:`environ_key` is where the header sits in a WSGI
    environ and :attr:`header_name` how the parser spells it (upper case).
    """

    __slots__ = ("header_name", "environ_key", "_trusted")

    def __init__(self, header: str, trusted: AddressMatcher) -> None:
        name = header.strip().upper()
        self.header_name = name or None
        self.environ_key = "HTTP_" + name.replace("-", "_") if name else None
        self._trusted = trusted

    @classmethod
    def from_config(cls, cfg: CoreSettings) -> RequestIds:
        return cls(cfg.request_id_header, AddressMatcher(cfg.forwarded_allow_ips))

    def pick(self, inbound: str | None, peer: Any) -> str:
        """The id of a request whose header value is ``inbound`` (None when absent), received
        from the socket peer ``peer`` (``getpeername()`` form: a tuple for TCP)."""
        if inbound is not None and self._trusted.allows(peer) and plausible(inbound):
            return inbound
        return new_request_id()

    def for_headers(self, headers: Any, peer: Any) -> str:
        """:meth:`pick` for a parsed request's ``[(NAME, value)]`` header list."""
        name = self.header_name
        inbound = None
        if name is not None:
            for key, value in headers:
                if key == name:
                    inbound = value
                    break
        return self.pick(inbound, peer)

    def for_environ(self, env: Mapping[str, Any], conn_base: Mapping[str, Any]) -> str:
        """:meth:`pick` for a WSGI environ built on ``conn_base`` (whose ``REMOTE_ADDR`` is still
        the socket peer, before any PROXY protocol header replaced it)."""
        key = self.environ_key
        inbound = env.get(key) if key is not None else None
        if inbound is None:
            return new_request_id()
        sock = conn_base.get("gunicorn.socket")
        family = getattr(sock, "family", None)
        peer = None if family == socket.AF_UNIX else (conn_base.get("REMOTE_ADDR") or "", 0)
        return self.pick(inbound, peer)


def response_header(cfg: CoreSettings) -> str | None:
    """The response header the id is echoed in (``request_id_response_header``), or None."""
    return cfg.request_id_response_header.strip() or None


def with_header(headers: list[tuple[str, str]], name: str, value: str | None
                ) -> list[tuple[str, str]]:
    """``headers`` plus ``(name, value)``, unless a header of that name (any case) is already
    there or ``value`` is None. ``headers`` is never modified. Malformed headers are returned
    as they are, for the response writer to refuse with its own error."""
    if value is None:
        return headers
    lower = name.lower()
    try:
        if any(key.lower() == lower for key, _ in headers):
            return headers
        return [*headers, (name, value)]
    except (TypeError, ValueError, AttributeError):
        return headers
