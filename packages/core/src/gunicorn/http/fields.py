"""Field lines (RFC 9112 §5) of a request head or a chunked trailer section.

::

    field-line   = field-name ":" OWS field-value OWS CRLF
    field-name   = token                        ; no whitespace before the colon (§5.1)
    field-value  = *( VCHAR / obs-text / SP / HTAB )   ; i.e. no CTL but HTAB
    obs-fold     = CRLF 1*( SP / HTAB )         ; a line starting with a blank (§5.2)

Limits are checked by the caller on the raw lines before this module sees them, so that the same
error wins whether the head arrived whole or byte by byte.
"""

from __future__ import annotations

import re

from gunicorn.http.errors import InvalidHeader, InvalidHeaderName, ObsoleteFolding
from gunicorn.http.events import Headers
from gunicorn.http.options import ParserOptions

TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN_RE = re.compile(rb"[%s]+" % TCHAR)
# One match validates a whole ordinary line: the value part excludes every CTL except HTAB
# (RFC 9110 §5.5), so bare CR, LF and NUL are refused here.
FIELD_LINE_RE = re.compile(rb"([%s]+):([^\x00-\x08\x0a-\x1f\x7f]*)" % TCHAR)
FIELD_VALUE_RE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
_BLANKS = b" \t"
# Fast path for a whole field block: ordinary lines only, no underscore in any name (those need
# header_map), validated by one C-level match and split by one findall.
_PLAIN_TCHAR = TCHAR.replace(b"_", b"")
_PLAIN_BLOCK_RE = re.compile(
    rb"[%s]+:[^\x00-\x08\x0a-\x1f\x7f]*(?:\r\n[%s]+:[^\x00-\x08\x0a-\x1f\x7f]*)*"
    % (_PLAIN_TCHAR, _PLAIN_TCHAR))
_PLAIN_PAIR_RE = re.compile(rb"([%s]+):([^\x00-\x08\x0a-\x1f\x7f]*)" % _PLAIN_TCHAR)


def parse_field_block(block: bytes, options: ParserOptions, *, forwarder_trusted: bool) -> Headers:
    """Like :func:`parse_field_lines` for the CRLF-joined lines ``block`` (b"" for none)."""
    if not block:
        return []
    if _PLAIN_BLOCK_RE.fullmatch(block) is not None:
        return [(name.upper().decode("latin-1"), value.strip(_BLANKS).decode("latin-1"))
                for name, value in _PLAIN_PAIR_RE.findall(block)]
    return parse_field_lines(block.split(b"\r\n"), options, forwarder_trusted=forwarder_trusted)


def parse_field_lines(lines: list[bytes], options: ParserOptions, *,
                      forwarder_trusted: bool) -> Headers:
    """Turn raw field lines into ``[(NAME, value)]``.

    Underscore names are dropped / refused / kept according to ``options.header_map``, except
    the names in ``options.forwarder_headers`` which are kept when ``forwarder_trusted``.

    Raises InvalidHeader, InvalidHeaderName or ObsoleteFolding.
    """
    headers: Headers = []
    append = headers.append
    match_line = FIELD_LINE_RE.fullmatch
    header_map = options.header_map
    forwarders = options.forwarder_headers if forwarder_trusted else frozenset()
    # A folded continuation belongs to the previous field, even if that one was dropped.
    previous_dropped = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not options.permit_obsolete_folding:
                raise ObsoleteFolding("obsolete line folding in a header field")
            if not headers and not previous_dropped:
                raise InvalidHeader("folded line before the first header field")
            extra = line.strip(_BLANKS)
            if FIELD_VALUE_RE.fullmatch(extra) is None:
                raise InvalidHeader("control character in a folded header value")
            if not previous_dropped:
                # RFC 9112 §5.2: replace each obs-fold with one SP.
                name, value = headers[-1]
                joined = f"{value} {extra.decode('latin-1')}" if value else extra.decode("latin-1")
                headers[-1] = (name, joined)
            continue
        match = match_line(line)
        if match is None:
            raw_name, raw_value = _diagnose(line, options)
        else:
            raw_name, raw_value = match.group(1), match.group(2)
        name = raw_name.upper().decode("latin-1")
        previous_dropped = False
        if b"_" in raw_name and name not in forwarders:
            # An underscore name would collide with its dash twin once mapped to HTTP_* in WSGI,
            # letting a client spoof a header a proxy vouches for.
            if header_map == "drop":
                previous_dropped = True
                continue
            if header_map == "refuse":
                raise InvalidHeaderName(f"underscore in header name {name!r}")
        append((name, raw_value.strip(_BLANKS).decode("latin-1")))
    return headers


def _diagnose(line: bytes, options: ParserOptions) -> tuple[bytes, bytes]:
    """Classify a line the fast pattern refused; return (name, value) when it is acceptable
    after all (whitespace before the colon with ``strip_header_spaces``)."""
    colon = line.find(b":")
    if colon <= 0:
        raise InvalidHeader("header line without a field name and colon")
    name, value = line[:colon], line[colon + 1:]
    if name[-1:] in (b" ", b"\t"):
        # RFC 9112 §5.1: whitespace between name and colon is a smuggling vector; gunicorn's
        # deprecated strip_header_spaces accepts it.
        if not options.strip_header_spaces:
            raise InvalidHeaderName("whitespace before the colon of a header field")
        name = name.rstrip(_BLANKS)
    if TOKEN_RE.fullmatch(name) is None:
        raise InvalidHeaderName(f"header name is not a token: {name[:64]!r}")
    if FIELD_VALUE_RE.fullmatch(value) is None:
        raise InvalidHeader(f"control character in the value of {name[:64]!r}")
    return name, value
