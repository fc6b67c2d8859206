"""Errors of the HTTP/1.1 engine.

Every error carries the HTTP ``status`` the server should answer with and the standard ``reason``
phrase for it (class attributes). ``str(err)`` is a short diagnostic for the error log; it is never
sent to the client (see :func:`gunicorn.http.writer.error_response`).

Remote errors (the peer sent something we refuse) and local errors (the application asked for
something we cannot put on the wire) are separate branches::

    GunicornError                               gunicorn.errors
    └── HTTPError                               status, reason
        ├── RequestError                        remote: the client broke the protocol
        │   ├── IncompleteRequest          400  EOF in the middle of a request
        │   ├── InvalidRequestLine         400  not "METHOD SP target SP version"
        │   │   ├── InvalidRequestMethod   400
        │   │   ├── InvalidRequestTarget   400
        │   │   └── InvalidHTTPVersion     400
        │   ├── LimitRequestLine           414  request line longer than limit_request_line
        │   ├── LimitRequestHeaders        431  too many header fields, or one too long
        │   ├── InvalidHeader              400  malformed header line or value
        │   │   ├── InvalidHeaderName      400  not a token, space before colon, refused "_"
        │   │   ├── ObsoleteFolding        400  obs-fold while not permitted
        │   │   ├── DuplicateHeader        400  a second Host / Content-Type / Content-Length
        │   │   ├── InvalidContentLength   400
        │   │   ├── InvalidTransferEncoding 400 smuggling defences on Transfer-Encoding
        │   │   └── InvalidSchemeHeaders   400  trusted scheme headers contradict each other
        │   ├── UnsupportedTransferCoding  501
        │   ├── ExpectationFailed          417
        │   ├── InvalidChunkSize           400
        │   ├── InvalidChunkExtension      400
        │   ├── ChunkMissingTerminator     400  no CRLF after chunk data
        │   ├── InvalidTrailer             400  a field that must not be a trailer (Host, ...)
        │   ├── InvalidProxyLine           400  malformed PROXY protocol header
        │   └── ForbiddenProxyRequest      403  PROXY header from a peer not in proxy_allow_ips
        └── ResponseError                       local: the application broke the protocol
            └── InvalidResponseHeader      500
"""

from __future__ import annotations

from gunicorn.errors import GunicornError


class HTTPError(GunicornError):
    """Root of the HTTP engine's errors; ``status`` and ``reason`` describe the answer to send."""

    status: int = 400
    reason: str = "Bad Request"


class RequestError(HTTPError):
    """The peer sent bytes that are not an acceptable HTTP/1.1 request. The parser is terminal."""


class IncompleteRequest(RequestError):
    """The connection reached EOF inside a request.

    ``received`` is the number of bytes of the unfinished request (blank lines before a request
    line do not count). When it is 0 the client simply closed an idle keep-alive connection and
    no response is owed.
    """

    def __init__(self, received: int, message: str = "connection closed inside a request") -> None:
        self.received = received
        super().__init__(message)


class InvalidRequestLine(RequestError):
    pass


class InvalidRequestMethod(InvalidRequestLine):
    pass


class InvalidRequestTarget(InvalidRequestLine):
    pass


class InvalidHTTPVersion(InvalidRequestLine):
    pass


class LimitRequestLine(RequestError):
    # RFC 9112 §3: a request line longer than the server accepts is answered with 414.
    status = 414
    reason = "URI Too Long"


class LimitRequestHeaders(RequestError):
    # RFC 6585 §5.
    status = 431
    reason = "Request Header Fields Too Large"


class InvalidHeader(RequestError):
    pass


class InvalidHeaderName(InvalidHeader):
    pass


class ObsoleteFolding(InvalidHeader):
    pass


class DuplicateHeader(InvalidHeader):
    pass


class InvalidContentLength(InvalidHeader):
    pass


class InvalidTransferEncoding(InvalidHeader):
    pass


class InvalidSchemeHeaders(InvalidHeader):
    pass


class UnsupportedTransferCoding(RequestError):
    # RFC 9112 §6.1: an unknown transfer coding gets 501 and the connection is closed.
    status = 501
    reason = "Not Implemented"


class ExpectationFailed(RequestError):
    # RFC 9110 §10.1.1.
    status = 417
    reason = "Expectation Failed"


class InvalidChunkSize(RequestError):
    pass


class InvalidChunkExtension(RequestError):
    pass


class ChunkMissingTerminator(RequestError):
    pass


class InvalidTrailer(RequestError):
    pass


class InvalidProxyLine(RequestError):
    pass


class ForbiddenProxyRequest(RequestError):
    status = 403
    reason = "Forbidden"


class ResponseError(HTTPError):
    """The application asked for a response that cannot be framed; answer 500 if nothing was sent."""

    status = 500
    reason = "Internal Server Error"


class InvalidResponseHeader(ResponseError):
    pass
