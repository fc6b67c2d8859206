"""From a complete request head to a :class:`~gunicorn.http.events.Request`.

::

    request-line = method SP request-target SP HTTP-version      ; RFC 9112 §3
    request-target = origin-form      "/path?query"
                   / absolute-form    "http://host/path?query"   ; any method
                   / authority-form   "host:port"                 ; CONNECT only
                   / asterisk-form    "*"                         ; OPTIONS only

This module decides everything that needs the whole head: framing (Content-Length versus
Transfer-Encoding, the request-smuggling defences of RFC 9112 §6), persistence, Expect, Upgrade
and the trusted scheme.
"""

from __future__ import annotations

import ipaddress
import re

from gunicorn.http import errors
from gunicorn.http.events import Headers, ProxyInfo, Request
from gunicorn.http.fields import TCHAR
from gunicorn.http.options import ParserOptions

# The common case in one match; anything else goes through _diagnose_request_line for the
# precise error. The target excludes CTL and SP; bytes >= 0x80 are let through as gunicorn does
# (clients send raw UTF-8 paths) and decoded as latin-1.
REQUEST_LINE_RE = re.compile(rb"([%s]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])" % TCHAR)
_METHOD_RE = re.compile(rb"[%s]+" % TCHAR)
_CONVENTIONAL_METHOD_RE = re.compile(rb"[A-Z0-9!$%&'*+\-.^_`|~]{3,20}")
_TARGET_RE = re.compile(rb"[^\x00-\x20\x7f]+")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# RFC 3986 §3.2: authority = [ userinfo "@" ] host [ ":" port ]
#   host = IP-literal / IPv4address / reg-name; IP-literal = "[" ( IPv6address / IPvFuture ) "]"
#   reg-name = *( unreserved / pct-encoded / sub-delims ); port = *DIGIT
_REG_CHARS = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_AUTHORITY_RE = re.compile(
    rf"(?:(?P<userinfo>(?:[{_REG_CHARS}:]|{_PCT})*)@)?"
    rf"(?:\[(?P<literal>[^\]]*)\]|(?P<reg>(?:[{_REG_CHARS}]|{_PCT})*))"
    r"(?::[0-9]*)?")
_IPV_FUTURE_RE = re.compile(rf"v[0-9A-Fa-f]+\.[{_REG_CHARS}:]+")
_CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,18}")

# RFC 9112 §7: codings we recognise but do not decode; the body is passed through as is, and the
# connection is closed afterwards since we cannot vouch for the framing of what follows.
_PASSTHROUGH_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "compress", "x-compress"})
_SPECIAL = frozenset({"CONTENT-LENGTH", "TRANSFER-ENCODING", "CONNECTION", "EXPECT", "UPGRADE",
                      "HOST", "CONTENT-TYPE"})

RequestLine = tuple[str, str, str, str, str, tuple[int, int]]


def parse_request_line(line: bytes, options: ParserOptions) -> RequestLine:
    """Return ``(method, uri, path, query, fragment, version)``; raise InvalidRequestLine or a
    subclass."""
    match = REQUEST_LINE_RE.fullmatch(line)
    if match is None or not (options.permit_unconventional_http_method
                             or _CONVENTIONAL_METHOD_RE.fullmatch(match.group(1))):
        _diagnose_request_line(line, options)
        raise errors.InvalidRequestLine("malformed request line")  # unreachable in practice
    raw_method, raw_target, major, minor = match.groups()
    method = raw_method.decode("ascii")
    if options.casefold_http_method:
        method = method.upper()
    uri = raw_target.decode("latin-1")
    path, query, fragment = split_target(method, uri)
    version = (major[0] - 48, minor[0] - 48)
    if version != (1, 1) and version != (1, 0) and not options.permit_unconventional_http_version:
        raise errors.InvalidHTTPVersion(f"unsupported HTTP version {version[0]}.{version[1]}")
    return method, uri, path, query, fragment, version


def _diagnose_request_line(line: bytes, options: ParserOptions) -> None:
    parts = line.split(b" ")
    if len(parts) != 3:
        raise errors.InvalidRequestLine("request line is not three fields separated by one space")
    method, target, version = parts
    if _METHOD_RE.fullmatch(method) is None:
        raise errors.InvalidRequestMethod(f"method is not a token: {method[:32]!r}")
    if not options.permit_unconventional_http_method and \
            _CONVENTIONAL_METHOD_RE.fullmatch(method) is None:
        raise errors.InvalidRequestMethod(f"unconventional method {method[:32]!r}")
    if _TARGET_RE.fullmatch(target) is None:
        raise errors.InvalidRequestTarget("empty request target or control character in it")
    if _VERSION_RE.fullmatch(version) is None:
        raise errors.InvalidHTTPVersion(f"malformed HTTP version {version[:16]!r}")


def split_target(method: str, uri: str) -> tuple[str, str, str]:
    """Split a request target into (path, query, fragment), enforcing the form rules of
    RFC 9112 §3.2 on which methods may use which form."""
    if uri[0] == "/":
        rest = uri
    elif uri == "*":
        if method != "OPTIONS":
            raise errors.InvalidRequestTarget("asterisk-form is only allowed with OPTIONS")
        return "*", "", ""
    elif "://" in uri:
        scheme, _, after = uri.partition("://")
        if _SCHEME_RE.fullmatch(scheme) is None:
            raise errors.InvalidRequestTarget("malformed scheme in absolute-form target")
        cut = len(after)
        for sep in "/?#":
            index = after.find(sep)
            if index != -1 and index < cut:
                cut = index
        if cut == 0:
            raise errors.InvalidRequestTarget("absolute-form target without authority")
        _check_authority(scheme, after[:cut])
        rest = after[cut:]
    elif method == "CONNECT":
        return "", "", ""
    else:
        raise errors.InvalidRequestTarget("authority-form is only allowed with CONNECT")
    rest, _, fragment = rest.partition("#")
    path, _, query = rest.partition("?")
    return path, query, fragment


def _check_authority(scheme: str, authority: str) -> None:
    """Raise InvalidRequestTarget unless ``authority`` is valid for an absolute-form target."""
    match = _AUTHORITY_RE.fullmatch(authority)
    if match is None:
        raise errors.InvalidRequestTarget("malformed authority in absolute-form target")
    literal = match.group("literal")
    if literal is not None:
        if not _IPV_FUTURE_RE.fullmatch(literal):
            try:
                ipaddress.IPv6Address(literal)
            except ValueError:
                raise errors.InvalidRequestTarget("malformed IP literal in absolute-form "
                                                  "target") from None
    elif not match.group("reg"):
        # RFC 9110 §4.2.1: an http(s) URI with an empty host must be rejected as invalid.
        raise errors.InvalidRequestTarget("absolute-form target with an empty host")
    if match.group("userinfo") is not None and scheme.lower() in ("http", "https"):
        # RFC 9110 §4.2.4: userinfo from an untrusted source is to be treated as an error
        # (it is a classic phishing and confusion vector).
        raise errors.InvalidRequestTarget("userinfo in an http(s) absolute-form target")


def build_request(line: RequestLine, headers: Headers, options: ParserOptions, *,
                  forwarded_trusted: bool, is_ssl: bool, proxy: ProxyInfo | None) -> Request:
    """Apply the framing and policy rules to a parsed head."""
    method, uri, path, query, fragment, version = line
    content_length: int | None = None
    codings: list[str] | None = None
    keep_alive: bool | None = None
    conn_upgrade = False
    expect_continue = False
    upgrade: str | None = None
    seen_host = seen_type = False
    scheme: str | None = None
    scheme_headers = options.secure_scheme_headers if forwarded_trusted else None
    for name, value in headers:
        if name in _SPECIAL:
            if name == "CONTENT-LENGTH":
                if content_length is not None:
                    # RFC 9112 §6.3: several lengths (repeated or "1,1") mean ambiguous framing.
                    raise errors.InvalidContentLength("more than one Content-Length")
                if _CONTENT_LENGTH_RE.fullmatch(value) is None:
                    raise errors.InvalidContentLength(f"Content-Length is not digits: {value[:32]!r}")
                content_length = int(value)
            elif name == "TRANSFER-ENCODING":
                if codings is None:
                    codings = []
                codings.extend(c.strip().lower() for c in value.split(","))
            elif name == "CONNECTION":
                for token in value.split(","):
                    token = token.strip().lower()
                    if token == "upgrade":
                        conn_upgrade = True
                    elif keep_alive is None:
                        # The first close / keep-alive token wins, as in gunicorn.
                        if token == "close":
                            keep_alive = False
                        elif token == "keep-alive":
                            keep_alive = True
            elif name == "EXPECT":
                # RFC 9110 §10.1.1: Expect is an HTTP/1.1 feature; 1.0 senders are ignored.
                if version >= (1, 1):
                    if value.lower() != "100-continue":
                        raise errors.ExpectationFailed(f"unsupported expectation {value[:32]!r}")
                    expect_continue = True
            elif name == "UPGRADE":
                if upgrade is None:
                    upgrade = value
            elif name == "HOST":
                if seen_host:
                    raise errors.DuplicateHeader("more than one Host header")
                seen_host = True
            elif seen_type:
                raise errors.DuplicateHeader("more than one Content-Type header")
            else:
                seen_type = True
        elif scheme_headers and name in scheme_headers:
            said = "https" if value.lower() == scheme_headers[name] else "http"
            if scheme is not None and scheme != said:
                raise errors.InvalidSchemeHeaders("trusted scheme headers disagree")
            scheme = said
    chunked = False
    must_close = False
    if codings is not None:
        chunked, must_close = _transfer_codings(codings, version)
        if content_length is not None:
            # RFC 9112 §6.1: a sender must not send both; treating it as an error closes the
            # classic CL.TE / TE.CL smuggling hole.
            raise errors.InvalidTransferEncoding("both Content-Length and Transfer-Encoding")
    if keep_alive is None:
        keep_alive = version >= (1, 1)
    # RFC 9110 §7.8: Upgrade is only meaningful on 1.1 and when named in Connection.
    if not conn_upgrade or version < (1, 1):
        upgrade = None
    if scheme is None:
        scheme = "https" if is_ssl else "http"
    return Request(method, uri, path, query, fragment, version, headers, scheme,
                   content_length, chunked, keep_alive, expect_continue, proxy, must_close,
                   upgrade)


def _transfer_codings(codings: list[str], version: tuple[int, int]) -> tuple[bool, bool]:
    """Return (chunked, must_close) for a Transfer-Encoding list, or raise."""
    if version < (1, 1):
        # RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing would be faulty.
        raise errors.InvalidTransferEncoding("Transfer-Encoding on an HTTP/1.0 request")
    chunked = must_close = False
    for coding in codings:
        if not coding:
            continue  # RFC 9110 §5.6.1: empty list elements are ignored
        if coding == "chunked":
            if chunked:
                raise errors.InvalidTransferEncoding("chunked applied twice")
            chunked = True
        elif chunked:
            raise errors.InvalidTransferEncoding(f"{coding!r} after chunked")
        elif coding in _PASSTHROUGH_CODINGS:
            must_close = True
        elif coding != "identity":
            raise errors.UnsupportedTransferCoding(f"unsupported transfer coding {coding[:32]!r}")
    if not chunked and (must_close or not any(codings)):
        # RFC 9112 §6.3 item 4: without a final chunked the body length cannot be determined.
        raise errors.InvalidTransferEncoding("Transfer-Encoding does not end with chunked")
    return chunked, must_close
