"""The parser's view of the configuration, built once per worker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

HEADER_MAP_MODES = ("drop", "refuse", "dangerous")
# What limit_request_field_size = 0 stands for (gunicorn's default maximum).
DEFAULT_FIELD_SIZE = 8190
PROXY_PROTOCOL_MODES = ("off", "v1", "v2", "auto")

_DEFAULT_SECURE_SCHEME_HEADERS = {
    "X-FORWARDED-PROTOCOL": "ssl",
    "X-FORWARDED-PROTO": "https",
    "X-FORWARDED-SSL": "on",
}


def _frozen_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    # Names are compared with the upper-cased names the parser produces; values case-insensitively.
    pairs = {} if value is None else value
    return MappingProxyType({str(k).strip().upper(): str(v).strip().lower() for k, v in pairs.items()})


def _name_set(value: Iterable[str] | str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(n.strip().upper() for n in value if n.strip())


def _proxy_mode(value: Any) -> str:
    # gunicorn's validator maps true/1 to "auto"; a bare bool can still reach us from Python config.
    if value is True:
        return "auto"
    if value is None or value is False:
        return "off"
    mode = str(value).strip().lower()
    if mode in ("true", "1", "yes", "on"):
        return "auto"
    if mode in ("false", "0", "no", "none", ""):
        return "off"
    if mode not in PROXY_PROTOCOL_MODES:
        raise ValueError(f"proxy_protocol must be one of {PROXY_PROTOCOL_MODES}, not {value!r}")
    return mode


@dataclass(frozen=True, slots=True)
class ParserOptions:
    """Limits and leniency switches of :class:`~gunicorn.http.parser.RequestParser`.

    Defaults are gunicorn's, and so is how the limits count:

    * ``limit_request_line``: the request line without its CRLF; a line of exactly the limit is
      accepted. 0 means no limit (as gunicorn documents; the config caps values at 8190).
    * ``limit_request_field_size``: the whole field line *including* its CRLF, so with N a line
      of N-2 characters is the longest accepted (:attr:`field_line_limit`). 0 means the
      default, 8190: an unlimited header line would be a memory exhaustion vector.
    * ``limit_request_fields`` is used as given (the config maps 0 to its 32768 ceiling).

    ``secure_scheme_headers`` maps UPPER-CASE header names to the lower-case value meaning
    https; ``forwarder_headers`` holds UPPER-CASE names kept even with an underscore when the peer
    is trusted.
    """

    limit_request_line: int = 4094
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    permit_obsolete_folding: bool = False
    strip_header_spaces: bool = False
    permit_unconventional_http_method: bool = False
    permit_unconventional_http_version: bool = False
    casefold_http_method: bool = False
    header_map: str = "drop"
    forwarder_headers: frozenset[str] = frozenset({"SCRIPT_NAME", "PATH_INFO"})
    secure_scheme_headers: Mapping[str, str] = field(
        default_factory=lambda: _frozen_mapping(_DEFAULT_SECURE_SCHEME_HEADERS))
    proxy_protocol: str = "off"

    def __post_init__(self) -> None:
        if self.header_map not in HEADER_MAP_MODES:
            raise ValueError(f"header_map must be one of {HEADER_MAP_MODES}, not {self.header_map!r}")
        if self.proxy_protocol not in PROXY_PROTOCOL_MODES:
            raise ValueError(f"proxy_protocol must be one of {PROXY_PROTOCOL_MODES}")
        for name in ("limit_request_line", "limit_request_fields", "limit_request_field_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.limit_request_field_size == 0:
            object.__setattr__(self, "limit_request_field_size", DEFAULT_FIELD_SIZE)

    @property
    def field_line_limit(self) -> int:
        """The longest field line accepted, not counting its CRLF (gunicorn counts the CRLF
        against ``limit_request_field_size``)."""
        return self.limit_request_field_size - 2

    @classmethod
    def build(cls, *, secure_scheme_headers: Mapping[str, str] | None = None,
              forwarder_headers: Iterable[str] | str | None = None, **kwargs: Any) -> ParserOptions:
        """Like the constructor, but normalises the two collections (case, str -> set)."""
        if secure_scheme_headers is not None:
            kwargs["secure_scheme_headers"] = _frozen_mapping(secure_scheme_headers)
        if forwarder_headers is not None:
            kwargs["forwarder_headers"] = _name_set(forwarder_headers)
        if "proxy_protocol" in kwargs:
            kwargs["proxy_protocol"] = _proxy_mode(kwargs["proxy_protocol"])
        return cls(**kwargs)

    @classmethod
    def from_config(cls, cfg: CoreSettings) -> ParserOptions:
        """The options gunicorn's settings of the same names give."""
        return cls.build(
            limit_request_line=cfg.limit_request_line,
            limit_request_fields=cfg.limit_request_fields,
            limit_request_field_size=cfg.limit_request_field_size,
            permit_obsolete_folding=cfg.permit_obsolete_folding,
            strip_header_spaces=cfg.strip_header_spaces,
            permit_unconventional_http_method=cfg.permit_unconventional_http_method,
            permit_unconventional_http_version=cfg.permit_unconventional_http_version,
            casefold_http_method=cfg.casefold_http_method,
            header_map=cfg.header_map,
            forwarder_headers=cfg.forwarder_headers,
            secure_scheme_headers=cfg.secure_scheme_headers,
            proxy_protocol=cfg.proxy_protocol,
        )
