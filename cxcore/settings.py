"""One settings module for every environment; everything that differs comes from the environment.

The embedded default (no environment at all) is a debug server on SQLite with a filesystem Celery
broker, so `make run` works on a bare laptop. Production sets DEBUG=false, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COMEBACK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: no CDN needed
    "axes",
    "csp",  # django-csp: its checks and the nonce; the policy is CONTENT_SECURITY_POLICY
    "accounts",
    "cxcore",
    "recovery",
    "connectors",
    "webhooks",
    "imports",
    "partners",
]

MIDDLEWARE = [
    # Outermost, so every answer carries them: /healthz, static files, refusals, error pages.
    "cxcore.headers.SecurityHeadersMiddleware",
    "cxcore.headers.ContentSecurityPolicyMiddleware",
    "cxcore.middleware.HealthCheckMiddleware",
    # Early, so every answer below it (a refused body, a 404) carries the request's id.
    "cxcore.middleware.RequestIdMiddleware",
    # Each request one unit of work for the read replicas (a no-op without any).
    "cxcore.middleware.ReplicaUnitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "cxcore.middleware.ApiBodyLimitMiddleware",
    "cxcore.middleware.RateLimitHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.sessions.SessionIdleMiddleware",
    # request.device: the paired till, from its cookie (no query without one).
    "accounts.devices_middleware.DeviceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a refused login into the login page saying when to try again.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cxcore.urls"
WSGI_APPLICATION = "cxcore.wsgi.application"

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
                "accounts.context_processors.tenant",
                "csp.context_processors.nonce",  # CSP_NONCE, for <script src=… nonce=…>
            ],
        },
    },
]

# SQLite is the embedded default; DATABASE_URL=postgres://… switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'comeback.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (web + worker) wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False

# Behind a transaction pooler: DATABASE_POOLER=pgbouncer, with DATABASE_URL at PgBouncer in
# pool_mode=transaction. Each transaction may then run on another server connection, so nothing
# a connection leaves on the server may be needed by its next transaction:
# - Django's .iterator() outside a transaction declares a WITH HOLD cursor and fetches from it
#   in later statements: rows are fetched client-side instead (every .iterator() the web and
#   the workers run reads a bounded batch).
# - psycopg prepares a statement it runs often (prepare_threshold) on the server connection,
#   where the next transaction would not find it. Django's client-side-binding cursors never
#   prepare; this also holds for a raw psycopg cursor. (PgBouncer 1.21+ can track protocol-level
#   prepared statements, max_prepared_statements; Debian 12 ships 1.18.)
# - Imports keep a TEMP staging table and a session advisory lock across their chunks'
#   transactions: they go to their own Celery queue (IMPORT_QUEUE, below), served by a worker
#   whose DATABASE_URL is PostgreSQL itself, and refuse to run behind the pooler.
# CONN_MAX_AGE stays: a client connection held open costs PgBouncer next to nothing and saves a
# connect per request; the pooler shares its few server connections between all of them.
DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "")
if DATABASE_POOLER:
    if DATABASE_POOLER != "pgbouncer":
        raise ImproperlyConfigured(f"DATABASE_POOLER={DATABASE_POOLER!r}: only pgbouncer is known.")
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOLER needs DATABASE_URL=postgres://… (PgBouncer).")
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "prepare_threshold": None,
    }
# The queue of the import task; by default its own one behind a pooler, else Celery's default.
IMPORT_QUEUE = os.environ.get("IMPORT_QUEUE", "imports" if DATABASE_POOLER else "")
CELERY_TASK_ROUTES = (
    {"imports.tasks.run_import_batch_task": {"queue": IMPORT_QUEUE}} if IMPORT_QUEUE else {}
)

# Read replicas (cxcore.db_router): DATABASE_REPLICA_URL=postgres://…[,postgres://…] adds the
# aliases `replica`, `replica_2`, … with the primary's connection options (this block comes
# after every block that shapes the primary's connection, so the replicas get them too). Reads
# go to a replica only inside `replica_reads()`, and never once the request or task wrote.
_replica_urls = env_list("DATABASE_REPLICA_URL", "")
if _replica_urls and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL=postgres://… too.")
for _number, _url in enumerate(_replica_urls, start=1):
    _where = dj_database_url.parse(_url)
    if _where["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL: {_url!r} is not a postgres:// URL.")
    DATABASES["replica" if _number == 1 else f"replica_{_number}"] = {
        **DATABASES["default"],
        "NAME": _where["NAME"],
        "USER": _where["USER"],
        "PASSWORD": _where["PASSWORD"],
        "HOST": _where["HOST"],
        "PORT": _where["PORT"],
        "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
        # Tests run against the primary's test database alone: the replica alias mirrors it.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["cxcore.db_router.ReplicaRouter"]
# A browser that posted reads from the primary this long (its redirect shows its own change).
REPLICA_PIN_SECONDS = int(os.environ.get("REPLICA_PIN_SECONDS", "15"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customer-search"
LOGOUT_REDIRECT_URL = "login"

# Login lockout (django-axes, its attempts in the database): LOGIN_FAILURE_LIMIT wrong passwords
# for one email from one client address lock that pair for 15 minutes. Email and address
# together: a cafe's tills share an address, so neither one's typos nor another email's lock
# anyone else. Lifted by `manage.py unlock_login EMAIL` or by deleting the attempt in the admin.
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
# Credential stuffing: this many failures from one address in the cool-off, whatever the
# emails, lock the address (accounts.lockout). Ten times the per-email limit, so ten people at
# one cafe's tills may each nearly lock themselves before the tills are locked.
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "50"))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.lockout.username_of"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False  # failures are still logged, with the email and address only
# Behind a proxy that writes X-Forwarded-For (Caddy in docker-compose), the client's address is
# its last entry; exposed directly, a client could write any address there.
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)

# A session ends SESSION_IDLE_MINUTES after its last request (accounts.sessions).
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "720"))
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True  # stored in UTC, shown in the location's time zone

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, even before collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Called with organization=… when an organization is created, in the same transaction.
ORGANIZATION_SETUP_HOOKS = ["recovery.services.create_default_playbooks"]


# The cache every process shares: API throttle counters. CACHE_URL=redis://host:6379/1 in
# production (docker-compose); the embedded default is a table in the database, made by
# `migrate` (see accounts.apps), so `make run` needs no server.
def cache_from_url(url: str) -> dict[str, object]:
    scheme, _, rest = url.partition("://")
    if scheme in ("redis", "rediss"):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            # A hung Redis costs a request this long, then the throttle lets it through.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    if scheme == "db":
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": rest}
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": rest}
    raise ImproperlyConfigured(f"CACHE_URL must be redis://, db://TABLE or locmem://, not {url!r}")


CACHES = {"default": cache_from_url(os.environ.get("CACHE_URL", "db://comeback_cache"))}

# API throttles per API key and per signed-in user (cxcore.api.throttling); "off" turns one off.
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "1200/min")
API_BULK_THROTTLE_RATE = os.environ.get("API_BULK_THROTTLE_RATE", "60/min")

# API bodies above this answer 413 before any parsing (documented in the README).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES + 1024
# Customer and history imports (imports app): uploads are stored here and streamed by a
# worker; a file above IMPORT_MAX_UPLOAD_MB is refused naming `file`. Upload bodies above
# FILE_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MB default) go to a temporary file, never memory.
IMPORT_UPLOAD_DIR = Path(os.environ.get("IMPORT_UPLOAD_DIR", VAR_DIR / "imports"))
IMPORT_MAX_UPLOAD_MB = int(os.environ.get("IMPORT_MAX_UPLOAD_MB", "100"))
# Kept at least 72 hours whatever is configured: POS systems retry after outages that long.
IDEMPOTENCY_KEY_TTL = timedelta(
    hours=max(72, int(os.environ.get("IDEMPOTENCY_KEY_TTL_HOURS", "168")))
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.tenancy.IsTenantMember"],
    "DEFAULT_PARSER_CLASSES": ["cxcore.api.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "cxcore.api.schema.ThrottledAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "cxcore.api.throttling.ApiRateThrottle",
        "cxcore.api.throttling.BulkRateThrottle",
    ],
    "EXCEPTION_HANDLER": "cxcore.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Comeback API",
    "DESCRIPTION": (
        "Customer narrative and recovery API for POS and booking systems. "
        "Authenticate with `Authorization: Api-Key <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EpisodeKindEnum": "cxcore.vocabulary.EpisodeKind",
        "IdentifierKindEnum": "cxcore.vocabulary.IdentifierKind",
        "CaseKindEnum": "recovery.models.CaseKind",
        "CaseStatusEnum": "recovery.models.CaseStatus",
        "TouchpointEnum": "cxcore.vocabulary.Touchpoint",
        "SourceEnum": "cxcore.vocabulary.Source",
        "IncidentStatusEnum": "partners.vocabulary.IncidentStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from validator.swagger.io: it would send our schema's URL away, and the policy
    # (img-src 'self') refuses it anyway.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# Celery: a broker that needs no server by default (filesystem), Redis in production.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # No task uses a countdown or ETA, so nothing outlives the visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "socket_timeout": 3,
        "socket_connect_timeout": 3,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Work lost with a worker is redelivered; a stuck task is stopped; a dead broker is noticed fast.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How often beat runs the sweeps (DESIGN.md: every minute); tests run them faster.
SWEEP_EVERY = timedelta(seconds=float(os.environ.get("SWEEP_EVERY_SECONDS", "60")))
# /readyz fails when a sweep last finished longer ago than this, or when more customers than
# READY_MAX_OVERDUE have been due for that long (the sweeps are not keeping up).
READY_SWEEP_MAX_AGE = timedelta(
    seconds=float(os.environ.get("READY_SWEEP_MAX_AGE_SECONDS", str(5 * SWEEP_EVERY.seconds)))
)
READY_MAX_OVERDUE = int(os.environ.get("READY_MAX_OVERDUE", "0"))
READY_BROKER_TIMEOUT = float(os.environ.get("READY_BROKER_TIMEOUT_SECONDS", "2"))
# Customers per sweep transaction: bounds lock time and a killed worker's lost work.
SWEEP_BATCH_SIZE = int(os.environ.get("SWEEP_BATCH_SIZE", "1000"))
# Outbound webhooks (the webhooks app). Private, loopback and link-local targets (and http)
# only when this is on: development and tests, never production.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_DELIVER_EVERY = timedelta(
    seconds=float(os.environ.get("WEBHOOK_DELIVER_EVERY_SECONDS", "5"))
)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Each expires before its next run, so a backlog cannot stack sweeps.
    **{
        name: {
            "task": f"recovery.tasks.{task}",
            "schedule": SWEEP_EVERY,
            "options": {"expires": SWEEP_EVERY.total_seconds() * 0.9},
        }
        for name, task in (
            ("sweep-recovery", "sweep_recovery_task"),
            ("sweep-care", "sweep_care_task"),
            ("escalate-overdue", "escalate_overdue_task"),
            ("remind-reservations", "remind_reservations_task"),
        )
    },
    "daily-digests": {
        "task": "recovery.tasks.send_daily_digests_task",
        "schedule": crontab(
            minute=5
        ),  # hourly: each recipient's 7 o'clock comes at a different UTC hour
        "options": {"expires": 50 * 60},
    },
    "measure-outcomes": {
        "task": "recovery.tasks.measure_outcomes_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 50 * 60},
    },
    "reconcile": {
        "task": "recovery.tasks.reconcile_task",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 6 * 3600},
    },
    "purge-idempotency-keys": {
        "task": "cxcore.tasks.purge_idempotency_keys_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 50 * 60},
    },
    # Free text past each organization's text_retention_days (off unless set), at night.
    "clear-old-text": {
        "task": "cxcore.tasks.clear_old_text_task",
        "schedule": crontab(hour=2, minute=40),
        "options": {"expires": 6 * 3600},
    },
    # Imports: stale uploads and old rejected rows deleted, batches the broker missed re-asked.
    "tidy-imports": {
        "task": "imports.tasks.tidy_imports_task",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 240},
    },
    # Webhooks due now (retries, and anything a lost after-commit request left), every few
    # seconds; each run expires before the next, so a backlog cannot stack runs.
    "deliver-webhooks": {
        "task": "webhooks.tasks.deliver_webhooks_task",
        "schedule": WEBHOOK_DELIVER_EVERY,
        "options": {"expires": WEBHOOK_DELIVER_EVERY.total_seconds() * 0.9},
    },
    "purge-webhook-log": {
        "task": "webhooks.tasks.purge_webhook_log_task",
        "schedule": crontab(hour=4, minute=10),
        "options": {"expires": 6 * 3600},
    },
}

# Every read of a customer's data writes a read-audit row (cxcore.audit). Only the benchmark
# turns it off, to measure what it costs; it is not read from the environment on purpose.
READ_AUDIT = True
# Rows per transaction when retention clears old free text (cxcore.retention).
RETENTION_BATCH_SIZE = 500

# Absolute links in emails.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Self-serve sign-up at /accounts/signup/. On a private install SIGNUP_OPEN=false closes it
# once the first organization exists.
SIGNUP_OPEN = env_bool("SIGNUP_OPEN", True)
# Sign-up posts per client address per window (accounts.services.signup); 0 turns it off.
SIGNUP_RATE_LIMIT = int(os.environ.get("SIGNUP_RATE_LIMIT", "10"))
SIGNUP_RATE_WINDOW_SECONDS = 3600


def email_from_url(url: str) -> dict[str, object]:
    """The EMAIL_* settings that EMAIL_URL names (parsed by dj-email-url):
    `smtp://user:pass@host:587?tls=true` (or `submission://…`, STARTTLS on 587), `console:`
    (printed to the log: `make run`'s default), `file:///path/to/dir` (one file per message).
    An unknown scheme stops start-up rather than dropping mail quietly."""
    import urllib.parse

    import dj_email_url  # type: ignore[import-untyped]

    conf = dj_email_url.parse(url)
    if "EMAIL_BACKEND" not in conf:
        raise ImproperlyConfigured(
            f"EMAIL_URL must be smtp://, submission://, console: or file:///dir, not {url!r}"
        )
    if url.startswith("file:"):
        # dj-email-url drops the path's leading slash (file:///tmp/mail → tmp/mail).
        conf["EMAIL_FILE_PATH"] = urllib.parse.urlparse(url).path
        if not conf["EMAIL_FILE_PATH"]:
            raise ImproperlyConfigured("EMAIL_URL=file:///dir needs the directory.")
    return conf


# One variable says where email goes. EMAIL_BACKEND is not read: set alone, it would leave
# mail on the console unnoticed, so it stops start-up and names its replacement.
if "EMAIL_BACKEND" in os.environ and "EMAIL_URL" not in os.environ:
    raise ImproperlyConfigured(
        "EMAIL_BACKEND is not read: set EMAIL_URL (smtp://user:pass@host:587?tls=true, "
        "console: or file:///dir) instead."
    )
EMAIL_URL = os.environ.get("EMAIL_URL", "console:")
_email = email_from_url(EMAIL_URL)
EMAIL_BACKEND = str(_email["EMAIL_BACKEND"])
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = bool(_email["EMAIL_USE_TLS"])
EMAIL_USE_SSL = bool(_email["EMAIL_USE_SSL"])
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 10  # a hung server must not hold a worker for ever
if _email.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", str(_email.get("DEFAULT_FROM_EMAIL") or "comeback@localhost")
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# A POS that embeds the till sidebar in an iframe needs the session cookie in a third-party
# context: COOKIE_SAMESITE=None (HTTPS only). The default keeps cookies first-party.
SESSION_COOKIE_SAMESITE = os.environ.get("COOKIE_SAMESITE", "Lax")
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE

# Content-Security-Policy (django-csp) on every answer: our own origin only; scripts and styles
# from our static files (or carrying the answer's nonce), never inline, never eval; no plugins;
# nothing may frame a page but the till, whose frame-ancestors add the owner's POS origins
# (recovery.views.till). With DEBUG on, django-csp leaves 404 and 500 alone so Django's debug
# pages (inline styles and scripts) still work.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # data: for Swagger UI's and the admin's icons
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": "/csp-report/",  # cxcore.csp_reports (a literal: reverse_lazy costs ~1 ms)
    }
}
# Reports logged per minute, at most (the rest are taken and dropped): anyone may post them.
CSP_VIOLATIONS_LOGGED_PER_MINUTE = int(os.environ.get("CSP_VIOLATIONS_LOGGED_PER_MINUTE", "60"))
# Browser features no page of ours uses, refused for it and any frame in it.
PERMISSIONS_POLICY = {
    feature: ()
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# Production hardening: `manage.py check --deploy` is clean when DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    if env_bool("TRUST_X_FORWARDED_PROTO", False):
        # Only behind a proxy that sets it; exposed directly, a client could claim HTTPS.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # runserver's access log never prints a lookup's query (phones, emails): cxcore.access_log.
    "filters": {"redact_lookups": {"()": "cxcore.access_log.RedactLookupQueries"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.server": {
            "handlers": ["console"],
            "filters": ["redact_lookups"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
