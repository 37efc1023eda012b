"""Settings for the test suite: the real PostgreSQL, Redis and Celery, own names.

The test databases are named exactly as configured (TEST NAME = NAME) so that the
Celery worker processes that tests start use the very databases pytest created.
"""

from .base import *  # noqa: F403
from .base import (
    CACHE_OPTIONS,
    CHANNEL_LAYERS,
    DATABASES,
    channel_layer_host,
    env,
    integration_events_url,
)

DATABASES["default"].update(
    env.db_url(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/cqrs_orders_test"
    )
)
DATABASES["read"].update(
    env.db_url(
        "READ_DATABASE_URL",
        default="postgres://postgres@127.0.0.1:5432/cqrs_orders_read_test",
    )
)
for _db in DATABASES.values():
    if "MIRROR" in _db.get("TEST", {}):
        continue  # a read replica (READ_REPLICA_URLS): pytest creates nothing there
    # pytest drops and recreates these databases: never let a stray
    # DATABASE_URL point the suite at a real one.
    if not str(_db["NAME"]).endswith("_test"):
        raise RuntimeError(f"test database names must end in _test: {_db['NAME']}")
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["TEST"] = {"NAME": _db["NAME"]}
    _db["CONN_MAX_AGE"] = 0
# Django's flush between transactional tests truncates every table; the event
# store refuses TRUNCATE unless the session allows it (migration 0005).
DATABASES["default"]["OPTIONS"]["options"] += " -c cqrs.allow_truncate_events=on"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/9")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("CACHE_URL", default=REDIS_URL),
        "OPTIONS": CACHE_OPTIONS,
    }
}
CHANNEL_LAYER_URL = env("CHANNEL_LAYER_URL", default=REDIS_URL)
CHANNEL_LAYER_URLS = env.list("CHANNEL_LAYER_URLS", default=[CHANNEL_LAYER_URL])
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [  # type: ignore[index]
    channel_layer_host(url) for url in CHANNEL_LAYER_URLS
]
# High enough that no other test is ever throttled; the throttling test lowers it.
COMMAND_THROTTLE_RATE = env("COMMAND_THROTTLE_RATE", default="100000/min")
READ_THROTTLE_RATE = env("READ_THROTTLE_RATE", default="100000/min")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PAYMENT_GATEWAY_LATENCY_MS = env.int("PAYMENT_GATEWAY_LATENCY_MS", default=20)
PAYMENT_GATEWAY_TIMEOUT_SECONDS = env.float(
    "PAYMENT_GATEWAY_TIMEOUT_SECONDS", default=3.0
)
EFFECTS_LEASE_SECONDS = env.int("EFFECTS_LEASE_SECONDS", default=5)
EFFECTS_BACKOFF_BASE_SECONDS = env.float("EFFECTS_BACKOFF_BASE_SECONDS", default=0.2)
EFFECTS_BACKOFF_MAX_SECONDS = env.float("EFFECTS_BACKOFF_MAX_SECONDS", default=2.0)
COMMAND_LEASE_SECONDS = env.int("COMMAND_LEASE_SECONDS", default=5)
COMMAND_REDRIVE_AFTER_SECONDS = env.float("COMMAND_REDRIVE_AFTER_SECONDS", default=1.0)

# --- Customer e-mails and integration events ---------------------------------
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# RabbitMQ is a required service of the test suite (scripts/ensure_services.sh).
INTEGRATION_EVENTS_BROKER = env("INTEGRATION_EVENTS_BROKER", default="rabbitmq")
INTEGRATION_EVENTS_URL = integration_events_url(INTEGRATION_EVENTS_BROKER, REDIS_URL)
INTEGRATION_EVENTS_EXCHANGE = env(
    "INTEGRATION_EVENTS_EXCHANGE", default="cqrs-orders.integration.test"
)
INTEGRATION_EVENTS_STREAM = env(
    "INTEGRATION_EVENTS_STREAM", default="cqrs-orders.integration.test"
)
