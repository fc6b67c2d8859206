"""Section "Security": limits on the size of request heads."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Security"

# The largest request line and header field we are willing to buffer, whatever the setting.
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 32768
DEFAULT_FIELD_SIZE = 8190

SETTINGS = (
    Setting(
        name="limit_request_line",
        section=SECTION,
        cli=("--limit-request-line",),
        meta="INT",
        default=4094,
        validator=v.capped_int(MAX_REQUEST_LINE),
        short_help="The maximum size of the request line in bytes (0: unlimited).",
        doc=(
            "The longest request line (method, target and version, not counting its CRLF) "
            "accepted, in bytes: a line of exactly this length is accepted, one byte more is "
            "answered 414 before the application sees it. 0 means no limit, as in gunicorn "
            "(the whole line is then buffered, however long: prefer a number). Values above "
            f"{MAX_REQUEST_LINE} are lowered to {MAX_REQUEST_LINE} rather than refused."
        ),
    ),
    Setting(
        name="limit_request_fields",
        section=SECTION,
        cli=("--limit-request-fields",),
        meta="INT",
        default=100,
        validator=v.capped_int(MAX_HEADER_FIELDS, zero_means=MAX_HEADER_FIELDS),
        short_help="The maximum number of header fields in a request.",
        doc=(
            "The most header fields one request may carry. 0 and values above "
            f"{MAX_HEADER_FIELDS} mean {MAX_HEADER_FIELDS}, the hard ceiling."
        ),
    ),
    Setting(
        name="limit_request_field_size",
        section=SECTION,
        cli=("--limit-request-field_size", "--limit-request-field-size"),
        meta="INT",
        default=8190,
        validator=v.zero_means(DEFAULT_FIELD_SIZE),
        short_help=f"The maximum size of one header field line in bytes, CRLF included (0: "
                   f"{DEFAULT_FIELD_SIZE}).",
        doc=(
            "The longest header field line accepted, in bytes, counting the whole line: name, "
            "colon, value and the CRLF that ends it (as gunicorn counts). With N, a field line "
            "of N-2 characters plus its CRLF is accepted and one of N-1 is answered 431. 0 "
            f"means the default maximum, {DEFAULT_FIELD_SIZE}, not unlimited: an unbounded "
            "header line would let one client exhaust the worker's memory. The same limit "
            "applies to chunked trailers and to uwsgi variables."
        ),
    ),
)
