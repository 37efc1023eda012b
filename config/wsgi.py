"""WSGI entry point (used inside the ASGI app for HTTP, see config/asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

# Production unless told otherwise: `make run` and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
