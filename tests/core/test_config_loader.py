"""load_config: layering of defaults, app settings, config file, $GUNICORN_CMD_ARGS and argv."""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.config.loader import load_config
from gunicorn.config.parser import prescan_disabled_plugins
from gunicorn.config.registry import Setting
from gunicorn.config.settings import core_registry
from gunicorn.errors import ConfigError
from harness import APPS


@pytest.fixture(autouse=True)
def _apps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APPS))


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_each_layer_overrides_the_previous(tmp_path: Path) -> None:
    conf = write(tmp_path / "g.py", "workers = 2\nbacklog = 10\nkeepalive = 5\ntimeout = 9\n")
    env = {"WEB_CONCURRENCY": "7", "GUNICORN_CMD_ARGS": f"-c {conf} --backlog 20 --keep-alive 6"}
    cfg = load_config(["--keep-alive", "8", "app:app"], env, core_registry(),
                      app_settings={"workers": 3, "timeout": 4, "max_requests": 11},
                      cwd=str(tmp_path))
    assert cfg.max_requests == 11        # app setting over default
    assert cfg.timeout == 9              # config file over app setting
    assert cfg.workers == 2              # config file over app and $WEB_CONCURRENCY
    assert cfg.backlog == 20             # $GUNICORN_CMD_ARGS over config file
    assert cfg.keepalive == 8            # argv over $GUNICORN_CMD_ARGS
    assert cfg.wsgi_app == "app:app"
    assert cfg.config == conf


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    write(tmp_path / "gunicorn.conf.py", "workers = 5\nwsgi_app = 'hello:app'\n")
    cfg = load_config([], {}, core_registry(), cwd=str(tmp_path))
    assert cfg.workers == 5
    assert cfg.wsgi_app == "hello:app"
    assert cfg.config == "./gunicorn.conf.py"


def test_missing_default_config_file_is_fine(tmp_path: Path) -> None:
    cfg = load_config([], {}, core_registry(), cwd=str(tmp_path))
    assert cfg.workers == 1 and not cfg.is_set("config")


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^config: .*does not exist"):
        load_config(["-c", "nope.py"], {}, core_registry(), cwd=str(tmp_path))


def test_python_module_config(tmp_path: Path) -> None:
    cfg = load_config(["-c", "python:cfg_module"], {}, core_registry(), cwd=str(tmp_path))
    assert cfg.workers == 3
    assert cfg.proc_name == "from-python-module"


def test_missing_python_module_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="python:no_such_cfg_xyz"):
        load_config(["-c", "python:no_such_cfg_xyz"], {}, core_registry(), cwd=str(tmp_path))


def test_unknown_names_in_config_file_are_ignored(tmp_path: Path) -> None:
    conf = write(tmp_path / "g.py", "import os\nfoo = 1\n_private = 2\nworkers = 2\n")
    cfg = load_config(["-c", conf], {}, core_registry(), cwd=str(tmp_path))
    assert cfg.workers == 2


def test_bad_value_in_config_file_names_setting_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(["-c", str(APPS / "cfg_bad_value.py")], {}, core_registry(),
                    cwd=str(tmp_path))
    assert info.value.setting == "workers"
    assert "integer" in str(info.value) and "cfg_bad_value.py" in str(info.value)


def test_syntax_error_in_config_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "broken.py", "workers = (\n")
    with pytest.raises(ConfigError) as info:
        load_config(["-c", conf], {}, core_registry(), cwd=str(tmp_path))
    assert info.value.setting is None
    assert "broken.py" in str(info.value) and "syntax error" in str(info.value)


def test_exception_in_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cfg_raises.py: RuntimeError: boom"):
        load_config(["-c", str(APPS / "cfg_raises.py")], {}, core_registry(), cwd=str(tmp_path))


def test_sys_exit_in_config_file_is_reported(tmp_path: Path) -> None:
    conf = write(tmp_path / "exits.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match="exits.py: SystemExit"):
        load_config(["-c", conf], {}, core_registry(), cwd=str(tmp_path))


def test_hooks_from_config_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "g.py", "from cfg_hooks import on_starting, post_request\n"
                                    "post_fork = 'cfg_hooks.two_args'\n")
    cfg = load_config(["-c", conf], {}, core_registry(), cwd=str(tmp_path))
    assert cfg.on_starting.__name__ == "on_starting"
    assert cfg.post_fork.__name__ == "two_args"
    assert cfg.post_request(1, 2, 3, 4) is None


def test_hook_with_wrong_arity_in_config_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "g.py", "def when_ready(server, extra):\n    pass\n")
    with pytest.raises(ConfigError, match="^when_ready: .*1 positional"):
        load_config(["-c", conf], {}, core_registry(), cwd=str(tmp_path))


def test_append_options_replace_lower_layers(tmp_path: Path) -> None:
    conf = write(tmp_path / "g.py", "bind = ['127.0.0.1:1', '127.0.0.1:2']\n")
    cfg = load_config(["-c", conf, "-b", "unix:/tmp/a", "-b", ":3"], {}, core_registry(),
                      cwd=str(tmp_path))
    assert [str(a) for a in cfg.address] == ["unix:/tmp/a", "0.0.0.0:3"]


def test_flag_forms(tmp_path: Path) -> None:
    argv = ["--preload", "--no-sendfile", "--proxy-protocol", "app:app", "-e", "A=1",
            "--reload-extra-file", "*.html"]
    cfg = load_config(argv, {}, core_registry(), cwd=str(tmp_path))
    assert cfg.preload_app is True
    assert cfg.sendfile is False
    assert cfg.proxy_protocol == "auto"
    assert cfg.wsgi_app == "app:app"
    assert cfg.env == {"A": "1"}
    assert cfg.reload_extra_files == ["*.html"]
    cfg = load_config(["--proxy-protocol", "v1", "app:app"], {}, core_registry(),
                      cwd=str(tmp_path))
    assert cfg.proxy_protocol == "v1" and cfg.wsgi_app == "app:app"


def test_reload_rereads_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "g.py"
    conf.write_text("workers = 2\n")
    registry = core_registry()
    assert load_config(["-c", str(conf)], {}, registry, cwd=str(tmp_path)).workers == 2
    conf.write_text("workers = 4\n")
    assert load_config(["-c", str(conf)], {}, registry, cwd=str(tmp_path)).workers == 4


def test_plugin_settings_load_like_core_ones(tmp_path: Path) -> None:
    registry = core_registry()
    registry.add(Setting(name="dirty_workers", section="Dirty", doc="x", default=0,
                         validator=int, cli=("--dirty-workers",)))
    conf = write(tmp_path / "g.py", "dirty_workers = 2\n")
    assert load_config(["-c", conf], {}, registry, cwd=str(tmp_path)).dirty_workers == 2
    assert load_config(["--dirty-workers", "3"], {}, registry, cwd=str(tmp_path)).dirty_workers == 3


def test_prescan_disabled_plugins() -> None:
    env = {"GUNICORN_CMD_ARGS": "--disable-plugin dirty -w 2"}
    argv = ["-b", ":1", "--disable-plugin=http2", "--disable-plugin", "ctl", "app:app"]
    assert prescan_disabled_plugins(argv, env) == ["dirty", "http2", "ctl"]


def test_core_registry_is_fresh_each_call() -> None:
    first = core_registry()
    first.add(Setting(name="extra", section="X", doc="x"))
    assert "extra" not in core_registry()
