"""gunicorn's sans-IO HTTP/1.1 engine: bytes in, events out; responses in, bytes out.

Nothing here touches a socket; the workers drive it. See docs/internals.md for the seam.
"""

from gunicorn.http.dates import DateCache, http_date
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    DuplicateHeader,
    ExpectationFailed,
    ForbiddenProxyRequest,
    HTTPError,
    IncompleteRequest,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidContentLength,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidProxyLine,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidRequestTarget,
    InvalidResponseHeader,
    InvalidSchemeHeaders,
    InvalidTrailer,
    InvalidTransferEncoding,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
    RequestError,
    ResponseError,
    UnsupportedTransferCoding,
)
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, Event, ProxyInfo, Request
from gunicorn.http.options import ParserOptions
from gunicorn.http.parser import RequestParser
from gunicorn.http.trust import AddressMatcher
from gunicorn.http.writer import ResponseFramer, error_response

__all__ = [
    "AddressMatcher",
    "ChunkMissingTerminator",
    "Data",
    "DateCache",
    "DuplicateHeader",
    "EndOfMessage",
    "Event",
    "ExpectationFailed",
    "ForbiddenProxyRequest",
    "HTTPError",
    "IncompleteRequest",
    "InvalidChunkExtension",
    "InvalidChunkSize",
    "InvalidContentLength",
    "InvalidHTTPVersion",
    "InvalidHeader",
    "InvalidHeaderName",
    "InvalidProxyLine",
    "InvalidRequestLine",
    "InvalidRequestMethod",
    "InvalidRequestTarget",
    "InvalidResponseHeader",
    "InvalidSchemeHeaders",
    "InvalidTrailer",
    "InvalidTransferEncoding",
    "LimitRequestHeaders",
    "LimitRequestLine",
    "NEED_DATA",
    "ObsoleteFolding",
    "ParserOptions",
    "ProxyInfo",
    "Request",
    "RequestError",
    "RequestParser",
    "ResponseError",
    "ResponseFramer",
    "UnsupportedTransferCoding",
    "error_response",
    "http_date",
]
