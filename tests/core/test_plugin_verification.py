"""The relay checks a plugin's hook names and signatures when it loads it."""

from __future__ import annotations

import os
import types

import pytest
from gunicorn.errors import PluginError
from gunicorn.plugins import HOOK_NAMES, LoadedPlugin, PluginManager, verify_plugin
from harness import APPS, run_gunicorn


def _register(site, name, target):
    """A distribution in ``site`` whose only content is a gunicorn.plugins entry point."""
    info = site / f"hookplugin_{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: hookplugin-{name}\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gunicorn.plugins]\n{name} = {target}\n")


def _gunicorn_with(tmp_path, name, target, *args):
    site = tmp_path / "site"
    _register(site, name, target)
    return run_gunicorn([*args, "wsgi_apps:hello"],
                        env={"PYTHONPATH": os.pathsep.join([str(site), str(APPS)])})


def test_a_misspelt_hook_stops_the_server_naming_plugin_method_and_hooks(tmp_path):
    result = _gunicorn_with(tmp_path, "typo", "hook_plugins:MisspeltPlugin", "--check-config")
    assert result.returncode == 2, result.stderr
    assert "'typo'" in result.stderr and "'worker_enviro'" in result.stderr
    assert "did you mean 'worker_environ'" in result.stderr
    assert all(hook in result.stderr for hook in HOOK_NAMES)
    assert "Traceback" not in result.stderr


def test_a_hook_with_the_wrong_signature_stops_the_server(tmp_path):
    result = _gunicorn_with(tmp_path, "arity", "hook_plugins:WrongArityPlugin", "--check-config")
    assert result.returncode == 2, result.stderr
    assert "'arity'" in result.stderr and "configure() cannot be called as configure(cfg)" \
        in result.stderr


def test_a_correct_plugin_loads(tmp_path):
    result = _gunicorn_with(tmp_path, "good", "hook_plugins:GoodPlugin", "--check-config")
    assert result.returncode == 0, result.stderr


def test_the_installed_plugins_pass():
    for name in PluginManager.from_entry_points().names:
        PluginManager.from_entry_points().only(name)  # verified as it is loaded


class _Sidecar:
    def sidecar(self, cfg):
        return []


class _Camel:
    def workerEnviron(self, cfg):  # the mistake under test
        return {}


class _Extra:
    def protocols(self, cfg, extra):
        return []


class _NotCallable:
    sidecars = ["not", "a", "function"]


class _Flexible:
    def configure(self, *args, **kwargs):
        pass

    def health(self, cfg, verbose=False):
        return None

    def _add_setting(self, registry):  # private: not a hook, whatever its name
        pass


@pytest.mark.parametrize(("plugin", "message"), [
    (_Sidecar(), "method 'sidecar' is not a hook (did you mean 'sidecars'?)"),
    (_Camel(), "method 'workerEnviron' is not a hook (did you mean 'worker_environ'?)"),
    (_Extra(), "cannot be called as protocols(cfg)"),
    (_NotCallable(), "hook 'sidecars' is not callable (list)"),
], ids=["near-miss", "case", "extra-argument", "not-callable"])
def test_verify_refuses(plugin, message):
    with pytest.raises(PluginError, match=r"plugin 'p': ") as info:
        verify_plugin("p", plugin)
    assert message in str(info.value)


def test_verify_accepts_flexible_signatures_and_private_helpers():
    verify_plugin("p", _Flexible())


def test_a_module_plugin_is_checked_for_its_own_functions_only():
    module = types.ModuleType("modplugin")
    exec("from os.path import join as add_setting\n"  # imported: not the plugin's own
         "def metrics(families):\n    pass\n", module.__dict__)
    verify_plugin("m", module)
    exec("def metric(families):\n    pass\n", module.__dict__)
    with pytest.raises(PluginError, match="'metric' is not a hook"):
        verify_plugin("m", module)


def test_plugins_built_directly_are_verified_too():
    with pytest.raises(PluginError, match="'sidecar'"):
        PluginManager([LoadedPlugin("p", _Sidecar())])
