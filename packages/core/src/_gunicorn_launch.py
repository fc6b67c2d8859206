"""Console-script entry point for the ``gunicorn`` command.

It lives outside the ``gunicorn`` namespace on purpose: when a classic ``gunicorn`` distribution
(a regular package with ``gunicorn/__init__.py``) is importable, it shadows the PEP 420 namespace
that gunicorn-core and its plugins share, and nothing inside ``gunicorn.*`` could even be imported
to say so. From here we can detect that case and exit 2 with a clear message.
"""

from __future__ import annotations

import importlib.util
import sys


def shadowing_package() -> str | None:
    """Return the path of a classic ``gunicorn/__init__.py`` that shadows the namespace, if any."""
    spec = importlib.util.find_spec("gunicorn")
    if spec is None:
        return None
    # A namespace package has no origin (None, or "namespace" on old interpreters).
    if spec.origin in (None, "namespace"):
        return None
    return spec.origin


def main() -> None:
    shadow = shadowing_package()
    if shadow is not None:
        sys.stderr.write(
            "Error: a classic 'gunicorn' package is installed at "
            f"{shadow} and shadows the gunicorn namespace used by gunicorn-core; "
            "uninstall it (pip uninstall gunicorn) or use a separate virtualenv.\n"
        )
        sys.exit(2)
    from gunicorn.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
