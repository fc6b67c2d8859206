"""Section "SSL": serving HTTPS directly."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "SSL"

SETTINGS = (
    Setting(
        name="keyfile",
        section=SECTION,
        cli=("--keyfile",),
        meta="FILE",
        default=None,
        validator=v.existing_file,
        short_help="The TLS private key file.",
        doc="The private key file, in PEM format. Setting it (or `certfile`) turns TLS on.",
    ),
    Setting(
        name="certfile",
        section=SECTION,
        cli=("--certfile",),
        meta="FILE",
        default=None,
        validator=v.existing_file,
        short_help="The TLS certificate file.",
        doc="The certificate chain file, in PEM format; it may also hold the private key.",
    ),
    Setting(
        name="ssl_version",
        section=SECTION,
        cli=("--ssl-version",),
        default=2,
        default_doc="PROTOCOL_TLS (2)",
        validator=v.ssl_constant("PROTOCOL_"),
        short_help="Deprecated and ignored.",
        doc=(
            "Deprecated and ignored: the TLS versions are negotiated by the ssl module's "
            "defaults. To restrict them, return a customised context from the `ssl_context` hook."
        ),
    ),
    Setting(
        name="cert_reqs",
        section=SECTION,
        cli=("--cert-reqs",),
        default=0,
        default_doc="CERT_NONE (0)",
        validator=v.ssl_constant("CERT_"),
        short_help="Whether a client certificate is required (0, 1, 2).",
        doc=(
            "Whether clients must present a certificate: 0 (`CERT_NONE`), 1 "
            "(`CERT_OPTIONAL`) or 2 (`CERT_REQUIRED`). Names are accepted too. Client "
            "certificates are checked against `ca_certs`."
        ),
    ),
    Setting(
        name="ca_certs",
        section=SECTION,
        cli=("--ca-certs",),
        meta="FILE",
        default=None,
        validator=v.existing_file,
        short_help="CA certificates to check client certificates against.",
        doc="A PEM file of certificate authorities used to verify client certificates.",
    ),
    Setting(
        name="suppress_ragged_eofs",
        section=SECTION,
        cli=("--suppress-ragged-eofs",),
        action="store_true",
        default=True,
        validator=v.boolean,
        short_help="Treat a TLS connection closed without close_notify as a normal EOF.",
        doc=(
            "Treat a client that closes the connection without a TLS close_notify as an "
            "ordinary end of stream instead of an error. On by default."
        ),
    ),
    Setting(
        name="do_handshake_on_connect",
        section=SECTION,
        cli=("--do-handshake-on-connect",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Do the TLS handshake as soon as a connection is accepted.",
        doc=(
            "Perform the TLS handshake when the connection is accepted rather than on the "
            "first read."
        ),
    ),
    Setting(
        name="ciphers",
        section=SECTION,
        cli=("--ciphers",),
        default=None,
        validator=v.optional_string,
        short_help="The allowed TLS ciphers (OpenSSL cipher list).",
        doc=(
            "The ciphers offered, in the OpenSSL cipher-list format (for instance "
            "`ECDHE+AESGCM`). Unset: the ssl module's defaults."
        ),
    ),
)
