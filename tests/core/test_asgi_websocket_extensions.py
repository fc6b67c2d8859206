"""Sec-WebSocket-Extensions parsing and permessage-deflate negotiation (RFC 6455 §9.1,
RFC 7692 §7.1), strings only."""

from __future__ import annotations

import pytest
from gunicorn.asgi.ws_extensions import DeflateAgreement, negotiate_deflate, parse_offers


def test_parse_offers_grammar():
    fields = ['permessage-deflate; client_max_window_bits, x-foo ; a="1\\0" ;B=1',
              " , Permessage-Deflate;server_no_context_takeover,,"]
    assert parse_offers(fields) == [
        ("permessage-deflate", (("client_max_window_bits", None),)),
        ("x-foo", (("a", "10"), ("b", "1"))),
        ("permessage-deflate", (("server_no_context_takeover", None),)),
    ]


@pytest.mark.parametrize("field", [
    "permessage-deflate; ", "permessage-deflate;=1", "permessage-deflate x",
    'permessage-deflate; a="unterminated', "permessage-deflate; a=", "permessage-deflate; a=b c",
    "@", 'permessage-deflate; a="two words"',
], ids=["dangling-semicolon", "no-name", "junk", "open-quote", "empty-value", "two-tokens",
        "not-a-token", "quoted-non-token"])
def test_parse_offers_rejects_malformed_fields(field):
    with pytest.raises(ValueError):
        parse_offers([field])
    # A malformed field declines compression; the handshake itself goes on.
    assert negotiate_deflate([field]) is None


@pytest.mark.parametrize("offer,header,server_nct,client_nct,bits", [
    ("permessage-deflate", "permessage-deflate", False, False, 15),
    ("permessage-deflate; server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover", True, False, 15),
    ("permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover", False, True, 15),
    ("permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10", False, False, 10),
    ('permessage-deflate; server_max_window_bits="12"',
     "permessage-deflate; server_max_window_bits=12", False, False, 12),
    ("permessage-deflate; server_max_window_bits=9",
     "permessage-deflate; server_max_window_bits=9", False, False, 9),
    # client_max_window_bits, with or without a value, is a hint: the server inflates with the
    # largest window and leaves it out of its answer (the client may use any size).
    ("permessage-deflate; client_max_window_bits", "permessage-deflate", False, False, 15),
    ("permessage-deflate; client_max_window_bits=8", "permessage-deflate", False, False, 15),
    ("PERMESSAGE-DEFLATE; Server_No_Context_Takeover; CLIENT_MAX_WINDOW_BITS",
     "permessage-deflate; server_no_context_takeover", True, False, 15),
    ("permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
     "server_max_window_bits=11; client_max_window_bits=11",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=11", True, True, 11),
], ids=["plain", "server-nct", "client-nct", "server-bits", "server-bits-quoted",
        "server-bits-9", "client-bits", "client-bits-value", "case", "everything"])
def test_accepted_offers(offer, header, server_nct, client_nct, bits):
    assert negotiate_deflate([offer]) == DeflateAgreement(server_nct, client_nct, bits, header)


@pytest.mark.parametrize("offer", [
    "permessage-deflate; server_max_window_bits=8",      # zlib cannot compress with 256 bytes
    "permessage-deflate; server_max_window_bits",        # the value is mandatory
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=010",    # no leading zeros
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=abc",
    "permessage-deflate; server_no_context_takeover=1",  # takes no value
    'permessage-deflate; client_no_context_takeover=""x',
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; mux",
    "permessage-deflate; x-unknown=1",
], ids=["server-bits-8", "server-bits-no-value", "server-bits-16", "server-bits-7",
        "server-bits-leading-zero", "client-bits-16", "client-bits-word", "server-nct-value",
        "client-nct-junk", "client-nct-value", "duplicate-server-nct", "duplicate-client-bits",
        "unknown-param", "unknown-param-value"])
def test_declined_offers(offer):
    assert negotiate_deflate([offer]) is None


def test_first_acceptable_of_several_offers_wins():
    # The first offer is declined (window 8), the second accepted, the third never considered.
    fields = ["x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8",
              "permessage-deflate; client_no_context_takeover, permessage-deflate"]
    agreement = negotiate_deflate(fields)
    assert agreement is not None
    assert agreement.header == "permessage-deflate; client_no_context_takeover"
    assert negotiate_deflate(["permessage-deflate", "permessage-deflate; "
                              "server_no_context_takeover"]).header == "permessage-deflate"


def test_no_offer_or_other_extensions_only():
    assert negotiate_deflate([]) is None
    assert negotiate_deflate(["x-webkit-deflate-frame; no_context_takeover"]) is None
    assert negotiate_deflate(["permessage-deflate-2"]) is None
