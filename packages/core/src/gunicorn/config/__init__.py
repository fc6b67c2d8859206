"""Configuration: the settings registry, the Config object and their loaders."""

# Classic gunicorn's entry path imports gunicorn.config early, and its files cannot overwrite
# this package (it ships config.py): say what is wrong before anything else breaks.
from _gunicorn_launch import exit_if_shadowed

exit_if_shadowed()

from gunicorn.config.config import Config  # noqa: E402
from gunicorn.config.registry import Registry, Setting  # noqa: E402

__all__ = ["Config", "Registry", "Setting"]
