"""Every validator kind, with good and bad values, through Config.set (no processes)."""

from __future__ import annotations

import os

import pytest
from gunicorn.config import Config
from gunicorn.config.address import BindAddress, parse_address
from gunicorn.config.settings import core_registry
from gunicorn.errors import ConfigError
from harness import APPS


@pytest.fixture
def cfg() -> Config:
    return Config(core_registry(), env={})


GOOD = [
    ("workers", "3", 3),
    ("workers", 5, 5),
    ("timeout", "0", 0),
    ("backlog", " 64 ", 64),
    ("reload", "yes", True),
    ("reload", "OFF", False),
    ("reload", "1", True),
    ("reload", True, True),
    ("preload_app", "on", True),
    ("loglevel", "DEBUG", "debug"),
    ("header_map", "refuse", "refuse"),
    ("header_map", "dangerous", "dangerous"),
    ("reload_engine", "poll", "poll"),
    ("protocol", "uwsgi", "uwsgi"),
    ("proxy_protocol", "v2", "v2"),
    ("proxy_protocol", "true", "auto"),
    ("proxy_protocol", "1", "auto"),
    ("proxy_protocol", True, "auto"),
    ("proxy_protocol", "false", "off"),
    ("umask", "022", 0o22),
    ("umask", "0o027", 0o27),
    ("umask", 18, 18),
    ("umask", "18", 18),
    ("forwarded_allow_ips", "10.0.0.0/8, ::1", ["10.0.0.0/8", "::1"]),
    ("forwarded_allow_ips", ["*"], ["*"]),
    ("proxy_allow_ips", "192.168.1.1", ["192.168.1.1"]),
    ("forwarder_headers", "script_name,PATH_INFO", ["SCRIPT_NAME", "PATH_INFO"]),
    ("secure_scheme_headers", {"x-proto": "https"}, {"X-PROTO": "https"}),
    ("raw_env", ["A=1", "B=x=y"], ["A=1", "B=x=y"]),
    ("bind", "unix:/tmp/s.sock", ["unix:/tmp/s.sock"]),
    ("bind", ["[::1]:8080", "fd://3"], ["[::1]:8080", "fd://3"]),
    ("limit_request_line", "0", 0),
    ("limit_request_line", 20000, 8190),
    ("limit_request_fields", 0, 32768),
    ("limit_request_fields", 50000, 32768),
    ("limit_request_field_size", 0, 8190),  # 0 is the default maximum, not unlimited
    ("user", "0", 0),
    ("user", "root", "root"),
    ("cert_reqs", "CERT_REQUIRED", 2),
    ("cert_reqs", "1", 1),
    ("statsd_host", "localhost:8125", "localhost:8125"),
    ("statsd_host", "unix:///run/statsd.sock", "unix:///run/statsd.sock"),
    ("syslog_addr", "unix:///dev/log", "unix:///dev/log"),
    ("sendfile", "no", False),
    ("asgi_lifespan", "on", "on"),
    ("proc_name", None, None),
]

BAD = [
    ("workers", "lots", "integer"),
    ("workers", "0", ">= 1"),
    ("workers", True, "integer"),
    ("workers", None, "integer"),
    ("timeout", "-1", ">= 0"),
    ("threads", 1.5, "integer"),
    ("reload", "maybe", "boolean"),
    ("loglevel", "verbose", "one of"),
    ("header_map", "keep", "one of"),
    ("proxy_protocol", "v3", "one of"),
    ("umask", "0999", "octal"),
    ("umask", "0o1777", "0o777"),
    ("forwarded_allow_ips", "1.2.3.4,bogus", "bogus"),
    ("proxy_allow_ips", "300.1.1.1", "300.1.1.1"),
    ("secure_scheme_headers", "X-PROTO=https", "dict"),
    ("raw_env", ["NOEQUALS"], "KEY=VALUE"),
    ("bind", "unix:", "socket path"),
    ("bind", "host:http", "not a number"),
    ("bind", "host:70000", "out of range"),
    ("bind", "[::1", "unterminated"),
    ("bind", "fd://x", "descriptor"),
    ("bind", "http://example.com", "HOST:PORT"),
    ("keyfile", "/no/such/key.pem", "does not exist"),
    ("certfile", "/no/such/cert.pem", "does not exist"),
    ("ca_certs", "/no/such/ca.pem", "does not exist"),
    ("chdir", "/no/such/dir", "does not exist"),
    ("cert_reqs", "CERT_SOMETIMES", "unknown"),
    ("statsd_host", "localhost", "HOST:PORT"),
    ("syslog_addr", "localhost:514", "udp://"),
    ("on_starting", "os.no_such_function", "no attribute"),
    ("on_starting", "no_such_module_xyz.hook", "cannot import"),
    ("on_starting", 42, "callable"),
]


@pytest.mark.parametrize(("name", "raw", "expected"), GOOD,
                         ids=[f"{n}={r!r}" for n, r, _ in GOOD])
def test_good_value(cfg: Config, name: str, raw: object, expected: object) -> None:
    cfg.set(name, raw)
    assert cfg.get(name) == expected
    assert cfg.is_set(name)


@pytest.mark.parametrize(("name", "raw", "fragment"), BAD,
                         ids=[f"{n}={r!r}" for n, r, _ in BAD])
def test_bad_value_names_the_setting(cfg: Config, name: str, raw: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.set(name, raw)
    assert info.value.setting == name
    assert fragment in info.value.message
    assert str(info.value).startswith(f"{name}: ")
    assert "\n" not in str(info.value)


def test_existing_tls_files_are_accepted(cfg: Config, tmp_path: os.PathLike[str]) -> None:
    cert = os.path.join(tmp_path, "cert.pem")
    open(cert, "w").close()
    cfg.set("certfile", cert)
    assert cfg.is_ssl
    assert cfg.ssl_options["certfile"] == cert
    assert cfg.ssl_options["cert_reqs"] == 0


@pytest.mark.parametrize(("text", "expected", "shown"), [
    ("127.0.0.1:8000", BindAddress("tcp", host="127.0.0.1", port=8000), "127.0.0.1:8000"),
    ("localhost", BindAddress("tcp", host="localhost", port=8000), "localhost:8000"),
    (":9000", BindAddress("tcp", host="0.0.0.0", port=9000), "0.0.0.0:9000"),
    ("[::1]:8080", BindAddress("tcp", host="::1", port=8080), "[::1]:8080"),
    ("[::]", BindAddress("tcp", host="::", port=8000), "[::]:8000"),
    ("tcp://10.0.0.1:81", BindAddress("tcp", host="10.0.0.1", port=81), "10.0.0.1:81"),
    ("unix:/run/g.sock", BindAddress("unix", path="/run/g.sock"), "unix:/run/g.sock"),
    ("unix:///run/g.sock", BindAddress("unix", path="/run/g.sock"), "unix:/run/g.sock"),
    ("fd://3", BindAddress("fd", fd=3), "fd://3"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_parse_address(text: str, expected: BindAddress, shown: str) -> None:
    assert parse_address(text) == expected
    assert str(parse_address(text)) == shown


def test_env_derived_defaults() -> None:
    cfg = Config(core_registry(), env={"PORT": "5000", "WEB_CONCURRENCY": "6",
                                       "FORWARDED_ALLOW_IPS": "10.1.0.0/16", "SENDFILE": "0"})
    assert cfg.bind == ["0.0.0.0:5000"]
    assert [str(a) for a in cfg.address] == ["0.0.0.0:5000"]
    assert cfg.workers == 6
    assert cfg.forwarded_allow_ips == ["10.1.0.0/16"]
    assert cfg.sendfile is False
    assert not cfg.is_set("workers")


def test_bad_env_default_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="^workers: "):
        Config(core_registry(), env={"WEB_CONCURRENCY": "many"})


def test_defaults(cfg: Config) -> None:
    assert cfg.bind == ["127.0.0.1:8000"]
    assert cfg.workers == 1
    assert cfg.sendfile is True
    assert cfg.get("sendfile") is None
    assert cfg.proc_name == "gunicorn"
    assert cfg.uid == os.geteuid() and cfg.gid == os.getegid()
    assert cfg.chdir == os.getcwd()
    assert cfg.env == {}
    assert cfg.is_ssl is False
    assert cfg.proxy_protocol == "off"
    assert cfg.disable_plugin == []
    assert cfg.limit_request_line == 4094
    assert cfg.forwarded_allow_ips == ["127.0.0.1", "::1"]


def test_derived_values(cfg: Config) -> None:
    cfg.set("raw_env", ["A=1", "B=two=2", "A=3"])
    cfg.set("proc_name", "web")
    cfg.set("user", "root")
    cfg.set("group", "0")
    assert cfg.env == {"A": "3", "B": "two=2"}
    assert cfg.proc_name == "web"
    assert cfg.uid == 0 and cfg.gid == 0


def test_unknown_user_is_a_config_error(cfg: Config) -> None:
    cfg.set("user", "no-such-user-xyz")
    with pytest.raises(ConfigError, match="^user: "):
        cfg.uid  # noqa: B018


def test_sync_with_threads_means_gthread(cfg: Config) -> None:
    assert cfg.worker_class_str == "sync"
    cfg.set("threads", 4)
    assert cfg.worker_class_str == "gthread"


def test_unknown_worker_class_is_a_config_error(cfg: Config) -> None:
    cfg.set("worker_class", "nonesuch")
    with pytest.raises(ConfigError, match="^worker_class: "):
        cfg.worker_class  # noqa: B018


def test_logger_class_switches_to_statsd(cfg: Config) -> None:
    cfg.set("logger_class", "logging.Logger")
    assert cfg.logger_class is __import__("logging").Logger
    cfg.set("logger_class", "no_such_module_xyz.Logger")
    with pytest.raises(ConfigError, match="^logger_class: "):
        cfg.logger_class  # noqa: B018


def test_hook_defaults_are_noops(cfg: Config) -> None:
    assert cfg.on_starting(object()) is None
    assert cfg.post_request(1, 2, 3, 4) is None
    assert cfg.nworkers_changed(1, 2, None) is None
    assert cfg.ssl_context(cfg, lambda: "ctx") == "ctx"


def test_hook_arity_is_checked(cfg: Config) -> None:
    with pytest.raises(ConfigError, match="^post_fork: .*2 positional"):
        cfg.set("post_fork", lambda server: None)
    with pytest.raises(ConfigError, match="^pre_request: "):
        cfg.set("pre_request", lambda a, b, c: None)
    cfg.set("post_fork", lambda server, worker, *rest: None)


@pytest.mark.parametrize("arity", [2, 3, 4])
def test_post_request_accepts_two_three_or_four_args(cfg: Config, arity: int) -> None:
    seen: list[tuple[object, ...]] = []

    def hook(*args: object) -> None:
        seen.append(args)

    params = ", ".join(f"a{i}" for i in range(arity))
    namespace: dict[str, object] = {"hook": hook}
    exec(f"def post_request({params}): hook({params})", namespace)
    cfg.set("post_request", namespace["post_request"])
    cfg.post_request("worker", "req", "environ", "resp")
    assert seen == [("worker", "req", "environ", "resp")[:arity]]


def test_hook_from_dotted_path(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APPS))
    cfg.set("on_exit", "cfg_hooks.on_starting")
    cfg.set("post_fork", "cfg_hooks.two_args")
    assert cfg.post_fork.__name__ == "two_args"
    with pytest.raises(ConfigError, match="^worker_int: "):
        cfg.set("worker_int", "cfg_hooks.two_args")


def test_copy_is_independent(cfg: Config) -> None:
    clone = cfg.copy()
    clone.set("workers", 9)
    assert cfg.workers == 1 and clone.workers == 9
