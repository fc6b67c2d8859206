"""Plugins for the hook verification tests (registered as real entry points by the tests)."""

from __future__ import annotations


class GoodPlugin:
    def worker_environ(self, cfg):
        return {"HOOK_PLUGIN": "1"}

    def describe(self):  # a public helper far from every hook name: the plugin's business
        return "good"


class MisspeltPlugin:
    def worker_enviro(self, cfg):  # one letter short of worker_environ: never called
        return {"HOOK_PLUGIN": "1"}


class WrongArityPlugin:
    def configure(self):  # the relay calls configure(cfg)
        pass
