"""Settings for production: secrets required, HTTPS assumed."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, env

DEBUG = False
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = False
# The default settings module of manage.py, ASGI, WSGI and Celery: without a
# secret of its own (not the development one in base.py) nothing starts.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == "dev-insecure-change-me":
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set (or is the published development key): "
        "config.settings.production refuses to start without a secret. Set "
        "DJANGO_SECRET_KEY to a long random value, or choose other settings with "
        "DJANGO_SETTINGS_MODULE (config.settings.local for development)."
    )
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
