"""Which parser a new connection gets: HTTP/1.1, or uwsgi behind a front end (``protocol``).

Shared by every driver (sync, gthread, asgi) so the trust decisions for a peer are made in one
place, once per connection: forwarded headers (``forwarded_allow_ips``), PROXY protocol
(``proxy_allow_ips``) and, with ``protocol = uwsgi``, the front ends allowed to speak it
(``uwsgi_allow_ips``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from gunicorn.http.trust import AddressMatcher
from gunicorn.http.uwsgi import UWSGIParser

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings


class ParserFactory:
    """Builds the parser of each connection from the worker's configuration."""

    __slots__ = ("options", "forwarded", "proxy_allowed", "uwsgi_allowed")

    def __init__(self, cfg: CoreSettings, options: ParserOptions | None = None) -> None:
        self.options = options or ParserOptions.from_config(cfg)
        self.forwarded = AddressMatcher(cfg.forwarded_allow_ips)
        self.proxy_allowed = AddressMatcher(cfg.proxy_allow_ips)
        self.uwsgi_allowed = (AddressMatcher(cfg.uwsgi_allow_ips)
                              if cfg.protocol == "uwsgi" else None)

    def new(self, peer: Any, is_ssl: bool) -> tuple[RequestParser | UWSGIParser, bool]:
        """A parser for a connection from ``peer``, and whether the peer was refused.

        A refused uwsgi peer still gets a parser: it raises ForbiddenUWSGIRequest on its first
        event, so the driver answers 403 and closes and the front end shows its client an error
        rather than a reset. The caller logs the refusal.
        """
        trusted = self.forwarded.allows(peer)
        if self.uwsgi_allowed is None:
            return RequestParser(self.options, forwarded_trusted=trusted,
                                 proxy_trusted=self.proxy_allowed.allows(peer),
                                 is_ssl=is_ssl), False
        allowed = self.uwsgi_allowed.allows(peer)
        return UWSGIParser(self.options, forwarded_trusted=trusted, is_ssl=is_ssl,
                           allowed=allowed), not allowed
