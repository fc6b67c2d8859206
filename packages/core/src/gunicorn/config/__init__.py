"""Configuration: the settings registry, the Config object and their loaders."""

from gunicorn.config.config import Config
from gunicorn.config.registry import Registry, Setting

__all__ = ["Config", "Registry", "Setting"]
