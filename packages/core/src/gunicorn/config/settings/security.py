"""Section "Security": limits on the size of request heads."""

from __future__ import annotations

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Security"

# The largest request line and header field we are willing to buffer, whatever the setting.
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 32768

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
            "The longest request line (method, target and version) accepted, in bytes; longer "
            "lines are refused before the application sees them, which guards against oversized "
            f"requests. 0 means unlimited. Values above {MAX_REQUEST_LINE} are lowered to "
            f"{MAX_REQUEST_LINE} rather than refused."
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
        validator=v.positive_int(),
        short_help="The maximum size of one header field in bytes (0: unlimited).",
        doc=(
            "The longest header field (name, colon and value) accepted, in bytes. 0 means no "
            "limit on a single field; the number of fields is still bounded by "
            "`limit_request_fields`."
        ),
    ),
)
