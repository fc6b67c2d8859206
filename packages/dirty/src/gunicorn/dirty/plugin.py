"""The gunicorn-dirty plugin object, loaded by the core from the ``gunicorn.plugins`` group."""


class DirtyPlugin:
    """Placeholder until the dirty pool lands: contributes nothing yet."""
