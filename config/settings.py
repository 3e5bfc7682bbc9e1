"""Settings for Harry's Club Presale. Everything comes from the environment; with nothing set,
the project runs on its embedded defaults (SQLite, localstripe, an in-app email outbox)."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.beat_schedule import beat_schedule
from config.csp import csp_policy
from config.email_settings import anymail_settings, email_backend
from config.env import (
    env_bool,
    env_int,
    env_list,
    env_required_in_production,
    env_secret,
    env_str,
)
from config.logging_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# "development" (the default: laptop, demo, tests) or "production".
DJANGO_ENV = env_str("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ValueError("DJANGO_ENV must be 'development' or 'production'.")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
# Production refuses to start without a real key; development gets a fixed, clearly fake one.
SECRET_KEY = env_secret(
    "DJANGO_SECRET_KEY",
    production=PRODUCTION,
    development_default="dev-only-insecure-key-" + "x" * 40,
)
# Behind a TLS-terminating reverse proxy (the production default), which sets X-Forwarded-Proto
# and appends the client's address to X-Forwarded-For.
BEHIND_PROXY = PRODUCTION and env_bool("DJANGO_BEHIND_PROXY", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set the environment variable DJANGO_ALLOWED_HOSTS (production).")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Absolute base URL used in emails (invite links, ticket links).
SITE_URL = env_required_in_production(
    "SITE_URL", production=PRODUCTION, default="http://127.0.0.1:8000"
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "members",
    "events",
    "preorders",
    "payments",
    "notifications",
    "tickets",
    "operations",
    "demo",
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "config.middleware.PrivatePagesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # Serves the collected, hashed static files; in development runserver serves them.
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "events.context_processors.presale_cycle",
                "operations.context_processors.staff_alerts",
            ],
        },
    },
    {
        # Plain-text emails: the same templates folder, without HTML escaping.
        "NAME": "text",
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"autoescape": False},
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_required_in_production(
            "DATABASE_URL",
            production=PRODUCTION,
            default=f"sqlite:///{BASE_DIR / 'var' / 'presale.sqlite3'}",
        ),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # var/ is not in git: a fresh clone must still find a folder for the database file.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers proceed while one writer commits; IMMEDIATE takes the write lock at the
    # start of a transaction so concurrent writers queue instead of failing mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Tests use a file too (not the in-memory default): the charge run's threads and the live
    # server need real locking, which SQLite's shared in-memory cache does not give.
    # One file per test process, so two suites run side by side do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
else:
    # One test database per test process, so two suites run side by side never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

# The cache holds the sign-in throttle's counters. Locmem is per process: with several web
# processes (gunicorn workers, machines) set REDIS_URL so they share one count.
# Production needs it: without it, each process would count sign-ins alone and the broker
# would be a folder on one machine.
_cache_url = env_required_in_production("REDIS_URL", production=PRODUCTION, default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "members.Member"
LOGIN_URL = "members:login"
LOGIN_REDIRECT_URL = "preorders:dashboard"
LOGOUT_REDIRECT_URL = "members:login"
# Sign-in throttling (members/throttling.py): after this many failed sign-ins for one email, or
# from one IP, within a fixed window, further attempts are refused (429) until the window ends.
# Password-reset requests are limited the same way, per IP and per address. 0 attempts: off.
LOGIN_THROTTLE_ATTEMPTS = env_int("LOGIN_THROTTLE_ATTEMPTS", 5)
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900)
# How many reverse proxies of ours append the client's address to X-Forwarded-For. 0: the header
# is ignored (anyone can write it) and the throttle counts by REMOTE_ADDR. Behind a proxy the
# default is 1: REMOTE_ADDR is then the proxy's, and counting by it would lock everyone out.
LOGIN_THROTTLE_PROXY_COUNT = env_int("LOGIN_THROTTLE_PROXY_COUNT", 1 if BEHIND_PROXY else 0)

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ["email", "full_name"]},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads (CSV of emails or ticket codes) are small; refuse anything bigger early.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if BEHIND_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Stripe -------------------------------------------------------------------------------
# No key set means the embedded default: localstripe on 127.0.0.1 (see devtools/localstripe_server).
LOCALSTRIPE_URL = env_str("LOCALSTRIPE_URL", "http://127.0.0.1:8420").rstrip("/")
# Production takes every Stripe value from the environment and refuses empty or development
# ones: an empty key must never quietly select localstripe and its public webhook secret.
_stripe_key = (
    env_secret("STRIPE_SECRET_KEY", production=True, development_default="")
    if PRODUCTION
    else env_str("STRIPE_SECRET_KEY", "")
)
STRIPE_USES_LOCALSTRIPE = not _stripe_key
STRIPE_SECRET_KEY = _stripe_key or "sk_test_localstripe"
# Events and PaymentIntents carry `livemode`; only those of the key's own mode are settled.
STRIPE_LIVEMODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
STRIPE_PUBLISHABLE_KEY = env_secret(
    "STRIPE_PUBLISHABLE_KEY", production=PRODUCTION, development_default="pk_test_localstripe"
)
STRIPE_API_BASE = env_str("STRIPE_API_BASE", LOCALSTRIPE_URL if STRIPE_USES_LOCALSTRIPE else "")
STRIPE_JS_URL = env_str(
    "STRIPE_JS_URL",
    f"{LOCALSTRIPE_URL}/js.stripe.com/v3/"
    if STRIPE_USES_LOCALSTRIPE
    else "https://js.stripe.com/v3/",
)
STRIPE_WEBHOOK_SECRET = env_secret(
    "STRIPE_WEBHOOK_SECRET",
    production=PRODUCTION,
    development_default="whsec_localstripe_dev" if STRIPE_USES_LOCALSTRIPE else "",
)
if not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured("Set STRIPE_WEBHOOK_SECRET with STRIPE_SECRET_KEY.")
# Prefixes every idempotency key and charge_key, so two installations (say staging and
# production) on one Stripe account never replay or settle each other's charges. Unset, each
# database generates its own once (payments.installation).
PRESALE_INSTALLATION_ID = env_str("PRESALE_INSTALLATION_ID", "")
# "task": each webhook hands its event to a Celery task at once (lowest latency). "polled": the
# request only verifies and stores; a beat task handles stored events every two seconds, which
# takes the broker off the request path (for very high webhook rates).
STRIPE_WEBHOOK_PROCESSING = env_str("STRIPE_WEBHOOK_PROCESSING", "task")
if STRIPE_WEBHOOK_PROCESSING not in {"task", "polled"}:
    raise ValueError("STRIPE_WEBHOOK_PROCESSING must be 'task' or 'polled'.")
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 30)

# --- Email --------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Harry's Club <tickets@harrys.club>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where members write to the club: the last line of every email, and its Reply-To.
CLUB_CONTACT_EMAIL = env_str("CLUB_CONTACT_EMAIL", "members@harrys.club")
EMAIL_PROVIDER, MAILERS = email_backend(production=PRODUCTION)
ANYMAIL = anymail_settings(production=PRODUCTION, provider=EMAIL_PROVIDER)

# --- The presale ----------------------------------------------------------------------------
PRESALE_TIME_ZONE = "Europe/London"
# The weekly schedule, in London wall-clock time. The window closes at the end of the second
# given (SUN 23:59:59 means it is open for all of that second and closed at Monday 00:00).
PRESALE_WINDOW_OPENS = env_str("PRESALE_WINDOW_OPENS", "MON 00:00")
PRESALE_WINDOW_CLOSES = env_str("PRESALE_WINDOW_CLOSES", "SUN 23:59:59")
PRESALE_CHARGE_AT = env_str("PRESALE_CHARGE_AT", "TUE 19:00")
# Club-wide member discount, used by events that do not set their own.
PRESALE_DEFAULT_DISCOUNT_PERCENT = env_int("PRESALE_DEFAULT_DISCOUNT_PERCENT", 10)
# Auto-fulfil every event (each with its own mode) when the review ends, before charging.
PRESALE_AUTO_FULFIL = env_bool("PRESALE_AUTO_FULFIL", False)
# A bank asking for authentication off-session: on, the member is asked to confirm on-session
# until the deadline (this many days later, at this London time); off, the pre-order fails at
# once (the brief's "failed = cancel").
PRESALE_AUTHENTICATION_RECOVERY = env_bool("PRESALE_AUTHENTICATION_RECOVERY", True)
PRESALE_AUTHENTICATION_DEADLINE_DAYS = env_int("PRESALE_AUTHENTICATION_DEADLINE_DAYS", 1)
PRESALE_AUTHENTICATION_DEADLINE_TIME = env_str("PRESALE_AUTHENTICATION_DEADLINE_TIME", "12:00")
# Pre-orders still pending when decisions lock: on, they are waitlisted and promoted to freed
# places until the event's public sale or the cut-off (the first such London time after the
# charge run); off, they are not allocated at once.
PRESALE_WAITLIST = env_bool("PRESALE_WAITLIST", True)
PRESALE_WAITLIST_CUTOFF = env_str("PRESALE_WAITLIST_CUTOFF", "WED 12:00")
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 14)

# --- Background work (Celery) -------------------------------------------------------------
_broker = env_str("CELERY_BROKER_URL", env_str("REDIS_URL", ""))
# The filesystem transport ignores the host; naming one spares kombu's "No hostname" warning.
CELERY_BROKER_URL = _broker or "filesystem://localhost/"
if not _broker:
    # Its own folder for a benchmark or a second checkout's demo (the default: var/celery).
    _queue_dir = Path(env_str("PRESALE_QUEUE_DIR", str(BASE_DIR / "var" / "celery")))
    # var/ is not in git: a fresh clone must still find the broker's folders.
    for _folder in ("queue", "processed", "control"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        # Broadcast messages (worker control); kombu's default is ./control in the cwd.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
        # kombu sleeps this long whenever the folder is empty; its 1 s default held a worker to
        # about 4 tasks a second (ticket emails minutes after a run). A listdir costs little.
        "polling_interval": 0.1,
    }
else:
    # Redis: a task not acknowledged within this time is given to another worker. Longer than
    # the longest task (a charge run batch), so a slow task is not run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "Europe/London"
CELERY_ENABLE_UTC = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task for another
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Processes of one worker (each runs one task at a time; the charge run has its own threads).
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 4)
# How many charges go out at once, and how many PaymentIntents a second (Stripe allows 25/s per
# endpoint; stay just under it).
CHARGE_CONCURRENCY = env_int("CHARGE_CONCURRENCY", 24)
CHARGE_RATE_PER_SECOND = env_int("CHARGE_RATE_PER_SECOND", 24)
# A charge attempt with no answer for this long is settled by asking Stripe.
CHARGE_STALE_AFTER_SECONDS = env_int("CHARGE_STALE_AFTER_SECONDS", 180)
# The run fans out over this many Celery tasks ("shards"), each claiming and charging on any
# worker process, on any machine; together they share one pace held in Redis.
CHARGE_RUN_WORKERS = env_int("CHARGE_RUN_WORKERS", 4 if _broker else 1)
CHARGE_RATE_LIMIT_URL = env_str("CHARGE_RATE_LIMIT_URL", env_str("REDIS_URL", ""))
CHARGE_RATE_LIMIT_KEY = env_str("CHARGE_RATE_LIMIT_KEY", "presale-charge-rate")
# A run whose heartbeat is older than this is interrupted (its worker died): the catch-up, every
# CHARGE_CATCH_UP_SECONDS, starts another that settles and finishes its work.
CHARGE_RUN_STALE_SECONDS = env_int("CHARGE_RUN_STALE_SECONDS", 60)
CHARGE_CATCH_UP_SECONDS = env_int("CHARGE_CATCH_UP_SECONDS", 60)
# Beat fires the run at the charge time by its own clock; a worker whose clock is behind by up
# to this much still treats it as due.
CHARGE_CLOCK_TOLERANCE_SECONDS = env_int("CHARGE_CLOCK_TOLERANCE_SECONDS", 60)
# How often beat records that it is alive (operations/heartbeat.py).
BEAT_HEARTBEAT_SECONDS = 30
CELERY_BEAT_SCHEDULE = beat_schedule(
    charge_at=PRESALE_CHARGE_AT,
    catch_up_seconds=CHARGE_CATCH_UP_SECONDS,
    heartbeat_seconds=BEAT_HEARTBEAT_SECONDS,
    webhook_processing=STRIPE_WEBHOOK_PROCESSING,
)
# /readyz turns red when beat's heartbeat is older than this.
READYZ_BEAT_MAX_AGE_SECONDS = env_int("READYZ_BEAT_MAX_AGE_SECONDS", 120)

# --- Logs -----------------------------------------------------------------------------------
# Production: one JSON object per line, each with the request id and, where known, the
# pre-order and charge attempt. Development: plain lines. One access line per request, from
# config.middleware (gunicorn's own access log stays off; runserver prints its own instead).
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'plain'.")
PRESALE_ACCESS_LOG = env_bool("PRESALE_ACCESS_LOG", PRODUCTION)
LOGGING = logging_config(log_format=LOG_FORMAT, access_log=PRESALE_ACCESS_LOG)
if LOG_FORMAT == "json":
    # Python's warnings (e.g. whitenoise's about a missing static folder) become log records
    # too, so that every line a production process writes is one JSON object.
    import logging

    logging.captureWarnings(True)
# Celery keeps Django's logging as it is (its own root handler would print every line twice).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False

# --- Error reporting ------------------------------------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from config.sentry import start_sentry

    start_sentry(SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", DJANGO_ENV))

# --- Content-Security-Policy (Django's own, django.middleware.csp) --------------------------
# Scripts and <style> elements run only from our origin, Stripe.js's, or with the request's
# nonce: write <script nonce="{{ csp_nonce }}"> for an inline script. style="" attributes are
# allowed (they cannot run code). Stripe.js's hosts are Stripe's published list.
SECURE_CSP = csp_policy(stripe_js_url=STRIPE_JS_URL, stripe_api_base=STRIPE_API_BASE)
