"""One settings module, driven by the environment.

The defaults need no services: a SQLite file, Celery tasks run inline, email printed to the console.
DATABASE_URL, REDIS_URL (or CELERY_BROKER_URL) and EMAIL_HOST switch each part to a real server.
"""

from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "insecure-development-key-change-me"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

if not DEBUG:
    if SECRET_KEY in ("", DEFAULT_SECRET_KEY):
        raise ImproperlyConfigured(
            "DEBUG is off but SECRET_KEY is the development default: set the SECRET_KEY environment "
            "variable to a long random string."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DEBUG is off but ALLOWED_HOSTS is empty: set the ALLOWED_HOSTS environment variable "
            "(comma-separated host names, e.g. gtm.example.com)."
        )

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    # ours, from the bottom layer up (README, Architecture): each imports only the ones listed before it
    "deliverables",
    "accounts",
    "playbooks",
    "engagements",
    "client_workspace",
    "crm_connectors",
    "engineering",
    "crm_sandbox",  # the development and test CRM servers: `manage.py crm_sandbox`, `connect_demo_crm`
    "reporting",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.BrowserTimezoneMiddleware",
    "gtm_ops.middleware.private_responses",
    "gtm_ops.middleware.content_security_policy",
]

if not DEBUG:
    # In production static files are collected and served by WhiteNoise; runserver serves them in DEBUG.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "gtm_ops.urls"
WSGI_APPLICATION = "gtm_ops.wsgi.application"

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
                "accounts.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default is shared by the web process and a local Celery worker: wait for locks and
    # take the write lock up front instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache: Redis when REDIS_URL is set, shared by every web process; in-process memory otherwise. It holds the
# pages' cached fragments (engagements/views/fragments.py; their keys carry the data version, so a per-process cache
# only misses more often) and, when shared, the sessions (read from it, written through to the database). Sessions
# stay in the database alone without a shared cache: another process could go on accepting a signed-out session.
_redis_url = env.str("REDIS_URL", default="")
CACHES = {
    # Redis down or frozen costs a short timeout and falls back to the database (gtm_ops/cache.py).
    "default": {"BACKEND": "gtm_ops.cache.ResilientRedisCache", "LOCATION": _redis_url}
    if _redis_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
SESSION_ENGINE = "django.contrib.sessions.backends." + ("cached_db" if _redis_url else "db")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Client uploads (intake attachments): never under MEDIA_URL, served only by views that check who asks.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))
CLIENT_UPLOAD_MAX_BYTES = env.int("CLIENT_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Email: console by default; EMAIL_HOST switches to real SMTP.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
    EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_RETRY_DELAY = env.int("EMAIL_RETRY_DELAY", default=30)  # seconds before the first retry; doubles each time
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="GTM Ops <noreply@gtm-ops.local>")

# Celery: inline when no broker is configured, a real broker (Redis) otherwise.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=env.str("REDIS_URL", default=""))
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_BROKER_URL.startswith("filesystem://"):
    # `make run`: a real worker on a broker that needs no server (kombu's filesystem transport).
    _broker_dir = BASE_DIR / "var" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="gtm_ops")
# Work that mostly waits on a CRM (audits, health checks) has a queue of its own, so it can be given a thread
# pool with many slots (`-Q <queue>-crm --pool=threads`) while renders and emails stay on prefork. A worker
# started without -Q consumes both.
CELERY_CRM_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-crm"
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(CELERY_CRM_QUEUE)]
CELERY_TASK_ROUTES = {
    "crm_connectors.tasks.run_audit": {"queue": CELERY_CRM_QUEUE},
    "reporting.tasks.run_health_check": {"queue": CELERY_CRM_QUEUE},
    "reporting.tasks.catch_up_health_checks": {"queue": CELERY_CRM_QUEUE},
}
CELERY_TASK_IGNORE_RESULT = True
# Task modules beside the apps' tasks.py (which autodiscover_tasks finds): large CSV imports.
CELERY_IMPORTS = ["engagements.tasks_imports", "reporting.tasks_imports"]
# How long a background run's claim holds without a heartbeat before the sweep takes it back (gtm_ops/runs.py).
RUN_LEASE_SECONDS = env.float("RUN_LEASE_SECONDS", default=300)
CELERY_TIMEZONE = TIME_ZONE
# One beat schedule for the whole app. Each entry expires so a backlog after downtime does not pile up.
CELERY_BEAT_SCHEDULE = {
    "send-signoff-reminders": {
        "task": "engagements.tasks.send_signoff_reminders",
        "schedule": 60 * 60,
        "options": {"expires": 30 * 60},
    },
    "send-task-digests": {  # hourly, so a digest missed by a restart goes out the same day; one a day at most
        "task": "engagements.tasks.send_task_digests",
        "schedule": 60 * 60,
        "options": {"expires": 30 * 60},
    },
    "queue-health-checks": {
        "task": "reporting.tasks.queue_health_checks",
        "schedule": 6 * 60 * 60,
        "options": {"expires": 60 * 60},
    },
    # every background run's sweep (gtm_ops/runs.py): a run whose worker stopped waits about one lease more
    "sweep-runs": {
        "task": "deliverables.tasks.sweep_runs",
        "schedule": 60,
        "options": {"expires": 50},
    },
    "send-check-in-reminders": {
        "task": "engagements.tasks.send_check_in_reminders",
        "schedule": 24 * 60 * 60,
        "options": {"expires": 60 * 60},
    },
}

# CRM connectors (crm_connectors/http.py, crypto.py). Secrets are encrypted with CRM_SECRET_KEY (a Fernet key);
# in DEBUG without it a key is derived from SECRET_KEY. CRM_ALLOW_HTTP permits http:// base URLs (loopback
# sandboxes in development only). Each connection spends at most CRM_DAILY_BUDGET_SHARE of the CRM's daily
# API allocation; rate limits are per CRM account, shared by all workers through Redis when the broker is Redis.
CRM_SECRET_KEY = env.str("CRM_SECRET_KEY", default="")
if not DEBUG:
    # Refused at start, not at the first CRM credential stored weeks later.
    try:
        Fernet(CRM_SECRET_KEY)
    except ValueError:
        raise ImproperlyConfigured(
            "DEBUG is off but CRM_SECRET_KEY is not a Fernet key: set it to the output of "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
        ) from None
CRM_ALLOW_HTTP = env.bool("CRM_ALLOW_HTTP", default=False)
CRM_DAILY_BUDGET_SHARE = env.float("CRM_DAILY_BUDGET_SHARE", default=0.05)
CRM_CONNECT_TIMEOUT = env.float("CRM_CONNECT_TIMEOUT", default=5.0)
CRM_READ_TIMEOUT = env.float("CRM_READ_TIMEOUT", default=30.0)
CRM_MAX_RETRIES = env.int("CRM_MAX_RETRIES", default=3)
CRM_RATE_LIMITS = {"salesforce": "25/1", "hubspot": "150/10", "hubspot-search": "4/1"}
# Where clients grant access through OAuth (crm_connectors/oauth.py). In DEBUG (`make run`) the CRM sandboxes of
# scripts/run-dev.sh, never a real CRM; a Salesforce OAuth app's own login URL (organization settings) wins.
CRM_OAUTH_HUBSPOT_APP_URL = env.str(
    "CRM_OAUTH_HUBSPOT_APP_URL", default="http://127.0.0.1:8702" if DEBUG else "https://app.hubspot.com"
)
CRM_OAUTH_HUBSPOT_API_URL = env.str(
    "CRM_OAUTH_HUBSPOT_API_URL", default="http://127.0.0.1:8702" if DEBUG else "https://api.hubapi.com"
)
CRM_OAUTH_SALESFORCE_LOGIN_URL = env.str(
    "CRM_OAUTH_SALESFORCE_LOGIN_URL", default="http://127.0.0.1:8701" if DEBUG else "https://login.salesforce.com"
)
# How long a stakeholder has between leaving for the CRM's consent page and coming back.
CRM_OAUTH_STATE_MAX_AGE = 600

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # API requests per user (one token each) and, without a token, per IP address; over the rate: 429 with
    # Retry-After. "1000/hour", "20/minute"...; an empty value switches a rate off.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.TokenRateThrottle",
        "accounts.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_RATE_PER_USER", default="1000/hour") or None,
        "anon": env.str("API_RATE_ANONYMOUS", default="100/hour") or None,
    },
}

# Abuse limits (accounts/throttling.py), counted in the cache and the database, so they hold while Redis is down.
# After SIGN_IN_FAILURES_PER_ACCOUNT failed sign-ins within SIGN_IN_WINDOW seconds the account's next attempts are
# refused without checking the password, and its owner is emailed once; SIGN_IN_FAILURES_PER_IP stops one address
# trying many accounts. Portal sign-in links: at most PORTAL_LINKS_PER_STAKEHOLDER per PORTAL_LINK_WINDOW seconds.
AUTHENTICATION_BACKENDS = [
    "accounts.throttling.LimitedModelBackend",
    # Sessions started before the limits existed name this backend; the one above checks every password.
    "django.contrib.auth.backends.ModelBackend",
]
SIGN_IN_FAILURES_PER_ACCOUNT = env.int("SIGN_IN_FAILURES_PER_ACCOUNT", default=10)
SIGN_IN_FAILURES_PER_IP = env.int("SIGN_IN_FAILURES_PER_IP", default=50)
SIGN_IN_WINDOW = env.int("SIGN_IN_WINDOW", default=15 * 60)
SIGN_IN_LOCKOUT_NOTICES = 1  # emails to the account's owner per window
PORTAL_LINKS_PER_STAKEHOLDER = env.int("PORTAL_LINKS_PER_STAKEHOLDER", default=3)
PORTAL_LINK_WINDOW = env.int("PORTAL_LINK_WINDOW", default=60 * 60)
# The client's address is REMOTE_ADDR unless this many proxies stand in front and each appends to X-Forwarded-For
# (1 behind one load balancer or nginx); with 0, X-Forwarded-For is ignored, as any client can write it.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
SPECTACULAR_SETTINGS = {
    "TITLE": "GTM Ops API",
    "DESCRIPTION": "Organization-scoped API. Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A field that refuses "" says so (minLength 1), so a blank name is not a schema-valid request.
    "ENFORCE_NON_BLANK_FIELDS": True,
    # ... and text fields say that DRF trims them and refuses NUL (accounts.api.strings_as_drf_reads_them).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api.strings_as_drf_reads_them",
    ],
    # Several models have a `status` or `role` field with different choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "MembershipRoleEnum": "accounts.models.Role",
        "TeamRoleEnum": "engagements.models.TeamRole",
        "EngagementStatusEnum": "engagements.models.EngagementStatus",
        "PhaseStatusEnum": "engagements.models.PhaseStatus",
        "GateStatusEnum": "engagements.models.GateStatus",
        "CheckpointStatusEnum": "engagements.models.CheckpointStatus",
        "WorkStatusEnum": "engagements.models.WorkStatus",
        "DecisionStatusEnum": "engagements.models.DecisionStatus",
        "RiskStatusEnum": "engagements.models.RiskStatus",
        "RiskLevelEnum": "engagements.models.RiskLevel",
        "ReleaseStatusEnum": "engagements.models.ReleaseStatus",
        "UpdateStatusEnum": "engagements.models.UpdateStatus",
        "ArtifactStatusEnum": "deliverables.models.ArtifactStatus",
        "ChecklistKindEnum": "engagements.models.ChecklistKind",
    },
}

# Security: magic links and invitations.
PORTAL_LINK_MAX_AGE = 30 * 60
INVITATION_MAX_AGE_DAYS = 7
SESSION_COOKIE_HTTPONLY = True
# Cookies travel over HTTPS only in production; SECURE_COOKIES=false for a plain-http trial behind no proxy.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
# HTTPS in production: requests redirected to https (but the probes, which load balancers call over plain http)
# and HSTS for a year (SECURE_HSTS_SECONDS=0 turns it off). X-Forwarded-Proto is trusted only when a TLS proxy in
# front sets it (TLS_PROXY=true); otherwise any client could claim https.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^readyz/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TLS_PROXY", default=False) else None
# Content-Security-Policy (gtm_ops.middleware.content_security_policy): scripts and styles come only from our own
# static files, never inline and never through eval, so an injected <script>, handler or style= does nothing.
# base.html turns off the two htmx features that need them (hx-on code, the indicator <style>);
# tests/test_inline_code.py keeps served templates free of inline code. The PDF templates (templates/reports) and the
# email templates keep inline styles on purpose: WeasyPrint renders PDFs on the server and mail clients drop
# stylesheets, and neither is a page served under this policy. data: images are the SVG icons of the API docs' CSS.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint narrates every step of every render at INFO; its warnings still come through.
    "loggers": {name: {"level": "WARNING"} for name in ("weasyprint", "weasyprint.progress", "fontTools")},
}
