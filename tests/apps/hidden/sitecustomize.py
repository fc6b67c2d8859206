"""Put this directory first on PYTHONPATH to make the top-level packages named in
$HIDE_MODULES (comma-separated) unimportable, as if they were not installed: importing them
raises ModuleNotFoundError with ``name`` set, exactly what the import system raises for a
package that is missing. Used to test behaviour without uvicorn-worker or PasteDeploy in a
virtualenv that has them."""

import os
import sys

HIDDEN = frozenset(filter(None, os.environ.get("HIDE_MODULES", "").split(",")))


class _Hide:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if HIDDEN:
    sys.meta_path.insert(0, _Hide())
