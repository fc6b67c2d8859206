"""The buffer side shared by the request parsers (HTTP/1.1 and uwsgi).

Both parsers are sans-IO: the driver feeds the bytes it read and asks for events. What they
share is how bytes come in (``feed``, with ``b""`` for EOF), what is left when a driver takes the
connection over (``trailing_data``) and the client address a proxy announced (``proxy_info``).
The wire formats differ, so event parsing stays in each parser.
"""

from __future__ import annotations

from gunicorn.http import errors
from gunicorn.http.events import ProxyInfo


class BufferedParser:
    """Base of the request parsers: input buffer, EOF flag, PROXY info, latched error.

    Subclasses parse ``self._buf`` in ``next_event``, delete what they consumed, set
    ``self._proxy`` when the peer announces the client address and keep the first
    :class:`~gunicorn.http.errors.RequestError` in ``self._error`` (the parser is terminal then).
    Their ``__init__`` sets the four attributes itself: a parser is built per connection and
    a base ``__init__`` call measurably slowed that down for four assignments.
    """

    __slots__ = ("_buf", "_eof", "_proxy", "_error")
    _buf: bytearray
    _eof: bool
    _proxy: ProxyInfo | None
    _error: errors.RequestError | None

    @property
    def proxy_info(self) -> ProxyInfo | None:
        """The client address announced by the peer (PROXY header or uwsgi variables) for the
        latest request, or None."""
        return self._proxy

    @property
    def at_eof(self) -> bool:
        """The peer closed its side (``feed(b"")`` was called)."""
        return self._eof

    def feed(self, data: bytes) -> None:
        """Buffer bytes received from the peer; ``b""`` means the peer closed its side."""
        if data:
            self._buf += data
        else:
            self._eof = True

    def trailing_data(self) -> bytes:
        """Bytes buffered but not parsed (for a protocol upgrade after the request's end)."""
        return bytes(self._buf)
