"""Settings shared by every environment; every value comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from kombu import Exchange, Queue

from config.database import session_options

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core ------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    default=["http://127.0.0.1:8000", "http://localhost:8000"],
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "api",
    "commands_app",
    "projections",
    "queries_app",
    "web",
    "observability",
    "ops",
]

MIDDLEWARE = [
    "observability.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.security_headers.SecurityHeadersMiddleware",
    # Last: turns a sign-in refused for too many failures into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases ---------------------------------------------------------------
# "default" holds users, commands and the event store; "read" holds the
# projection tables. Both are PostgreSQL; a router sends projection models to "read".
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/cqrs_orders"
    ),
    "read": env.db_url(
        "READ_DATABASE_URL",
        default="postgres://postgres@127.0.0.1:5432/cqrs_orders_read",
    ),
}
for _db in DATABASES.values():
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # A dead connection kept from a previous task or request is replaced, not used
    # (celery#2996).
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DB_CONNECT_TIMEOUT", default=5
    )
    # A host that vanished (no FIN) loses its sessions, transactions and
    # projection locks within a known time (config/database.py, docs/reliability.md).
    _db["OPTIONS"].update(
        session_options(
            idle_in_transaction_seconds=env.float(
                "DB_IDLE_IN_TRANSACTION_TIMEOUT", default=60.0
            ),
            keepalives_idle=env.int("DB_KEEPALIVES_IDLE", default=30),
            keepalives_interval=env.int("DB_KEEPALIVES_INTERVAL", default=10),
            keepalives_count=env.int("DB_KEEPALIVES_COUNT", default=3),
        )
    )
# Django turns psycopg's prepared statements off (for connection poolers). Its
# own cursors bind on the client and are never prepared whatever this says; the
# event store's append binds on the server and prepares its INSERT once per
# connection. Behind a transaction-mode pooler, set DB_PREPARED_STATEMENTS=false.
if env.bool("DB_PREPARED_STATEMENTS", default=True):
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
# --- Read replicas (queries_app/replicas.py, docs/operations.md) -----------------
# Streaming replicas (hot standbys) of the read database, comma-separated URLs.
# The read API answers from one of them per request; projections always write
# to "read", the primary. Each becomes the alias read_replica_<i> (same options
# as "read"; never migrated: the router refuses, a standby is read-only anyway).
READ_REPLICA_URLS = env.list("READ_REPLICA_URLS", default=[])
READ_REPLICA_ALIASES: list[str] = []
for _index, _url in enumerate(READ_REPLICA_URLS):
    _alias = f"read_replica_{_index}"
    DATABASES[_alias] = {
        **DATABASES["read"],
        **environ.Env.db_url_config(_url),
        "ENGINE": "django.db.backends.postgresql",
        "OPTIONS": dict(DATABASES["read"]["OPTIONS"]),
        # Under the test runner, a replica is the read database itself.
        "TEST": {"MIRROR": "read"},
    }
    READ_REPLICA_ALIASES.append(_alias)
# A read with min_position waits this long for a lagging replica, then falls
# back to the primary (where READ_MIN_POSITION_WAIT_SECONDS and the 503 apply).
READ_REPLICA_MAX_WAIT_SECONDS = env.float("READ_REPLICA_MAX_WAIT_SECONDS", default=0.2)
# A replica that failed a request (unreachable, query cancelled) is left out of
# the process's choices this long; its requests go to the primary meanwhile.
READ_REPLICA_RETRY_SECONDS = env.float("READ_REPLICA_RETRY_SECONDS", default=10.0)
DATABASE_ROUTERS = ["config.db_router.ReadModelRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, cache ------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# --- Connection budgets (config/connections.py, docs/operations.md) -----------------
# The web tier borrows database connections from a psycopg pool per process and
# database (config/asgi.py); a request waits up to WEB_DB_POOL_TIMEOUT seconds
# for one. Workers keep one persistent connection per process (DB_CONN_MAX_AGE).
WEB_DB_POOL_MIN_SIZE = env.int("WEB_DB_POOL_MIN_SIZE", default=2)
WEB_DB_POOL_MAX_SIZE = env.int("WEB_DB_POOL_MAX_SIZE", default=12)
WEB_DB_POOL_TIMEOUT = env.float("WEB_DB_POOL_TIMEOUT", default=5.0)
# How long one chain of reconnection attempts (backing off 1, 2, 4 s...) may go on
# before the pool starts a new one: psycopg_pool grows by one chain at a time,
# and its default (300 s) left a pool empty for long after a PostgreSQL restart.
WEB_DB_POOL_RECONNECT_SECONDS = env.float("WEB_DB_POOL_RECONNECT_SECONDS", default=10.0)
# Redis pools per process: each waits for a free connection past its size.
CACHE_MAX_CONNECTIONS = env.int("CACHE_MAX_CONNECTIONS", default=20)
WS_SLOT_POOL_MAX_CONNECTIONS = env.int("WS_SLOT_POOL_MAX_CONNECTIONS", default=10)
CELERY_BROKER_POOL_LIMIT = env.int("CELERY_BROKER_POOL_LIMIT", default=10)
CACHE_OPTIONS = {
    "pool_class": "redis.BlockingConnectionPool",
    "max_connections": CACHE_MAX_CONNECTIONS,
    "timeout": 2,
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
}

# The cache (the rate limits' counters, the admin's rebuild status and locks)
# may live on a Redis of its own; it defaults to REDIS_URL.
CACHE_URL = env("CACHE_URL", default=REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "OPTIONS": CACHE_OPTIONS,
    }
}

# The channel layer may live on its own Redis (it defaults to REDIS_URL), or be
# sharded over several: CHANNEL_LAYER_URLS, comma-separated, wins over
# CHANNEL_LAYER_URL. channels-redis places each channel and group on one host by
# a hash of its name; every process must list the same hosts in the same order.
CHANNEL_LAYER_URL = env("CHANNEL_LAYER_URL", default=REDIS_URL)
CHANNEL_LAYER_URLS = env.list("CHANNEL_LAYER_URLS", default=[CHANNEL_LAYER_URL])
# --- Channel layer pool (config/channel_layer.py, docs/operations.md) -------------
# Redis connections per process and event loop; past them a call waits up to
# CHANNEL_LAYER_POOL_TIMEOUT seconds for a free one instead of failing.
CHANNEL_LAYER_MAX_CONNECTIONS = env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=50)
CHANNEL_LAYER_POOL_TIMEOUT = env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=10.0)
# Above the 5 s that channels-redis blocks in BZPOPMIN, or the read times out first.
CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=15.0)


def channel_layer_host(url: str) -> dict[str, object]:
    """Return a channel-layer host entry: the URL and its pool's bounds."""
    return {
        "address": url,
        "max_connections": CHANNEL_LAYER_MAX_CONNECTIONS,
        "timeout": CHANNEL_LAYER_POOL_TIMEOUT,
        "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
    }


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "config.channel_layer.BlockingPoolChannelLayer",
        "CONFIG": {
            "hosts": [channel_layer_host(url) for url in CHANNEL_LAYER_URLS],
            "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1500),
            "expiry": 30,
            "prefix": env("CHANNEL_LAYER_PREFIX", default="cqrs"),
        },
    }
}

# --- WebSocket limits (commands_app/consumers.py; close codes in docs/api.md) --------
# Sockets per user across every web process; past it the socket closes with 4429.
WS_MAX_CONNECTIONS_PER_USER = env.int("WS_MAX_CONNECTIONS_PER_USER", default=20)
# A slot of a process that died without closing its sockets frees itself after this.
WS_SLOT_TTL_SECONDS = env.int("WS_SLOT_TTL_SECONDS", default=60)
# Clients send only pings: a bigger frame closes the socket with 1009, unparsed.
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=4096)
# A staff socket reads its user's rights again before a staff push this old.
WS_STAFF_RECHECK_SECONDS = env.float("WS_STAFF_RECHECK_SECONDS", default=5.0)

# --- Celery -------------------------------------------------------------------
# PostgreSQL holds every command's state; Redis only carries command ids.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Celery's Django fixup closes every database connection around every task unless
# this is set (a reconnect to both databases per command); keep them instead, and
# let config/celery_app.py check them before each task as Django does per request
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS). Celery still closes them every N tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "commands"
CELERY_TASK_ROUTES = {
    "commands.execute": {"queue": "commands"},
    "commands.execute_many": {"queue": "commands"},
    "commands.execute_import": {"queue": "imports"},
    "commands.sweep": {"queue": "commands"},
    "commands.dashboard": {"queue": "commands"},
    "commands.purge_finished": {"queue": "commands"},
    "projections.*": {"queue": "projections"},
}
# Time limits stay well below the broker's visibility timeout, so that a task is
# never redelivered while its first delivery is still running.
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 10,
}

# --- Celery: broker-specific settings, chosen by the broker URL's scheme -----------
# Redis (above) or RabbitMQ (amqp://). On RabbitMQ every queue is a quorum queue
# (replicated, durable; global QoS off, which Celery detects, so the prefetch of
# one above holds per consumer) and each publish waits for the broker's confirm.
# acks_late leaves a task unacknowledged while it runs: RabbitMQ's delivery
# acknowledgement timeout (consumer_timeout, 30 min by default) must exceed the
# longest task, an import's hard limit (commands_app/tasks.py): see
# docs/operations.md and RABBITMQ_CONSUMER_TIMEOUT_MS below.
BROKER_IS_RABBITMQ = CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
RABBITMQ_CONSUMER_TIMEOUT_MS = env.int(
    "RABBITMQ_CONSUMER_TIMEOUT_MS", default=CELERY_BROKER_VISIBILITY_TIMEOUT * 1000
)
if BROKER_IS_RABBITMQ:
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
    # Topic exchanges: Celery's native delayed delivery (ETA on quorum queues)
    # binds only those.
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    # The per-queue x-consumer-timeout is honoured from RabbitMQ 3.12 on and
    # ignored before, where only the server-wide consumer_timeout counts.
    CELERY_TASK_QUEUES = [
        Queue(
            name,
            Exchange(name, "topic"),
            routing_key=name,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-consumer-timeout": RABBITMQ_CONSUMER_TIMEOUT_MS,
            },
        )
        for name in ("commands", "imports", "projections")
    ]
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "connect_timeout": 5}
    CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=30)

CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-commands": {
        "task": "commands.sweep",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=2.0),
        "options": {"expires": 10},
    },
    "projections-safety-net": {
        "task": "projections.catch_up",
        "schedule": env.float("PROJECTION_SAFETY_NET_SECONDS", default=2.0),
        "options": {"expires": 10},
    },
    "staff-dashboard": {
        "task": "commands.dashboard",
        "schedule": env.float("DASHBOARD_PUSH_SECONDS", default=2.0),
        "options": {"expires": 5},
    },
    "purge-finished-commands": {
        "task": "commands.purge_finished",
        "schedule": env.float("COMMAND_PURGE_INTERVAL_SECONDS", default=3600.0),
        "options": {"expires": 600},
    },
}

# --- Command pipeline -----------------------------------------------------------
COMMAND_LEASE_SECONDS = env.int("COMMAND_LEASE_SECONDS", default=30)
COMMAND_MAX_ATTEMPTS = env.int("COMMAND_MAX_ATTEMPTS", default=5)
COMMAND_REDRIVE_AFTER_SECONDS = env.float("COMMAND_REDRIVE_AFTER_SECONDS", default=5.0)
COMMAND_CONFLICT_RETRIES = env.int("COMMAND_CONFLICT_RETRIES", default=10)
# A finished command's record is deleted this long after it finished, never
# before its Idempotency-Key's lifetime (commands_app/retention.py).
COMMAND_RETENTION_DAYS = env.int("COMMAND_RETENTION_DAYS", default=30)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
COMMAND_MAX_WAIT_SECONDS = env.float("COMMAND_MAX_WAIT_SECONDS", default=10.0)
COMMAND_MAX_CONCURRENT_WAITS = env.int("COMMAND_MAX_CONCURRENT_WAITS", default=8)
# Reads with min_position=N wait this long for the read model, then answer 503.
READ_MIN_POSITION_WAIT_SECONDS = env.float(
    "READ_MIN_POSITION_WAIT_SECONDS", default=2.0
)
READ_MAX_CONCURRENT_WAITS = env.int("READ_MAX_CONCURRENT_WAITS", default=8)
IMPORT_CHUNK_SIZE = env.int("IMPORT_CHUNK_SIZE", default=500)
IMPORT_MAX_ITEMS = 50_000
PAYMENT_GATEWAY_LATENCY_MS = env.int("PAYMENT_GATEWAY_LATENCY_MS", default=300)
# A gateway call slower than this has an unknown outcome: retried with its key.
PAYMENT_GATEWAY_TIMEOUT_SECONDS = env.float(
    "PAYMENT_GATEWAY_TIMEOUT_SECONDS", default=10.0
)
# Test-only: the simulated gateway pauses this long after recording a call.
PAYMENT_GATEWAY_PAUSE_AFTER_CALL_MS = env.int(
    "PAYMENT_GATEWAY_PAUSE_AFTER_CALL_MS", default=0
)

# --- Effects (commands_app/effects.py) --------------------------------------------
# The relay in each command worker: woken by NOTIFY on commit, polling as a
# safety net. A delivery holds its effect for the lease; a failure is retried
# after a backoff doubling from BASE up to MAX; after MAX_ATTEMPTS it is parked.
EFFECTS_RELAY_ENABLED = env.bool("EFFECTS_RELAY_ENABLED", default=True)
EFFECTS_POLL_SECONDS = env.float("EFFECTS_POLL_SECONDS", default=1.0)
# A relay claims up to CLAIM_BATCH due effects in one statement and delivers
# them in turn (one per claim at first, doubling while claims are delivered
# within 0.1 s, halving when not); those not started within half a lease are
# given back.
EFFECTS_CLAIM_BATCH = env.int("EFFECTS_CLAIM_BATCH", default=16)
# Commits that notify the relay while it delivers make it wait this long
# before the next drain (relays.Relay), which then claims them together.
EFFECTS_COALESCE_SECONDS = env.float("EFFECTS_COALESCE_SECONDS", default=0.05)
# The command relay (commands_app/acceptance.py publish_pending): requests store
# the command and NOTIFY; the command workers' relays publish the tasks. Off:
# each request publishes its own task on commit.
COMMANDS_RELAY_ENABLED = env.bool("COMMANDS_RELAY_ENABLED", default=True)
COMMANDS_RELAY_POLL_SECONDS = env.float("COMMANDS_RELAY_POLL_SECONDS", default=1.0)
# The relay publishes a busy moment's commands as `commands.execute_many` tasks
# of at most COMMANDS_PER_TASK commands, over at least COMMANDS_TASKS_PER_CLAIM
# tasks (so every worker process gets a share); 1 publishes one task each.
COMMANDS_PER_TASK = env.int("COMMANDS_PER_TASK", default=16)
COMMANDS_TASKS_PER_CLAIM = env.int("COMMANDS_TASKS_PER_CLAIM", default=4)
# A command task then claims and runs the commands still pending,
# COMMANDS_TAKEOVER_BATCH at a time, for up to COMMANDS_TAKEOVER_SECONDS; while
# every process of a worker runs such a task, its command relay holds back
# (commands_app/execution.py execute_then_pending). On by default: in the
# sustained figure it cut the machine's CPU per command by 8.5 % (4 pairs, every
# one lower), and a lost race decides again in its streams' turn, so a burst on
# one product loses no command (docs/performance.md, 2026-12-06, 06:00-07:33).
# 0 turns it off (every command then goes through the relay).
COMMANDS_TAKEOVER_SECONDS = env.float("COMMANDS_TAKEOVER_SECONDS", default=1.0)
COMMANDS_TAKEOVER_BATCH = env.int("COMMANDS_TAKEOVER_BATCH", default=2)
# The projector relay (projections/runner.py): every appending commit wakes it;
# it polls as a safety net for a lost notification.
PROJECTIONS_RELAY_ENABLED = env.bool("PROJECTIONS_RELAY_ENABLED", default=True)
PROJECTIONS_POLL_SECONDS = env.float("PROJECTIONS_POLL_SECONDS", default=1.0)
# Commits that notify it while it catches up make it wait this long before the
# next catch-up, which then takes them all in one round (relays.Relay); at rest
# a round ends before the next commit and nothing waits. 0 turns it off.
PROJECTIONS_COALESCE_SECONDS = env.float("PROJECTIONS_COALESCE_SECONDS", default=0.05)
EFFECTS_LEASE_SECONDS = env.int("EFFECTS_LEASE_SECONDS", default=60)
EFFECTS_MAX_ATTEMPTS = env.int("EFFECTS_MAX_ATTEMPTS", default=8)
EFFECTS_BACKOFF_BASE_SECONDS = env.float("EFFECTS_BACKOFF_BASE_SECONDS", default=1.0)
EFFECTS_BACKOFF_MAX_SECONDS = env.float("EFFECTS_BACKOFF_MAX_SECONDS", default=300.0)

# Pauses one projection round may spend retrying failing events, in all; then a
# failing event parks after one try (projections/base.py).
PROJECTION_RETRY_BUDGET_SECONDS = env.float(
    "PROJECTION_RETRY_BUDGET_SECONDS", default=3.0
)

# --- REST framework -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Command submissions per user (DRF rate syntax: N/s, N/min, N/hour); over it, 429
# with Retry-After. A brake against runaway clients, not a security control.
COMMAND_THROTTLE_RATE = env("COMMAND_THROTTLE_RATE", default="120/min")
# Reads per user (read models and command status), the same way; package throttles/.
READ_THROTTLE_RATE = env("READ_THROTTLE_RATE", default="600/min")
# Bodies above this size are refused before parsing (import-products is the largest).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=8 * 1024 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "cqrs-orders API",
    "DESCRIPTION": (
        "Commands are accepted with 202 and run by workers; poll "
        "`/api/commands/<id>/` or listen on `/ws/commands/` for their outcome. "
        "Every error body is `{code, message, details}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Auth, i18n, static ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Only production collects static files (the image runs collectstatic).
STATIC_ROOT: Path | None = None
# Serve app static files (admin, Swagger UI from the sidecar) without a CDN and,
# in development, without collectstatic.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# One JSON object per line (LOG_FORMAT=plain for a terminal), with the request,
# correlation, command and task ids; secrets masked by one shared filter. Celery
# workers and beat use this too (observability/workers.py).
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "observability.logs.ContextFilter"},
        "mask": {"()": "observability.logs.MaskingFilter"},
    },
    "formatters": {
        "json": {"()": "observability.logs.JsonFormatter"},
        "plain": {"()": "observability.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "mask"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler would print its records a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Observability ------------------------------------------------------------------
# /metrics answers these addresses or networks (CIDR), or a request carrying
# `Authorization: Bearer <METRICS_TOKEN>`; anyone else gets 404.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# A Celery worker serves its host's metrics on this port (0: off); for workers
# in containers of their own, where the web's /metrics cannot see their files.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
# Workers write a heartbeat to Redis this often; /readyz wants one per queue
# within the last three intervals.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
READY_REQUIRED_QUEUES = env.list(
    "READY_REQUIRED_QUEUES", default=["commands", "imports", "projections"]
)
READY_MAX_PROJECTION_LAG_EVENTS = env.int(
    "READY_MAX_PROJECTION_LAG_EVENTS", default=10_000
)
READY_TIMEOUT_SECONDS = env.float("READY_TIMEOUT_SECONDS", default=3.0)
# Tracing is off unless an OTLP endpoint is set (or the console exporter chosen).
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_TRACES_EXPORTER = env("OTEL_TRACES_EXPORTER", default="")
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="cqrs-orders")

# --- Collaborators, by dotted path --------------------------------------------------
PAYMENT_GATEWAY = env(
    "PAYMENT_GATEWAY", default="commands_app.payments.SimulatedGateway"
)
# Threads per web process that run Django views (see config/asgi.py), besides
# the COMMAND_ and READ_MAX_CONCURRENT_WAITS threads that waiting requests may hold.
WEB_THREADS = env.int("WEB_THREADS", default=16)
# Serve /bench/baseline/, the accept figure's floor (bench/views.py); only
# `make bench` turns it on, for its own server.
BENCH_BASELINE_ENDPOINT = env.bool("BENCH_BASELINE_ENDPOINT", default=False)

# --- Customer e-mails and integration events (effects) ---------------------------
# Order e-mails (commands_app/notifications.py) go through Django's e-mail framework:
# SMTP by default; local settings print them, tests keep them in memory.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="orders@example.com")
# Links in e-mails point here.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Public events for other services (docs/integration-events.md):
# "rabbitmq" (a durable topic exchange), "redis" (a stream) or "none".
INTEGRATION_EVENTS_BROKER = env("INTEGRATION_EVENTS_BROKER", default="none")


def integration_events_url(broker: str, redis_url: str) -> str:
    """Return INTEGRATION_EVENTS_URL, by default the broker's local address."""
    default = redis_url if broker == "redis" else "amqp://guest:guest@127.0.0.1:5672//"
    return str(env("INTEGRATION_EVENTS_URL", default=default))


INTEGRATION_EVENTS_URL = integration_events_url(INTEGRATION_EVENTS_BROKER, REDIS_URL)
INTEGRATION_EVENTS_EXCHANGE = env(
    "INTEGRATION_EVENTS_EXCHANGE", default="cqrs-orders.integration"
)
INTEGRATION_EVENTS_STREAM = env(
    "INTEGRATION_EVENTS_STREAM", default="cqrs-orders.integration"
)
INTEGRATION_EVENTS_STREAM_MAXLEN = env.int(
    "INTEGRATION_EVENTS_STREAM_MAXLEN", default=1_000_000
)
INTEGRATION_EVENTS_TIMEOUT_SECONDS = env.float(
    "INTEGRATION_EVENTS_TIMEOUT_SECONDS", default=5.0
)
# Keys the opaque customer ids of public events (HMAC); changing it changes them all.
INTEGRATION_EVENTS_CUSTOMER_KEY = env(
    "INTEGRATION_EVENTS_CUSTOMER_KEY", default=SECRET_KEY
)

# --- Personal data -------------------------------------------------------------------
# The master key (32 random bytes, URL-safe base64) that wraps every customer's
# data key; previous master keys stay readable until `rotate_pii_master_key`
# re-wrapped every data key (docs/operations.md, "Personal data and erasure").
# Empty here: local and test settings use a published development key, and
# production refuses to start without one of its own.
DEV_PII_MASTER_KEY = "ZGV2LW9ubHktcGlpLW1hc3Rlci1rZXktMzItYnl0ZXM="
PII_MASTER_KEY = env("PII_MASTER_KEY", default="")
PII_PREVIOUS_MASTER_KEYS = env.list("PII_PREVIOUS_MASTER_KEYS", default=[])

# --- API tokens and sign-in throttling -----------------------------------------------
# API tokens (django-rest-knox) are stored as digests and expire this many hours
# after they were issued; `Authorization: Token <token>` as before.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.float("API_TOKEN_TTL_HOURS", default=10.0)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# Sign-ins (API token, /login/, /admin/login/) are counted by django-axes: after
# LOGIN_FAILURE_LIMIT failures for one username, or from one client address,
# within LOGIN_COOLOFF_SECONDS, every sign-in for it is refused (429) until
# LOGIN_COOLOFF_SECONDS after its last failure, before any password is hashed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_COOLOFF_SECONDS = env.int("LOGIN_COOLOFF_SECONDS", default=900)
# The client address is REMOTE_ADDR. Behind N reverse proxies that each append
# to X-Forwarded-For, set CLIENT_IP_PROXY_COUNT=N: the address the outermost
# trusted proxy saw is used (a client can prepend anything it likes).
CLIENT_IP_PROXY_COUNT = env.int("CLIENT_IP_PROXY_COUNT", default=0)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "config.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "config.login_throttle.lockout_response"
AXES_VERBOSE = False

# --- Probes ---------------------------------------------------------------------------
# Each web process answers /readyz from its last result for this long.
READY_CACHE_SECONDS = env.float("READY_CACHE_SECONDS", default=1.0)

# --- Security headers ----------------------------------------------------------------
# Sent on every response (config/security_headers.py) but those under
# CSP_EXEMPT_PATHS: Swagger UI runs an inline script. SecurityMiddleware sends
# nosniff and Referrer-Policy (Django's defaults, stated here).
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
)
CSP_EXEMPT_PATHS = ["/api/docs/"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
