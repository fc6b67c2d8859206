"""Response field blocks for HTTP/2, shared by the WSGI and ASGI streams.

The status and fields are checked by the core's response rules (the ones HTTP/1.1 responses
follow: :func:`gunicorn.http.writer.check_head`), then turned into an HTTP/2 field block:
names lower-cased (RFC 9113 §8.2), connection-specific fields and the application's
Server/Date dropped (§8.2.2; the session adds its own Server and Date). A 1xx or 204 response
carries no Content-Length (RFC 9110 §8.6).
"""

from __future__ import annotations

from collections.abc import Iterable

from gunicorn.http.errors import InvalidResponseHeader
from gunicorn.http.writer import check_head, check_informational, field_lines
from gunicorn.http2.errors import InvalidTrailers

Fields = list[tuple[str, str]]

_CONNECTION_SPECIFIC = frozenset({"connection", "keep-alive", "proxy-connection",
                                  "transfer-encoding", "upgrade", "te", "trailers", "server",
                                  "date"})


def _h2(triples: list[tuple[str, str, str]]) -> Fields:
    return [(lower, value) for _, lower, value in triples if lower not in _CONNECTION_SPECIFIC]


def response_head(status: str, headers: Fields) -> tuple[int, Fields, int | None]:
    """A final response head: ``(status code, fields, Content-Length or None)``.

    Raises InvalidResponseHeader (nothing is sent, so the caller can still answer 500).
    """
    code, triples, length = check_head(status, headers)
    fields = _h2(triples)
    if length is not None and (code < 200 or code == 204):
        fields = [f for f in fields if f[0] != "content-length"]
        length = None
    return code, fields, length


def informational_head(status: str, headers: Fields) -> tuple[int, Fields]:
    """An interim response (``103 Early Hints``): its code and fields."""
    code, triples = check_informational(status, headers)
    return code, _h2(triples)


def trailer_fields(trailers: Iterable[tuple[str, str]]) -> Fields:
    """Trailer fields, checked like response fields (a pseudo-header is no token) and
    lower-cased. Raises InvalidTrailers."""
    try:
        return _h2(field_lines(list(trailers)))
    except InvalidResponseHeader as exc:
        raise InvalidTrailers(f"trailers: {exc}") from exc
