"""Section "Server Mechanics", request side: proxies, trusted headers and parser leniency."""

from __future__ import annotations

from collections.abc import Mapping

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Server Mechanics"


def _forwarded_from_env(env: Mapping[str, str]) -> str | None:
    return env.get("FORWARDED_ALLOW_IPS") or None


_proxy_protocol = v.choice(
    "off", "v1", "v2", "auto",
    aliases={"true": "auto", "1": "auto", "yes": "auto", "on": "auto",
             "false": "off", "0": "off", "no": "off", "none": "off"},
)

SETTINGS = (
    Setting(
        name="secure_scheme_headers",
        section=SECTION,
        default={"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https",
                 "X-FORWARDED-SSL": "on"},
        validator=v.string_dict,
        doc=(
            "Headers a trusted front-end proxy sets to say the client used HTTPS, mapped to the "
            "value that means so. When a request from an address in `forwarded_allow_ips` "
            "carries one of them with that value, `wsgi.url_scheme` becomes `https`. Not used "
            "with `protocol = uwsgi`: there the front end's own variables (`UWSGI_SCHEME`, "
            "`HTTPS`, `REQUEST_SCHEME`) decide, since nginx passes the client's headers on "
            "(docs/uwsgi.md). Config file only."
        ),
    ),
    Setting(
        name="forwarded_allow_ips",
        section=SECTION,
        cli=("--forwarded-allow-ips",),
        meta="STRING",
        default="127.0.0.1,::1",
        default_env=_forwarded_from_env,
        default_doc="'127.0.0.1,::1', or $FORWARDED_ALLOW_IPS when set",
        validator=v.ip_list,
        short_help="Front-end addresses trusted to set the secure scheme headers.",
        doc=(
            "The peers trusted to set `secure_scheme_headers` and `forwarder_headers`: a "
            "comma-separated list (or a Python list) of IP addresses and CIDR networks, or `*` "
            "to trust every peer, which is only safe when nothing else can reach the server. "
            "Unix-socket peers are always trusted. `$FORWARDED_ALLOW_IPS` replaces the default."
        ),
    ),
    Setting(
        name="proxy_protocol",
        section=SECTION,
        cli=("--proxy-protocol",),
        nargs="?",
        const="auto",
        meta="MODE",
        default="off",
        validator=_proxy_protocol,
        choices=("off", "v1", "v2", "auto"),
        short_help="Accept the PROXY protocol: off, v1, v2 or auto.",
        doc=(
            "Read a PROXY protocol header (as sent by HAProxy, AWS NLB and others) at the start "
            "of each connection from an address in `proxy_allow_ips`, and use the client "
            "address it carries. `v1` is the text form, `v2` the binary form, `auto` accepts "
            "either, `off` disables it. The bare flag and true-like values mean `auto`."
        ),
    ),
    Setting(
        name="proxy_allow_ips",
        section=SECTION,
        cli=("--proxy-allow-from",),
        meta="STRING",
        default="127.0.0.1,::1",
        validator=v.ip_list,
        short_help="Addresses allowed to send a PROXY protocol header.",
        doc=(
            "The peers allowed to send a PROXY protocol header: IP addresses and CIDR networks, "
            "comma-separated, or `*` for every peer."
        ),
    ),
    Setting(
        name="protocol",
        section=SECTION,
        cli=("--protocol",),
        meta="STRING",
        default="http",
        validator=v.choice("http", "uwsgi"),
        choices=("http", "uwsgi"),
        short_help="The wire protocol on the listening sockets: http or uwsgi.",
        doc=(
            "The protocol spoken on the listening sockets: `http`, or `uwsgi` to sit behind a "
            "front end (such as nginx with `uwsgi_pass`) that speaks the uWSGI binary protocol."
        ),
    ),
    Setting(
        name="uwsgi_allow_ips",
        section=SECTION,
        cli=("--uwsgi-allow-from",),
        meta="STRING",
        default="127.0.0.1,::1",
        validator=v.ip_list,
        short_help="Addresses allowed to speak the uWSGI protocol.",
        doc=(
            "With `protocol = uwsgi`, the peers allowed to connect: IP addresses and CIDR "
            "networks, comma-separated, or `*` for every peer."
        ),
    ),
    Setting(
        name="permit_obsolete_folding",
        section=SECTION,
        cli=("--permit-obsolete-folding",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Accept header values folded over several lines.",
        doc=(
            "Accept obsolete line folding in header values (a continuation line starting with "
            "a space or tab), which RFC 9112 section 5.2 deprecates; folded values are joined "
            "with a space. Off: such requests are refused with 400."
        ),
    ),
    Setting(
        name="strip_header_spaces",
        section=SECTION,
        cli=("--strip-header-spaces",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Strip spaces before the colon of header names (unsafe, deprecated).",
        doc=(
            "Accept and strip whitespace between a header name and its colon. RFC 9112 section "
            "5.1 forbids it because proxies disagree on such headers (request smuggling). "
            "Deprecated; kept for compatibility."
        ),
    ),
    Setting(
        name="permit_unconventional_http_method",
        section=SECTION,
        cli=("--permit-unconventional-http-method",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Accept methods outside the usual 3-20 upper-case letters.",
        doc=(
            "Accept request methods that are valid tokens but unusual: lower case, shorter "
            "than 3 or longer than 20 characters, or containing `#`. Off by default because "
            "such methods are mostly seen in attacks."
        ),
    ),
    Setting(
        name="permit_unconventional_http_version",
        section=SECTION,
        cli=("--permit-unconventional-http-version",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Accept HTTP versions other than 1.0 and 1.1.",
        doc=(
            "Accept request lines whose version is well-formed but not HTTP/1.0 or HTTP/1.1. "
            "Off: they are refused."
        ),
    ),
    Setting(
        name="casefold_http_method",
        section=SECTION,
        cli=("--casefold-http-method",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Upper-case request methods before handing them to the app.",
        doc=(
            "Upper-case the request method before the application sees it. Only useful "
            "together with `permit_unconventional_http_method`."
        ),
    ),
    Setting(
        name="forwarder_headers",
        section=SECTION,
        cli=("--forwarder-headers",),
        meta="STRING",
        default="SCRIPT_NAME,PATH_INFO",
        validator=v.upper_list,
        short_help="Environ keys a trusted proxy may set through headers.",
        doc=(
            "WSGI environ variables a peer listed in `forwarded_allow_ips` may set through "
            "request headers of the same name (with `-` for `_`), comma-separated. Names here "
            "are taken even when they contain underscores, bypassing `header_map`."
        ),
    ),
    Setting(
        name="header_map",
        section=SECTION,
        cli=("--header-map",),
        meta="STRING",
        default="drop",
        validator=v.choice("drop", "refuse", "dangerous"),
        choices=("drop", "refuse", "dangerous"),
        short_help="Headers with underscores: drop, refuse or dangerous.",
        doc=(
            "What to do with header names containing `_`, which would map to the same environ "
            "key as the `-` spelling and could let a client spoof a header a proxy set: `drop` "
            "ignores them, `refuse` rejects the request with 400, `dangerous` passes them on."
        ),
    ),
    Setting(
        name="root_path",
        section=SECTION,
        cli=("--root-path",),
        meta="STRING",
        default="",
        validator=v.string,
        short_help="The ASGI root_path (mount point) of the application.",
        doc=(
            "The path the application is mounted under, given to ASGI applications as the "
            "`root_path` scope key (like `SCRIPT_NAME` in WSGI)."
        ),
    ),
)
