"""The small Django project of the WSGI tests, served through Django's ASGI handler."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")

from django.core.asgi import get_asgi_application  # noqa: E402 - needs the settings module

application = get_asgi_application()
