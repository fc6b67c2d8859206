"""``Sec-WebSocket-Extensions`` offers and the server's answer (RFC 6455 §9.1, RFC 7692 §7.1),
sans-IO.

The client lists the extensions it offers, most preferred first; each may be offered several
times with different parameters (header fields may also repeat)::

    Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8,
                              permessage-deflate; client_max_window_bits, x-webkit-deflate-frame

    extension-list = 1#extension
    extension      = extension-token *( ";" extension-param )
    extension-param = token [ "=" (token | quoted-string) ]

The server accepts at most one offer of ``permessage-deflate`` (the first it can honour, here the
second: zlib cannot compress with a 256-byte window) and names it with the parameters it agreed
to in its ``101`` response::

    Sec-WebSocket-Extensions: permessage-deflate

Every other extension is ignored (not answered), which declines it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFLATE", "DeflateAgreement", "Offer", "negotiate_deflate", "parse_offers"]

DEFLATE = "permessage-deflate"
# Parameters as received: (lower-cased name, value after unquoting, or None for no value).
Param = tuple[str, str | None]
Offer = tuple[str, tuple[Param, ...]]

# RFC 7230 §3.2.6 tchar.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 7692 §7.1.2: a window size is a decimal 8..15, no leading zero.
_WINDOW_BITS = frozenset(str(bits) for bits in range(8, 16))
# zlib's raw deflate cannot compress with windowBits 8 (it silently uses 9), so a client that
# limits the server to 8 gets its offer declined (RFC 7692 §7.1.2.1 allows that).
_MIN_SERVER_WINDOW_BITS = 9


class _Malformed(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DeflateAgreement:
    """The permessage-deflate configuration both sides agreed to.

    ``server_no_context_takeover``: the server resets its compressor after every message.
    ``client_no_context_takeover``: the client does, so the server may drop its inflater too.
    ``server_max_window_bits``: the LZ77 window the server compresses with (the client's may be
    anything up to 15: the server always inflates with a 15-bit window, which reads them all).
    ``header``: the value of the response's ``Sec-WebSocket-Extensions`` field.
    """

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int
    header: str


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _token(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end] in _TCHAR:
        end += 1
    if end == pos:
        raise _Malformed(f"expected a token at offset {pos}")
    return text[pos:end], end


def _quoted(text: str, pos: int) -> tuple[str, int]:
    # RFC 7230 §3.2.6 quoted-string; pos is on the opening DQUOTE.
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":
            pos += 1
            if pos == len(text):
                break
            char = text[pos]
        out.append(char)
        pos += 1
    raise _Malformed("unterminated quoted-string")


def _parse_field(text: str, out: list[Offer]) -> None:
    pos = 0
    while True:
        pos = _skip_ows(text, pos)
        if pos == len(text):
            return
        if text[pos] == ",":  # RFC 7230 §7: empty list elements are allowed and ignored
            pos += 1
            continue
        name, pos = _token(text, pos)
        params: list[Param] = []
        while True:
            pos = _skip_ows(text, pos)
            if pos == len(text) or text[pos] == ",":
                break
            if text[pos] != ";":
                raise _Malformed(f"unexpected {text[pos]!r} at offset {pos}")
            pos = _skip_ows(text, pos + 1)
            key, pos = _token(text, pos)
            pos = _skip_ows(text, pos)
            value: str | None = None
            if pos < len(text) and text[pos] == "=":
                pos = _skip_ows(text, pos + 1)
                if pos < len(text) and text[pos] == '"':
                    value, pos = _quoted(text, pos)
                    # RFC 6455 §9.1: an unescaped quoted value must still be a token.
                    if not value or not set(value) <= _TCHAR:
                        raise _Malformed(f"quoted value {value!r} is not a token")
                else:
                    value, pos = _token(text, pos)
            params.append((key.lower(), value))
        out.append((name.lower(), tuple(params)))


def parse_offers(fields: Iterable[str]) -> list[Offer]:
    """The offers of every ``Sec-WebSocket-Extensions`` field, in order.

    Names are lower-cased, values unquoted. Raises ``ValueError`` for a field that does not
    follow the RFC 6455 §9.1 grammar.
    """
    offers: list[Offer] = []
    for text in fields:
        _parse_field(text, offers)
    return offers


def _accept_deflate(params: tuple[Param, ...]) -> DeflateAgreement | None:
    """The agreement for one permessage-deflate offer, or None to decline it.

    RFC 7692 §7.1: decline an offer with an unknown parameter, a parameter twice, an invalid
    value, or a configuration the server does not support.
    """
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    for name, value in params:
        if name in seen:
            return None
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            # §7.1.1.1 / §7.1.1.2: these parameters have no value.
            if value is not None:
                return None
            if name == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif name == "server_max_window_bits":
            # §7.1.2.1: the value is mandatory in an offer.
            if value not in _WINDOW_BITS:
                return None
            server_bits = int(value)
            if server_bits < _MIN_SERVER_WINDOW_BITS:
                return None
        elif name == "client_max_window_bits":
            # §7.1.2.2: optional value, a hint only; we inflate with the largest window, so the
            # response leaves this parameter out and the client may use any size.
            if value is not None and value not in _WINDOW_BITS:
                return None
        else:
            return None
    # §7.1.1.1: an accepted server_no_context_takeover must be echoed; §7.1.2.1: so must a
    # server_max_window_bits, with a value no larger than offered (we use it as is).
    # client_no_context_takeover is echoed too: it lets us free the inflater between messages.
    header = [DEFLATE]
    if server_nct:
        header.append("server_no_context_takeover")
    if client_nct:
        header.append("client_no_context_takeover")
    if server_bits is not None:
        header.append(f"server_max_window_bits={server_bits}")
    return DeflateAgreement(server_nct, client_nct, server_bits or 15, "; ".join(header))


def negotiate_deflate(fields: Iterable[str]) -> DeflateAgreement | None:
    """Pick the first acceptable permessage-deflate offer in the request's
    ``Sec-WebSocket-Extensions`` field values; None when there is none (or the fields are
    malformed: compression is optional, so the handshake goes on without it)."""
    try:
        offers = parse_offers(fields)
    except ValueError:
        return None
    for name, params in offers:
        if name == DEFLATE:
            agreement = _accept_deflate(params)
            if agreement is not None:
                return agreement
    return None
