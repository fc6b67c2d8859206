"""Errors of gunicorn-http2.

::

    GunicornError                    gunicorn.errors
    └── HTTP2Error                   code: the HTTP/2 error code (RFC 9113 §7) it maps to
        ├── MalformedRequest         remote: a request the RFC calls malformed (stream error)
        ├── StreamClosed             remote: the peer reset the stream or the connection ended
        └── InvalidTrailers          local: the application gave trailers we cannot send

HTTP-level refusals of a well-formed request (a header the HTTP/1.1 policy refuses, a body over
the cap) are the core's :class:`gunicorn.http.errors.HTTPError` and become an HTTP response.
"""

from __future__ import annotations

from gunicorn.errors import GunicornError
from gunicorn.wsgi.exchange import ClientGone
from h2.errors import ErrorCodes


class HTTP2Error(GunicornError):
    """Root of gunicorn-http2's errors."""

    code: ErrorCodes = ErrorCodes.INTERNAL_ERROR


class MalformedRequest(HTTP2Error):
    """RFC 9113 §8.1.1: the stream is reset with PROTOCOL_ERROR; other streams go on."""

    code = ErrorCodes.PROTOCOL_ERROR


class StreamClosed(HTTP2Error, ClientGone):
    """The stream can no longer be written or read: reset by the peer, or the connection closed
    (the session reports the reset itself as the :class:`gunicorn.http2.session.StreamGone`
    event).

    It is also the core's :class:`~gunicorn.wsgi.exchange.ClientGone` (an OSError), so the WSGI
    exchange treats it like a client that went away on HTTP/1.1.
    """

    code = ErrorCodes.CANCEL


class InvalidTrailers(HTTP2Error, ValueError):
    """Trailer fields that are pseudo-headers or not valid field names / values."""
