"""Settings for every environment, read from environment variables with embedded defaults.

Unset ``DATABASE_URL`` means a local SQLite file; unset ``CELERY_BROKER_URL`` means Celery runs
tasks in-process (eager). Set both and the same code runs on PostgreSQL and Redis workers.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

from scf.logging import logging_config
from scf.settings.frameworks import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: F401

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Fernet key for secrets read back (webhook secrets); derived from SECRET_KEY when unset.
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
# The hot path's machinery (docs/performance.md): statements prepared per session (off behind
# PgBouncer's transaction mode) and planned once (the scf.postgresql backend below); instances
# built without Model.__init__ (scf.hotpath.build, model_from_row; off: through it, from_db).
SCF_PREPARED_STATEMENTS = env.bool("SCF_PREPARED_STATEMENTS", default=True)
SCF_GENERIC_PLANS = env.bool("SCF_GENERIC_PLANS", default=True)
SCF_FAST_INSTANCES = env.bool("SCF_FAST_INSTANCES", default=True)
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
if IS_POSTGRES:
    DATABASES["default"]["ENGINE"] = "scf.postgresql"
    # Down or restarting, the database fails a request in seconds: bounded connect, keepalives.
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
# django-axes: AXES_FAILURE_LIMIT failures of a username from an address lock the pair out (429).
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
# Counted per REMOTE_ADDR: behind a proxy, give gunicorn the client's (--forwarded-allow-ips).

# Security headers on every response (SecurityMiddleware, XFrameOptionsMiddleware, and our CSP).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts only from our static files (no inline handlers, no eval); inline styles for gauges.
CSP_POLICY = env.str(
    "CSP_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; script-src-attr 'none'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
)

# Per-user limits on the expensive agent calls (scf.throttling): "<count>/<s|min|hour|day>".
API_RATE_LIMITS = {
    "finance": env.str("API_RATE_FINANCE", default="120/min"),
    "quote": env.str("API_RATE_QUOTE", default="600/min"),
}
# After the cache fails to answer, a process lets requests through unasked for this long.
RATE_LIMIT_CACHE_RETRY_SECONDS = env.float("RATE_LIMIT_CACHE_RETRY_SECONDS", default=1.0)

# --- Bank files (integrations.bank.files, docs/bank-files.md) ---------------------------------
_BANK_FILES_ROOT = BASE_DIR / "var" / "bankfiles"

# Which rail each bank uses, by bank code: "sandbox" (the in-process API sandbox, the default for
# a bank not listed) or "files" (pain.001 out, pain.002/camt in, through the directories below).
BANK_RAILS = env.json("BANK_RAILS", default={})
# Per bank a subdirectory named by its code: we write pain.001 files to OUTBOUND/<code>/, the
# bank's host-to-host link drops pain.002/camt files in INBOUND/<code>/. Imported files move to
# INBOUND/<code>/processed/, refused ones to INBOUND/<code>/quarantine/.
BANK_FILES_OUTBOUND_DIR = env.str(
    "BANK_FILES_OUTBOUND_DIR", default=str(_BANK_FILES_ROOT / "outbound")
)
BANK_FILES_INBOUND_DIR = env.str(
    "BANK_FILES_INBOUND_DIR", default=str(_BANK_FILES_ROOT / "inbound")
)
# Inbound files over this size are quarantined unread; raise it for accounts with very large
# statements (a 100,000-entry camt.053 is about 120 MB).
BANK_FILES_MAX_BYTES = env.int("BANK_FILES_MAX_BYTES", default=32 * 1024 * 1024)
# The name we write as the initiating party and debtor of every pain.001.
BANK_FILES_INITIATING_PARTY = env.str("BANK_FILES_INITIATING_PARTY", default="SCF Platform")
BANK_FILES_BEAT: dict[str, dict[str, object]] = {
    # One cycle: export the queued payments, import what the banks delivered.
    "integrations-bank-files-cycle": {
        "task": "integrations.bank_files_cycle",
        "schedule": env.int("BANK_FILES_CYCLE_SECONDS", default=60),
    },
    # Yesterday's statements against the book, every morning (after the end-of-day files).
    "integrations-bank-reconcile": {
        "task": "integrations.bank_reconcile",
        "schedule": crontab(hour=6, minute=0),
    },
}

# --- Celery -----------------------------------------------------------------------------------
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
# A hung broker costs a publish at most these per attempt (kombu's Redis transport would wait
# forever); publishing connections (scf.celery.App) and the queue-depth metric.
BROKER_CONNECT_TIMEOUT = env.float("BROKER_CONNECT_TIMEOUT", default=0.5)
BROKER_READ_TIMEOUT = env.float("BROKER_READ_TIMEOUT", default=0.5)
# GET /healthz waits this long for the broker (scf.health), then reports it "degraded".
HEALTH_CHECK_BROKER_TIMEOUT = env.float("HEALTH_CHECK_BROKER_TIMEOUT", default=0.5)
# A worker keeps its database connection across tasks, not a new one per task (Celery's default).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)


def _every(task: str, interval_env: str, seconds: float) -> dict[str, object]:
    return {"task": task, "schedule": env.float(interval_env, default=seconds)}


def _daily(task: str, hour: int, minute: int) -> dict[str, object]:
    return {"task": task, "schedule": crontab(hour=hour, minute=minute)}


CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    **BANK_FILES_BEAT,
    "orders-pull-feeds": _every(
        "integrations.pull_order_feeds", "ORDER_PULL_INTERVAL_SECONDS", 60.0
    ),
    "lending-expire-reviews": _every(
        "lending.expire_reviews", "REVIEW_EXPIRY_INTERVAL_SECONDS", 300.0
    ),
    "disbursement-sweeper": _every(
        "integrations.disbursement_sweeper", "DISBURSEMENT_SWEEP_INTERVAL_SECONDS", 30.0
    ),
    "margin-withdrawal-sweeper": _every(
        "integrations.margin_withdrawal_sweeper", "MARGIN_WITHDRAWAL_SWEEP_INTERVAL_SECONDS", 60.0
    ),
    # Hourly: each program is closed once a day, after its own local midnight.
    "lending-cob-run-due": {"task": "lending.cob_run_due", "schedule": 3600.0},
    "integrations-sweep-loan-events": _every(
        "integrations.sweep_loan_events", "LOAN_EVENT_SWEEP_INTERVAL_SECONDS", 60.0
    ),
    "integrations-dispatch-due-events": _every(
        "integrations.dispatch_due_events", "OUTBOUND_EVENT_DISPATCH_INTERVAL_SECONDS", 30.0
    ),
    "integrations-sweep-cancelled-orders": _every(
        "integrations.sweep_cancelled_orders", "CANCELLED_ORDER_SWEEP_INTERVAL_SECONDS", 300.0
    ),
    "lending-nightly-credit": _daily("lending.nightly_credit", 3, 30),
    "integrations-import-bank-statement": _every(
        "integrations.import_bank_statement", "BANK_STATEMENT_IMPORT_INTERVAL_SECONDS", 300.0
    ),
    "integrations-send-reminders": _daily("integrations.send_reminders", 9, 0),
    "lending-purge-idempotency-records": _daily("lending.purge_idempotency_records", 4, 15),
}
# Idempotency-Key replies are replayed for this many days, then purged (the beat task above).
IDEMPOTENCY_RETENTION_DAYS = env.int("IDEMPOTENCY_RETENTION_DAYS", default=7)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="scf-no-reply@localhost")
REMINDER_DAYS_BEFORE_DUE = env.int("REMINDER_DAYS_BEFORE_DUE", default=3)
# Outbound webhooks (integrations.events): per delivery timeout, attempts, backoff between them.
OUTBOUND_EVENT_TIMEOUT_SECONDS = env.float("OUTBOUND_EVENT_TIMEOUT_SECONDS", default=5.0)
OUTBOUND_EVENT_MAX_ATTEMPTS = env.int("OUTBOUND_EVENT_MAX_ATTEMPTS", default=10)
OUTBOUND_EVENT_BACKOFF_SECONDS = env.float("OUTBOUND_EVENT_BACKOFF_SECONDS", default=30.0)
OUTBOUND_EVENT_BACKOFF_MAX_SECONDS = env.float(
    "OUTBOUND_EVENT_BACKOFF_MAX_SECONDS", default=6 * 3600.0
)
# A follow-up case (failed payment, accelerated loan) is due this many hours after it opened.
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
# The payment tasks lending queues by name and integrations/tasks.py defines: wired here.
DISBURSEMENT_TASK = "integrations.disburse_loan"
DISBURSEMENT_BATCH_TASK = "integrations.disburse_loans"
# Pays an approved margin withdrawal out (queued by lending.services.margin after commit).
MARGIN_WITHDRAWAL_TASK = "integrations.margin_withdrawal_send"
# Web processes send new payments in batches gathered within the linger time (scf.task_relay).
DISBURSEMENT_RELAY_LINGER_SECONDS = env.float("DISBURSEMENT_RELAY_LINGER_SECONDS", default=0.1)
DISBURSEMENT_RELAY_MAX_BATCH = env.int("DISBURSEMENT_RELAY_MAX_BATCH", default=20)

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# The cache and its rate limits give up on a Redis silent this long (redis-py would wait 5 s).
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

# --- Request limits and the order feed --------------------------------------------------------
# A body above its endpoint's cap (a view's ``max_body_bytes_setting``, else API_MAX_BODY_BYTES) is
# refused with 413 before it is read; JSON deeper than API_JSON_MAX_DEPTH with 400 (scf.parsers).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
ORDER_WEBHOOK_TOLERANCE_SECONDS = 300
# Caps per batch on every channel (bulk, CSV, a pull page): the largest is ingested well inside
# gunicorn's 30 s timeout, in bounded memory (docs/reliability.md).
ORDER_BULK_MAX_ROWS = env.int("ORDER_BULK_MAX_ROWS", default=10_000)
ORDER_BULK_MAX_LINES = env.int("ORDER_BULK_MAX_LINES", default=100_000)
ORDER_BULK_MAX_BYTES = env.int("ORDER_BULK_MAX_BYTES", default=16 * 1024 * 1024)
ORDER_CSV_MAX_BYTES = env.int("ORDER_CSV_MAX_BYTES", default=20 * 1024 * 1024)
# Orders dated further ahead of today (TIME_ZONE) are refused by the feed, declined by the engine.
ORDER_DATE_MAX_FUTURE_DAYS = env.int("ORDER_DATE_MAX_FUTURE_DAYS", default=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=50 * 1024 * 1024)

# --- Web processes, logging and metrics -------------------------------------------------------
# scf.wsgi imports every view at start and freezes the startup heap for the GC (scf.warmup).
GC_FREEZE_AT_START = env.bool("GC_FREEZE_AT_START", default=True)
# LOG_FORMAT=json: one JSON object per line (production); ids and redaction in scf.logging.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), fmt=LOG_FORMAT)

# GET /metrics (scf.metrics): only from these networks, and with this bearer token when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.0/8", "::1"])
METRICS_CELERY_QUEUES = env.list("METRICS_CELERY_QUEUES", default=["celery"])
