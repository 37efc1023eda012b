"""Settings for production: secrets required, HTTPS assumed."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, DEV_PII_MASTER_KEY, env

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
PII_MASTER_KEY = env("PII_MASTER_KEY", default="")
if not PII_MASTER_KEY or PII_MASTER_KEY == DEV_PII_MASTER_KEY:
    raise ImproperlyConfigured(
        "PII_MASTER_KEY is not set (or is the published development key): it "
        "wraps the keys of customers' personal data. Set it to 32 random bytes "
        'in URL-safe base64, e.g. the output of python -c "import base64, os; '
        'print(base64.urlsafe_b64encode(os.urandom(32)).decode())", and keep it '
        "out of the database's backups (docs/operations.md)."
    )
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
