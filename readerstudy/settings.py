"""Settings for readerstudy, driven by environment variables.

With no configuration the site runs embedded: SQLite and local files under
``var/``, synthetic images generated in-process. Set the variables listed in
README.md to scale out.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


VAR_DIR = Path(os.getenv("READERSTUDY_VAR_DIR", BASE_DIR / "var"))


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in var/ (never in the repository)."""
    if key := os.getenv("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", "False")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "readerstudy.accounts",
    "readerstudy.archive",
    "readerstudy.studies",
    "readerstudy.reading",
    "readerstudy.analysis",
    "readerstudy.jobs",
    "readerstudy.console",
    "axes",  # login throttling and lockout (web hygiene section below)
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves static files without a separate web server, also with DEBUG off.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "readerstudy.hygiene.OutOfRangeIdsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "readerstudy.urls"
WSGI_APPLICATION = "readerstudy.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'readerstudy.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Readers answer concurrently; WAL and a busy timeout keep SQLite from
    # failing a save with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only for a deployment that runs collectstatic; the site itself serves static/ directly.
STATIC_ROOT = os.getenv("STATIC_ROOT") or None

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "False")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Where presentation images (real and synthetic alike) are stored.
IMAGE_STORE_DIR = Path(os.getenv("IMAGE_STORE_DIR", VAR_DIR / "images"))
# Files larger than this, or with more pixels than this, are refused at import.
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", str(512 * 1024 * 1024))
IMPORT_MAX_PIXELS = envint("IMPORT_MAX_PIXELS", str(64 * 1024 * 1024))
# Where generator checkpoints registered by name are looked up.
CHECKPOINT_DIRS = [Path(p) for p in envlist("CHECKPOINT_DIRS", str(BASE_DIR / "generator" / "checkpoints"))]
# Coordinator uploads (engineer 10b): archives wait here for their import job; uploaded generator
# files are kept under UPLOADED_CHECKPOINT_DIR, which is always one of CHECKPOINT_DIRS.
UPLOAD_STAGING_DIR = Path(os.getenv("UPLOAD_STAGING_DIR", VAR_DIR / "uploads"))
UPLOADED_CHECKPOINT_DIR = Path(os.getenv("UPLOADED_CHECKPOINT_DIR", VAR_DIR / "checkpoints"))
if UPLOADED_CHECKPOINT_DIR not in CHECKPOINT_DIRS:
    CHECKPOINT_DIRS.append(UPLOADED_CHECKPOINT_DIR)
# An archive may be uploaded as a set of files rather than a zip: allow more than Django's 100 per request.
DATA_UPLOAD_MAX_NUMBER_FILES = envint("UPLOAD_MAX_FILES", "5000")
# Device for in-process sampling: "auto" picks CUDA when present.
GENERATOR_DEVICE = os.getenv("GENERATOR_DEVICE", "auto")

# Background jobs (readerstudy/jobs): "thread" in the web process by default, "inline" in the
# caller, "celery" on workers (the default when a broker is configured).
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "")
JOBS_MODE = os.getenv("JOBS_MODE", "")
# The machine reader (readerstudy/analysis/jobs.py) reads each study's images once it is prepared;
# MACHINE_READER_STEPS trains its learned classifiers (0: the image statistics alone).
MACHINE_READ_AFTER_PREPARE = envbool("MACHINE_READ_AFTER_PREPARE", "True")
MACHINE_READER_STEPS = envint("MACHINE_READER_STEPS", "300")

# --- Jobs on Celery workers (readerstudy/celery.py, readerstudy/jobs/celery_dispatch.py) ---
# Redis only: an unacknowledged message is redelivered after this many seconds, so it must be
# longer than the longest job; a key prefix lets several sites (or test runs) share one Redis.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", str(12 * 3600))}
if os.getenv("CELERY_BROKER_KEY_PREFIX"):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEY_PREFIX"]
JOBS_HEARTBEAT_SECONDS = envint("JOBS_HEARTBEAT_SECONDS", "15")
# A running job not heard from for this long has lost its worker and is sent again.
JOBS_STALE_SECONDS = envint("JOBS_STALE_SECONDS", "120")
# A job whose worker died this many times is failed with that reason, not tried again.
JOBS_MAX_ATTEMPTS = envint("JOBS_MAX_ATTEMPTS", "3")
# Cases per generation batch; 0 picks for the device: 64 on CUDA (the sampler's padded batch), 16 on CPU.
GENERATION_BATCH_SIZE = envint("GENERATION_BATCH_SIZE", "0")
# A preparation on Celery offers this many shares of its cases to idle workers.
PREPARE_PARTS = envint("PREPARE_PARTS", "4")

# Mail: invitations, password reset and reminders. The console backend prints mail to the
# log (the embedded default); set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the
# EMAIL_* variables to send it.
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "False")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "readerstudy@localhost")
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", str(3 * 24 * 3600))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "media"}},
    # Presentation images, real and synthetic alike, in one store.
    "images": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": IMAGE_STORE_DIR, "file_permissions_mode": 0o640},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are few and small: serve them straight from static/, no collectstatic step.
WHITENOISE_USE_FINDERS = True


# --- Web hygiene (issue 12b): login lockout, Content-Security-Policy, HTTPS ---
# Values for a production site behind HTTPS are in README.md (Configuration);
# `manage.py check --deploy` is clean under them (tests/test_web_hygiene.py).

AUTHENTICATION_BACKENDS = [
    "readerstudy.hygiene.LoginLockoutBackend",  # django-axes: refuses web logins while locked out, /login/ and /admin/login/ alike
    "django.contrib.auth.backends.ModelBackend",
]
# Locked by the pair (username, client address): an attacker cannot lock a reader out from elsewhere
# in the middle of a study, and cannot guess one account's password from one address either.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envint("LOGIN_LOCKOUT_MINUTES", "15") / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a reverse proxy the client address is the proxy's unless told how many proxies to trust.
PROXY_COUNT = envint("PROXY_COUNT", "0")
AXES_CLIENT_IP_CALLABLE = "readerstudy.hygiene.client_address"

# Strict CSP: scripts, styles, images, fetches only from this site; no inline script, no inline
# style (the report's SVG figures use presentation attributes, which CSP does not govern), no
# plugins, no framing, no <base> rewriting, forms post only here. data: images only for the blank
# favicon in base.html. Reports of violations go to the browser console.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "False")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "False")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")
# The header a TLS-terminating proxy sets, e.g. HTTP_X_FORWARDED_PROTO (the proxy must overwrite it).
if proxy_header := os.getenv("SECURE_PROXY_SSL_HEADER", ""):
    SECURE_PROXY_SSL_HEADER = (proxy_header, "https")
