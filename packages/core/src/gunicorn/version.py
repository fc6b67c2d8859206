"""The one place the version is written; every package moves in lockstep with it."""

__version__ = "0.1.0"
SERVER_SOFTWARE = f"gunicorn/{__version__}"
