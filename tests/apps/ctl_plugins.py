"""A test plugin contributing control commands, as gunicorn-dirty does (arb_run.py --plugin)."""

from __future__ import annotations

import time


class CtlPlugin:
    def control_commands(self, cfg):
        def show_dirty(args):
            """The fake dirty arbiter."""
            return {"enabled": True, "pid": 4242,
                    "workers": [{"pid": 4243, "apps": ["app:Model"], "in_flight": 1,
                                 "queued": 2}]}

        def stash_get(args):
            """Read a key of a stash table."""
            if len(args) != 2:
                raise ValueError("usage: stash get TABLE KEY")
            return {"table": args[0], "key": args[1], "value": args[1].upper()}

        def stash_boom(args):
            raise RuntimeError("kaboom")

        def stash_slow(args):
            time.sleep(float(args[0]) if args else 1.0)
            return {"slept": True}

        def dirty_add(args):
            return {"added": int(args[0]) if args else 1}

        def takeover(args):
            return {"hijacked": True}

        return {"show dirty": show_dirty, "stash get": stash_get, "Stash  Boom": stash_boom,
                "stash slow": stash_slow, "dirty add": dirty_add, "reload": takeover}
