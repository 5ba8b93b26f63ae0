"""Settings for every environment, read from environment variables with embedded defaults.

Unset ``DATABASE_URL`` means a local SQLite file; unset ``CELERY_BROKER_URL`` means Celery runs
tasks in-process (eager). Set both and the same code runs on PostgreSQL and Redis workers.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

from scf.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Key for secrets we must be able to read back (webhook secrets): Fernet, urlsafe base64, 32 bytes.
# Derived from SECRET_KEY when unset, so the demo runs with no configuration.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI for /api/docs/ as our own static files (no CDN).
    "drf_spectacular_sidecar",
    "django_htmx",
    "pgtrigger",
    "axes",
    "orders",
    "lending",
    "integrations",
]

MIDDLEWARE = [
    "scf.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "scf.middleware.ContentSecurityPolicyMiddleware",
    # Before anything that reads a body (CSRF reads a form's): refuses one above its cap.
    "scf.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so static files keep their own caching; everything else: no-store.
    "scf.middleware.NoStoreMiddleware",
    # scf.browser: Django's own, passed straight through by an API call with a token.
    "scf.browser.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "scf.browser.AuthenticationMiddleware",
    "scf.browser.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scf.browser.HtmxMiddleware",
    "scf.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "scf.urls"
WSGI_APPLICATION = "scf.wsgi.application"
AUTH_USER_MODEL = "orders.User"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite: wait for a writer instead of failing at once, and take the write lock up front.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
if IS_POSTGRES:
    # Django's backend, its sessions started with generic plans for prepared statements.
    DATABASES["default"]["ENGINE"] = "scf.postgresql"
    # A database that is down or restarting must fail a request in seconds (a clean 503 from
    # scf.api), not hang a web worker: bounded connect, and TCP keepalives so a dead peer on a
    # half-open connection is noticed. CONN_HEALTH_CHECKS (above) drops a broken persistent
    # connection at the start of the next request instead of failing it.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
    _db_options.setdefault("keepalives", 1)
    _db_options.setdefault("keepalives_idle", 30)
    _db_options.setdefault("keepalives_interval", 10)
    _db_options.setdefault("keepalives_count", 3)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
# One date format per language, times with their UTC offset (scf/formats).
FORMAT_MODULE_PATH = ["scf.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
CSRF_FAILURE_VIEW = "orders.views.csrf_failure"

# --- Hardening ------------------------------------------------------------------------------
# Sign-in throttling (django-axes): AXES_FAILURE_LIMIT failures for one username from one address
# lock that pair out for AXES_COOLOFF_MINUTES (429 and the lockout page); a successful sign-in
# before the limit starts the count again.
AUTHENTICATION_BACKENDS = [
    "scf.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "scf.auth.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "old_password", "new_password1", "new_password2"]
# The address counted is REMOTE_ADDR (django-ipware is not installed): gunicorn behind a proxy
# must be given the client's address (e.g. --forwarded-allow-ips with a proxy that sets it).

# Security headers on every response (SecurityMiddleware, XFrameOptionsMiddleware, and our CSP).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts only from our own static files: no inline handlers (``static/web/app.js`` does what
# ``onchange=`` and ``hx-on`` did), no eval (htmx runs with ``allowEval: false``). Styles allow
# inline ``style=`` (gauges) and htmx's indicator style. The API docs (/api/docs/) run under it
# too: Swagger UI is our static files and its start-up script a file of its own.
CSP_POLICY = env.str(
    "CSP_POLICY",
    default="; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "script-src-attr 'none'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    ),
)

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scf.tokens.FastTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "scf.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scf.api.exception_handler",
    # JSON with the nesting cap first; forms and multipart as DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "scf.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Per-user limits on the expensive agent calls (scf.throttling): "<count>/<s|min|hour|day>".
API_RATE_LIMITS = {
    "finance": env.str("API_RATE_FINANCE", default="120/min"),
    "quote": env.str("API_RATE_QUOTE", default="600/min"),
}
# After the cache fails to answer, a process lets requests through without asking it for this
# long: during a Redis outage one request a second per process pays the cache's timeout, not all.
RATE_LIMIT_CACHE_RETRY_SECONDS = env.float("RATE_LIMIT_CACHE_RETRY_SECONDS", default=1.0)

SPECTACULAR_SETTINGS = {
    "TITLE": "SCF order-to-loan API",
    "DESCRIPTION": "Supply-chain finance: order feed, quotes, financing, loans, reviews.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, pinned with the package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No online validator badge: it would send the schema's address to a third party.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scf.schema.document_body_limits",
    ],
    "ENUM_NAME_OVERRIDES": {
        "GradeEnum": "lending.models.credit.Grade",
        "ProgramStatusEnum": "lending.models.credit.ProgramStatus",
        "DecisionOutcomeEnum": "lending.models.credit.DecisionOutcome",
        "LoanStatusEnum": "lending.models.credit.LoanStatus",
        "OrderStatusEnum": "orders.models.OrderStatus",
    },
}

# --- Celery -----------------------------------------------------------------------------------
# Hot statements (authentication, the finance decision) are prepared once per database session;
# turn off behind a connection pooler that does not keep sessions (PgBouncer transaction mode).
SCF_PREPARED_STATEMENTS = env.bool("SCF_PREPARED_STATEMENTS", default=True)
# The session plans a prepared statement once (plan_cache_mode = force_generic_plan, sent as a
# startup option; scf.postgresql).
SCF_GENERIC_PLANS = env.bool("SCF_GENERIC_PLANS", default=True)
# The finance click's model instances are made without Model.__init__ (scf.hotpath.build and
# model_from_row); off: through Model.__init__ / Model.from_db.
SCF_FAST_INSTANCES = env.bool("SCF_FAST_INSTANCES", default=True)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Workers keep Django's LOGGING (ids, redaction, JSON) instead of Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
# A broker that hangs (frozen, a half-open connection, a failover) costs a publish at most these
# (per attempt; Celery tries 4 times), never a web process: kombu's Redis transport waits forever
# without them. Publishing connections only (scf.celery.App); the queue-depth metric uses them too.
BROKER_CONNECT_TIMEOUT = env.float("BROKER_CONNECT_TIMEOUT", default=0.5)
BROKER_READ_TIMEOUT = env.float("BROKER_READ_TIMEOUT", default=0.5)
# GET /healthz waits at most this long for the broker's answer (scf.health), then reports the
# broker as not answering ("degraded"): a health check must never wait on Redis.
HEALTH_CHECK_BROKER_TIMEOUT = env.float("HEALTH_CHECK_BROKER_TIMEOUT", default=0.5)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "orders-pull-feeds": {
        "task": "integrations.pull_order_feeds",
        "schedule": env.float("ORDER_PULL_INTERVAL_SECONDS", default=60.0),
    },
    "lending-expire-reviews": {
        "task": "lending.expire_reviews",
        "schedule": env.float("REVIEW_EXPIRY_INTERVAL_SECONDS", default=300.0),
    },
}

# A worker keeps its database connection across tasks (Celery closes it after every task
# otherwise: a new PostgreSQL connection per task halves disbursement throughput).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BEAT_SCHEDULE["margin-withdrawal-sweeper"] = {
    "task": "integrations.margin_withdrawal_sweeper",
    "schedule": env.float("MARGIN_WITHDRAWAL_SWEEP_INTERVAL_SECONDS", default=60.0),
}
CELERY_BEAT_SCHEDULE["disbursement-sweeper"] = {
    "task": "integrations.disbursement_sweeper",
    "schedule": env.float("DISBURSEMENT_SWEEP_INTERVAL_SECONDS", default=30.0),
}

CELERY_BEAT_SCHEDULE.update(
    {
        # Hourly: each program is closed once a day, after its own local midnight.
        "lending-cob-run-due": {"task": "lending.cob_run_due", "schedule": 3600.0},
        "integrations-sweep-loan-events": {
            "task": "integrations.sweep_loan_events",
            "schedule": env.float("LOAN_EVENT_SWEEP_INTERVAL_SECONDS", default=60.0),
        },
        "integrations-dispatch-due-events": {
            "task": "integrations.dispatch_due_events",
            "schedule": env.float("OUTBOUND_EVENT_DISPATCH_INTERVAL_SECONDS", default=30.0),
        },
        "integrations-sweep-cancelled-orders": {
            "task": "integrations.sweep_cancelled_orders",
            "schedule": env.float("CANCELLED_ORDER_SWEEP_INTERVAL_SECONDS", default=300.0),
        },
        "lending-nightly-credit": {
            "task": "lending.nightly_credit",
            "schedule": crontab(hour=3, minute=30),
        },
        "integrations-import-bank-statement": {
            "task": "integrations.import_bank_statement",
            "schedule": env.float("BANK_STATEMENT_IMPORT_INTERVAL_SECONDS", default=300.0),
        },
        "integrations-send-reminders": {
            "task": "integrations.send_reminders",
            "schedule": crontab(hour=9, minute=0),
        },
        "lending-purge-idempotency-records": {
            "task": "lending.purge_idempotency_records",
            "schedule": crontab(hour=4, minute=15),
        },
    }
)
# Idempotency-Key replies are replayed for this many days, then purged (the beat task above).
IDEMPOTENCY_RETENTION_DAYS = env.int("IDEMPOTENCY_RETENTION_DAYS", default=7)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="scf-no-reply@localhost")
REMINDER_DAYS_BEFORE_DUE = env.int("REMINDER_DAYS_BEFORE_DUE", default=3)

# --- Review queue -----------------------------------------------------------------------------
# A referral is due when its hold expires (the program's review_hold_hours); a follow-up case
# (failed payment, accelerated loan) does not expire and is due this many hours after it opened.
REVIEW_FOLLOW_UP_SLA_HOURS = env.int("REVIEW_FOLLOW_UP_SLA_HOURS", default=24)

# --- Bank and disbursement --------------------------------------------------------------------
BANK_ADAPTER = env.str("BANK_ADAPTER", default="integrations.bank.sandbox.SandboxBank")
SANDBOX_BANK = env.json(
    "SANDBOX_BANK",
    default={
        "settle_delay_seconds": 0,
        "timeout_after_accept_rate": 0.0,
        "unavailable_rate": 0.0,
        "reject_rate": 0.0,
        "late_reject_rate": 0.0,
        "duplicate_reply_rate": 0.0,
        "latency_ms": 0,
        "seed": None,
    },
)
LENDER_SETTLEMENT_ACCOUNT = env.str("LENDER_SETTLEMENT_ACCOUNT", default="SCF-LENDER-0001")
DISBURSEMENT_LEASE_SECONDS = env.float("DISBURSEMENT_LEASE_SECONDS", default=60.0)
DISBURSEMENT_MAX_RETRIES = env.int("DISBURSEMENT_MAX_RETRIES", default=8)
DISBURSEMENT_RETRY_BACKOFF_SECONDS = env.float("DISBURSEMENT_RETRY_BACKOFF_SECONDS", default=2.0)
DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS = env.float(
    "DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS", default=300.0
)
DISBURSEMENT_POLL_SECONDS = env.float("DISBURSEMENT_POLL_SECONDS", default=5.0)
DISBURSEMENT_POLL_MAX_SECONDS = env.float("DISBURSEMENT_POLL_MAX_SECONDS", default=300.0)
DISBURSEMENT_SWEEP_MIN_AGE_SECONDS = env.float("DISBURSEMENT_SWEEP_MIN_AGE_SECONDS", default=60.0)
# What the sweeper has sent is left alone this long, so a backlog is not sent again at every sweep.
DISBURSEMENT_SWEEP_HOLD_SECONDS = env.float(
    "DISBURSEMENT_SWEEP_HOLD_SECONDS", default=DISBURSEMENT_SWEEP_MIN_AGE_SECONDS
)
DISBURSEMENT_SWEEP_BATCH = env.int("DISBURSEMENT_SWEEP_BATCH", default=500)
# The tasks that pay a disbursement out: queued by lending (by name, after commit), defined by the
# edge that talks to the bank (integrations/tasks.py); named here, where the project is wired.
DISBURSEMENT_TASK = "integrations.disburse_loan"
DISBURSEMENT_BATCH_TASK = "integrations.disburse_loans"
# Pays an approved margin withdrawal out (queued by lending.services.margin after commit).
MARGIN_WITHDRAWAL_TASK = "integrations.margin_withdrawal_send"
# Web processes send new payments in batches (lending.services.disbursement.payout_relay): one
# message per batch gathered within the linger time, paid one after another by one worker.
DISBURSEMENT_RELAY_LINGER_SECONDS = env.float("DISBURSEMENT_RELAY_LINGER_SECONDS", default=0.1)
DISBURSEMENT_RELAY_MAX_BATCH = env.int("DISBURSEMENT_RELAY_MAX_BATCH", default=20)

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# The cache (and the rate limits on it) gives up on a Redis that does not answer within these
# (redis-py would wait 5 s): every quote and finance click asks it once.
CACHE_CONNECT_TIMEOUT = env.float("CACHE_CONNECT_TIMEOUT", default=0.25)
CACHE_READ_TIMEOUT = env.float("CACHE_READ_TIMEOUT", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_CONNECT_TIMEOUT,
                "socket_timeout": CACHE_READ_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Request limits ---------------------------------------------------------------------------
# Bytes per request: a body above its endpoint's cap is refused with 413 before it is read
# (scf.middleware.RequestBodyLimitMiddleware); a view names its own cap in
# ``max_body_bytes_setting``, every other one has API_MAX_BODY_BYTES. Nesting: JSON deeper than
# API_JSON_MAX_DEPTH is refused with 400 before the parser recurses (scf.parsers).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)

# --- Order feed -----------------------------------------------------------------------------
ORDER_WEBHOOK_TOLERANCE_SECONDS = 300
# Work per request on every batch channel (bulk, CSV, each page of a pull feed): orders and
# order lines (CSV rows), sized so that the largest batch they allow is ingested well inside
# gunicorn's 30 s timeout and a worker's memory stays bounded (docs/reliability.md has figures).
ORDER_BULK_MAX_ROWS = env.int("ORDER_BULK_MAX_ROWS", default=10_000)
ORDER_BULK_MAX_LINES = env.int("ORDER_BULK_MAX_LINES", default=100_000)
ORDER_BULK_MAX_BYTES = env.int("ORDER_BULK_MAX_BYTES", default=16 * 1024 * 1024)
ORDER_CSV_MAX_BYTES = env.int("ORDER_CSV_MAX_BYTES", default=20 * 1024 * 1024)
# An order dated more than this many days after today (in TIME_ZONE) is refused by the feed
# and declined by the engine (``order_date_in_future``); one day covers every time zone.
ORDER_DATE_MAX_FUTURE_DAYS = env.int("ORDER_DATE_MAX_FUTURE_DAYS", default=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=50 * 1024 * 1024)

# --- Web processes ---------------------------------------------------------------------------
# scf.wsgi imports every view at start and freezes the heap for the garbage collector
# (scf.warmup): no slow first requests, no full collections over the startup heap under load.
GC_FREEZE_AT_START = env.bool("GC_FREEZE_AT_START", default=True)

# --- Logging and metrics ----------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (production default); request and task ids on every
# record, credentials redacted (scf.logging).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), fmt=LOG_FORMAT)

# GET /metrics (scf.metrics): only from these networks, and with this bearer token when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.0/8", "::1"])
METRICS_CELERY_QUEUES = env.list("METRICS_CELERY_QUEUES", default=["celery"])
