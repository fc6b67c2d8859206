"""Section "Logging": the error log, the access log, syslog and StatsD."""

from __future__ import annotations

from typing import Any

from gunicorn.config import validators as v
from gunicorn.config.registry import Setting

SECTION = "Logging"

ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def _syslog_addr(value: Any) -> str:
    text = v.string(value)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("udp", "tcp", "unix") or not rest:
        raise ValueError(f"expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH, got {text!r}")
    return text


def _statsd_host(value: Any) -> str | None:
    if value is None:
        return None
    text = v.string(value)
    if text.startswith("unix://"):
        if len(text) == len("unix://"):
            raise ValueError("missing socket path after unix://")
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT or unix://PATH, got {text!r}")
    return text


def _header_name(value: Any) -> str:
    text = v.string(value).strip()
    if text and not all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in text):
        raise ValueError(f"{text!r} is not a header name")
    return text


# Framing and hop-by-hop fields (RFC 9110 §7.6.1), and those the server writes itself: an echo
# under one of these names would break the response or be dropped.
_NOT_ECHOED = frozenset({"connection", "content-length", "date", "keep-alive",
                         "proxy-connection", "server", "te", "trailer", "trailers",
                         "transfer-encoding", "upgrade"})


def _echo_header(value: Any) -> str:
    text = _header_name(value)
    if text.lower() in _NOT_ECHOED:
        raise ValueError(f"{text!r} is a header the server writes or removes itself")
    return text


SETTINGS = (
    Setting(
        name="accesslog",
        section=SECTION,
        cli=("--access-logfile",),
        meta="FILE",
        default=None,
        validator=v.optional_string,
        short_help="The access log file ('-' for stdout).",
        doc="Where to write the access log, one line per request; `-` means standard output. "
            "Unset: no access log (unless syslog is on).",
    ),
    Setting(
        name="disable_redirect_access_to_syslog",
        section=SECTION,
        cli=("--disable-redirect-access-to-syslog",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Do not send the access log to syslog.",
        doc="With `syslog` on, access log lines go to syslog too; this turns that off.",
    ),
    Setting(
        name="access_log_format",
        section=SECTION,
        cli=("--access-logformat",),
        meta="STRING",
        default=ACCESS_LOG_FORMAT,
        validator=v.string,
        short_help="The access log line format.",
        doc=(
            "The format of access log lines, with `%(name)s` fields: `h` remote address, `l` "
            "`-`, `u` user, `t` date, `r` request line, `m` method, `U` path, `q` query, `H` "
            "protocol, `s` status, `B`/`b` response length, `f` referer, `a` user agent, `T`/"
            "`D`/`M` duration in seconds, microseconds, milliseconds, `L` duration in decimal "
            "seconds, `p` process id, `request_id` the request's id (see `request_id_header`), "
            "`{header}i` a request header, `{header}o` a response header, `{variable}e` an "
            "environment variable. Not used with `log_format = json`, whose access lines have "
            "fixed fields instead."
        ),
    ),
    Setting(
        name="log_format",
        section=SECTION,
        cli=("--log-format",),
        meta="FORMAT",
        default="text",
        validator=v.choice("text", "json"),
        choices=("text", "json"),
        short_help="Write log lines as text or as one JSON object each.",
        doc=(
            "`text`: the classic lines (`access_log_format` for the access log). `json`: every "
            "error-log and access-log line, to files, standard streams and syslog, is one JSON "
            "object with stable fields (`timestamp`, `level`, `logger`, `message`, `pid`; "
            "access lines add `remote_addr`, `method`, `path`, `query`, `protocol`, `status`, "
            "`response_bytes`, `duration`, `user_agent`, `referer`, `request_id`), valid JSON "
            "whatever the request held (quotes, control bytes, invalid UTF-8). With a "
            "`logconfig_dict`/`logconfig_json`, the default `generic` formatter becomes the "
            "JSON one; a logconfig can also name `gunicorn.instrument.jsonlog.JsonFormatter` "
            "itself. What the application prints to the process's standard streams is not a "
            "log record and is written as it is (also with `capture_output`). See "
            "docs/logging.md."
        ),
    ),
    Setting(
        name="request_id_header",
        section=SECTION,
        cli=("--request-id-header",),
        meta="NAME",
        default="X-Request-ID",
        validator=_header_name,
        short_help="The request header a trusted proxy passes request ids in.",
        doc=(
            "Every request gets an id: the value of this header when the peer is in "
            "`forwarded_allow_ips` (a UNIX-socket peer always is) and the value looks like an "
            "id (1-200 visible ASCII characters, no `\"` or `\\`), otherwise 16 random hex "
            "characters. WSGI applications read it as `environ[\"gunicorn.request_id\"]`, "
            "ASGI ones as `scope[\"extensions\"][\"gunicorn.request_id\"][\"id\"]`; the "
            "access log has it as the `request_id` atom and JSON field. An empty value never "
            "takes an id from a request."
        ),
    ),
    Setting(
        name="request_id_response_header",
        section=SECTION,
        cli=("--request-id-response-header",),
        meta="NAME",
        default="",
        validator=_echo_header,
        short_help="Echo each request's id in this response header (off when empty).",
        doc=(
            "When set (for example to `X-Request-ID`), every application response carries "
            "the request's id (see `request_id_header`) in a header of this name, so a client "
            "or a proxy can quote it when reporting a problem. A response whose application "
            "already set that header keeps the application's value. Error pages the server "
            "writes itself (400, 500, ...) do not carry it. Covers HTTP/1.1 (WSGI and ASGI), "
            "uwsgi and WSGI over HTTP/2; not yet ASGI over HTTP/2. Off by default."
        ),
    ),
    Setting(
        name="errorlog",
        section=SECTION,
        cli=("--error-logfile", "--log-file"),
        meta="FILE",
        default="-",
        validator=v.string,
        short_help="The error log file ('-' for stderr).",
        doc="Where to write the error log; `-` means standard error.",
    ),
    Setting(
        name="loglevel",
        section=SECTION,
        cli=("--log-level",),
        meta="LEVEL",
        default="info",
        validator=v.choice("debug", "info", "warning", "error", "critical"),
        choices=("debug", "info", "warning", "error", "critical"),
        short_help="The error log level.",
        doc="The least severe messages written to the error log: `debug`, `info`, `warning`, "
            "`error` or `critical`.",
    ),
    Setting(
        name="capture_output",
        section=SECTION,
        cli=("--capture-output",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Send the workers' stdout and stderr to the error log.",
        doc="Redirect standard output and standard error of the server to the error log file, "
            "so prints from the application end up there.",
    ),
    Setting(
        name="logger_class",
        section=SECTION,
        cli=("--logger-class",),
        meta="STRING",
        default="gunicorn.glogging.Logger",
        validator=v.string,
        short_help="The logger class (dotted path).",
        doc=(
            "The class that writes the error and access logs, as a dotted path. The default "
            "`gunicorn.glogging.Logger` is replaced by `gunicorn.instrument.statsd.Statsd` when "
            "`statsd_host` is set."
        ),
    ),
    Setting(
        name="logconfig",
        section=SECTION,
        cli=("--log-config",),
        meta="FILE",
        default=None,
        validator=v.optional_string,
        short_help="A logging configuration file (fileConfig format).",
        doc="A file in the `logging.config.fileConfig` format that configures logging; it "
            "takes precedence over the other logging settings.",
    ),
    Setting(
        name="logconfig_dict",
        section=SECTION,
        default={},
        validator=v.any_dict,
        doc="A dictionary for `logging.config.dictConfig`, merged over the server's own logging "
            "configuration. Config file only.",
    ),
    Setting(
        name="logconfig_json",
        section=SECTION,
        cli=("--log-config-json",),
        meta="FILE",
        default=None,
        validator=v.optional_string,
        short_help="A JSON logging configuration file (dictConfig format).",
        doc="A JSON file holding a `logging.config.dictConfig` dictionary.",
    ),
    Setting(
        name="syslog_addr",
        section=SECTION,
        cli=("--log-syslog-to",),
        meta="SYSLOG_ADDR",
        default="udp://localhost:514",
        validator=_syslog_addr,
        short_help="The syslog address.",
        doc="Where syslog messages go: `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix://PATH` "
            "(for instance `unix:///dev/log`).",
    ),
    Setting(
        name="syslog",
        section=SECTION,
        cli=("--log-syslog",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Send the logs to syslog.",
        doc="Also send log messages to syslog at `syslog_addr`.",
    ),
    Setting(
        name="syslog_prefix",
        section=SECTION,
        cli=("--log-syslog-prefix",),
        meta="SYSLOG_PREFIX",
        default=None,
        validator=v.optional_string,
        short_help="The program name in syslog messages.",
        doc="The program name syslog messages are tagged with (`gunicorn.<prefix>`); the "
            "process name is used when unset.",
    ),
    Setting(
        name="syslog_facility",
        section=SECTION,
        cli=("--log-syslog-facility",),
        meta="SYSLOG_FACILITY",
        default="user",
        validator=v.string,
        short_help="The syslog facility.",
        doc="The syslog facility name, such as `user`, `daemon` or `local0`.",
    ),
    Setting(
        name="enable_stdio_inheritance",
        section=SECTION,
        cli=("-R", "--enable-stdio-inheritance"),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Keep stdout and stderr in daemon mode.",
        doc="In daemon mode, keep the inherited standard streams instead of sending them to "
            "/dev/null.",
    ),
    Setting(
        name="statsd_host",
        section=SECTION,
        cli=("--statsd-host",),
        meta="STATSD_ADDR",
        default=None,
        validator=_statsd_host,
        short_help="Send metrics to this StatsD server (HOST:PORT or unix://PATH).",
        doc="A StatsD server to send metrics to, as `HOST:PORT` (UDP) or `unix://PATH`. Setting "
            "it switches the default logger class to the StatsD one.",
    ),
    Setting(
        name="dogstatsd_tags",
        section=SECTION,
        cli=("--dogstatsd-tags",),
        meta="DOGSTATSD_TAGS",
        default="",
        validator=v.string,
        short_help="Tags added to every metric (DogStatsD).",
        doc="Comma-separated `key:value` tags added to every metric, in the DogStatsD format.",
    ),
    Setting(
        name="statsd_prefix",
        section=SECTION,
        cli=("--statsd-prefix",),
        meta="STATSD_PREFIX",
        default="",
        validator=v.string,
        short_help="A prefix for metric names.",
        doc="A prefix put before every metric name (a trailing dot is added when missing).",
    ),
    Setting(
        name="enable_backlog_metric",
        section=SECTION,
        cli=("--enable-backlog-metric",),
        action="store_true",
        default=False,
        validator=v.boolean,
        short_help="Report the listen queue length as a metric.",
        doc="Report how many connections wait in the listen queue as the `gunicorn.backlog` "
            "metric (Linux only).",
    ),
)
