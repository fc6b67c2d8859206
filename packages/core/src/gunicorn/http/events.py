"""Events produced by :class:`~gunicorn.http.parser.RequestParser`.

A request is one ``Request``, zero or more ``Data`` and one ``EndOfMessage``, in that order.
``NEED_DATA`` means "feed me more bytes". These objects are built for every request, so they are
plain slotted dataclasses with no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

Headers = list[tuple[str, str]]


class NeedData:
    """Type of the :data:`NEED_DATA` sentinel."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
"""Returned by ``next_event()`` when the buffered bytes do not complete the next event."""


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """Addresses announced by a PROXY protocol header (v1 or v2).

    ``protocol`` is ``"TCP4"`` or ``"TCP6"``. The header only says where the client connected
    from (``src_*``) and to (``dst_*``); the socket's own addresses are those of the proxy.
    """

    src_addr: str
    src_port: int
    dst_addr: str
    dst_port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class Request:
    """The head of a request, with the framing and policy decisions already made.

    * ``method``: as sent (upper-cased only when ``casefold_http_method`` is on).
    * ``uri``: the request target exactly as sent (``RAW_URI``).
    * ``path``, ``query``, ``fragment``: parts of the target, still percent-encoded. For an
      absolute-form target (``http://host/p?q``) ``path`` is the path part only; for ``*`` it is
      ``"*"``; for a CONNECT authority-form target it is ``""``.
    * ``version``: ``(major, minor)``.
    * ``headers``: ``[(NAME, value)]`` in wire order; names upper-cased, values decoded as latin-1
      and stripped of surrounding blanks. Underscore names are already dropped / kept per
      ``header_map`` and the forwarder trust gate.
    * ``scheme``: ``"https"`` for TLS or a trusted secure-scheme header, else ``"http"``.
    * ``content_length``: the declared length, ``None`` when chunked or absent.
    * ``chunked``: the body uses the chunked coding.
    * ``keep_alive``: what the client asked for (Connection header, else version >= 1.1).
    * ``expect_continue``: the client waits for ``100 Continue`` before sending the body.
    * ``proxy``: the PROXY header of this connection, if any (kept for every request).
    * ``must_close``: the connection cannot be reused after this request (e.g. the body has a
      gzip transfer coding the server does not undo).
    * ``upgrade``: the ``Upgrade`` header value when the client asked to switch protocols
      (``Connection: upgrade`` on HTTP/1.1), else ``None``.
    """

    method: str
    uri: str
    path: str
    query: str
    fragment: str
    version: tuple[int, int]
    headers: Headers
    scheme: str = "http"
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    proxy: ProxyInfo | None = None
    must_close: bool = False
    upgrade: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.upper()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of the request body, with transfer coding removed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The request body is complete. ``trailers`` holds chunked trailer fields (same shape as
    ``Request.headers``)."""

    trailers: Headers = field(default_factory=list)


Event = Request | Data | EndOfMessage | NeedData
"""What ``RequestParser.next_event()`` returns."""
