"""Settings for `make run` on a developer's machine."""

from .base import *  # noqa: F403
from .base import DEV_PII_MASTER_KEY, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# --- Customer e-mails ------------------------------------------------------------
# Printed by the processes of `make run` unless EMAIL_BACKEND says otherwise (the file
# backend, django.core.mail.backends.filebased.EmailBackend, writes EMAIL_FILE_PATH).
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=".run/emails")

# The published development key: never in production (production.py refuses it).
PII_MASTER_KEY = env("PII_MASTER_KEY", default=DEV_PII_MASTER_KEY)
