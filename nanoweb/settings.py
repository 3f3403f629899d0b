"""Settings, read from the environment. Unknown or malformed values fail loudly at start-up."""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import unquote, urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_decimal(name: str, default: str) -> Decimal:
    value = os.environ.get(name) or default
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, not {value!r}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(os.environ.get("NANOWEB_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development: one random key per data directory, so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "nanoweb.errors.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",
    "django_htmx",
    "template_partials",
    "nanoweb.providers",
    "nanoweb.studio",
    "nanoweb.credits",
    "django_q",  # after nanoweb.studio, whose qcluster command takes the place of django-q2's
    "axes",
    "nanoweb.boards",
    "ninja",  # its docs page's scripts and styles from our static files, not a CDN
    "nanoweb.api",
    "nanoweb.quotas",
    "nanoweb.batches",
]

MIDDLEWARE = [
    "nanoweb.lib.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nanoweb.urls"
WSGI_APPLICATION = "nanoweb.wsgi.application"

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
                "nanoweb.providers.views.paused_accounts",
                "nanoweb.sso.views.single_sign_on",
                "nanoweb.boards.context.board_choices",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """DATABASE_URL: postgres://user:password@host:port/name (the scale-out path)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
        raise ImproperlyConfigured(f"DATABASE_URL must look like postgres://user:password@host:5432/name, not {url!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.strip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


# SQLite serves one web process and several worker processes writing at once:
# WAL lets readers run beside the writer, IMMEDIATE takes the write lock at BEGIN
# (no upgrade deadlocks), and the timeout makes writers queue instead of failing.
# Reads go through a memory map of the file (its first GiB): pages come from the OS cache,
# shared by every connection, without a system call and a copy each into a connection's own
# 2 MB cache. At a million generations this halves counting a board's first thousand items.
DATABASES = {
    "default": {
        "ENGINE": "nanoweb.lib.sqlite",  # Django's, with one writer per process at a time
        "NAME": os.environ.get("NANOWEB_DB_PATH", DATA_DIR / "db.sqlite3"),
        "CONN_MAX_AGE": 60,  # a thread keeps its connection (and its pragmas) between requests and steps
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824;",
        },
        "TEST": {"NAME": os.environ.get("NANOWEB_TEST_DB_PATH", DATA_DIR / "test.sqlite3")},
    }
}
if os.environ.get("DATABASE_URL"):
    DATABASES["default"] = database_from_url(os.environ["DATABASE_URL"])

# Shared between the web process and the workers (django-q keeps cluster stats here):
# a folder on one host; Redis when REDIS_URL is set, so that several hosts share it.
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": DATA_DIR / "cache"}
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password guessing: after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is locked out for LOGIN_LOCKOUT_MINUTES (or until staff delete the attempt in the admin).
# Per pair, so that a team behind one address is not locked out by one person's typos, and a
# guesser cannot lock someone out from elsewhere. The address is REMOTE_ADDR, which the proxy
# middleware sets from X-Forwarded-For only for configured proxies.
AUTHENTICATION_BACKENDS = ["nanoweb.signin.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# And across addresses: this many wrong passwords for one username within the lockout period lock
# it out from everywhere (signin.py), so that guessing from many addresses gains little.
LOGIN_USERNAME_FAILURE_LIMIT = env_int("LOGIN_USERNAME_FAILURE_LIMIT", 20)
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the wait the page announces holds
AXES_LOCKOUT_CALLABLE = "nanoweb.signin.locked_out"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Images are served only through views that check access: no URL pattern serves MEDIA_URL.
MEDIA_ROOT = Path(os.environ.get("NANOWEB_MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development gunicorn serves too: whitenoise finds the files where they are, no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Images, thumbnails and references in an S3-compatible object store, so that several hosts
# share them. Objects are private; the app streams them through views that check access.
S3_BUCKET = os.environ.get("S3_BUCKET", "")
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "access_key": os.environ.get("S3_ACCESS_KEY_ID", ""),
            "secret_key": os.environ.get("S3_SECRET_ACCESS_KEY", ""),
            "region_name": os.environ.get("S3_REGION", "us-east-1"),
            "location": os.environ.get("S3_PREFIX", ""),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }

# Sessions are read on every request (pages ask for live updates once a second): from the
# cache first, the database behind it.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # believed from TRUSTED_PROXIES only
# The reverse proxies whose X-Forwarded-Proto and X-Forwarded-For are believed: addresses or
# networks. None by default: a client on this host (or a proxy nobody named) cannot pick the
# address the sign-in throttle counts.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES must list addresses or networks, not {_proxy!r}") from None
# Every page: our own scripts, styles and images only; nothing inline (templates carry no script,
# no on…= handler and no style attribute; htmx is told not to inject its indicator styles).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "blob:"],  # blob: previews of the reference images one is about to upload
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# A task running longer is killed (a sweep relays to its successor well before).
TASK_TIMEOUT = 300
# The sweep and the renderer each hold a worker while they run; finishing tasks (download,
# check, store) take the others and mostly wait on I/O, so a burst of results needs several.
Q_WORKERS = env_int("Q_WORKERS", 6)
Q_CLUSTER = {
    "name": "nanoweb",
    # The task broker: the database by default, Redis when REDIS_URL is set.
    **({"redis": REDIS_URL} if REDIS_URL else {"orm": "default"}),
    "workers": Q_WORKERS,
    # A poll sweep runs for at most SWEEP_SECONDS; retry must exceed timeout.
    "timeout": TASK_TIMEOUT,
    "retry": 360,
    "max_attempts": 3,
    "poll": 0.1,
    # Tasks a cluster takes from the database broker per query: one per worker halves the
    # broker's cost in a burst of results, and leaves the rest for other clusters.
    "bulk": Q_WORKERS,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "label": "Task queue",
}

# --- nanoweb ---
# Where providers can reach this app (callbacks, reference-image links). Empty: poll only.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")
# Outbound requests to private and loopback addresses are refused unless allowed
# (the simulator runs on loopback in development and tests).
ALLOW_PRIVATE_OUTBOUND = env_bool("ALLOW_PRIVATE_OUTBOUND", DEBUG)
OUTBOUND_TIMEOUT = float(os.environ.get("OUTBOUND_TIMEOUT", "30"))
MAX_RESULT_BYTES = env_int("MAX_RESULT_BYTES", 60 * 1024 * 1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 40_000_000)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 20 * 1024 * 1024)  # per reference image
# The pixels all the images of one submission may decode to: bounds the work one request can
# cause (about 2 s of decoding at most), yet takes 14 phone photos of 12 Mpx.
MAX_UPLOAD_PIXELS = env_int("MAX_UPLOAD_PIXELS", 200_000_000)
# The bytes all the reference images of one submission may have together (what one request holds
# in memory, and what an inline request carries; Gemini's requests stop at about 20 MB).
MAX_REFERENCE_BYTES = env_int("MAX_REFERENCE_BYTES", 40 * 1024 * 1024)
# What each member's uploaded references may take on disk, unless staff set another quota
# (admin: Storage quotas).
STORAGE_QUOTA_BYTES = env_int("STORAGE_QUOTA_BYTES", 1024 * 1024 * 1024)
REFERENCE_LINK_SECONDS = env_int("REFERENCE_LINK_SECONDS", 3600)
# A monitor sending "Authorization: Bearer <HEALTH_TOKEN>" gets /healthz's details (as staff do).
HEALTH_TOKEN = os.environ.get("HEALTH_TOKEN", "")
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# More files than this in one request is refused by Django (400) before any view runs; fewer, but
# more than the model takes, get the form's message next to the field (no model takes over 14).
DATA_UPLOAD_MAX_NUMBER_FILES = 100
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
SWEEP_SECONDS = float(os.environ.get("SWEEP_SECONDS", "20"))
SWEEP_CONCURRENCY = env_int("SWEEP_CONCURRENCY", 16)
# Threads for synchronous provider calls (each account within its own `max_in_flight`).
SYNC_CALL_THREADS = env_int("SYNC_CALL_THREADS", 64)
# A process holding a job (a synchronous provider call, finishing) renews its lease on it;
# if the process dies, the job is taken up (or, for a lost call, ended) after this long.
HOLD_SECONDS = float(os.environ.get("HOLD_SECONDS", "20"))
JOB_DEADLINE_SECONDS = env_int("JOB_DEADLINE_SECONDS", 600)
# How long finishing keeps trying to download a result the provider said was done, while its
# file answers 404, 5xx or not at all (a CDN catching up); vendors keep result URLs for hours.
RESULT_FETCH_SECONDS = env_int("RESULT_FETCH_SECONDS", 60)
# A vendor's batch (Gemini's Batch API, at half price) targets 24 h: its jobs are read this
# rarely, and given this long before they expire.
VENDOR_BATCH_POLL_SECONDS = env_int("VENDOR_BATCH_POLL_SECONDS", 60)
VENDOR_BATCH_DEADLINE_SECONDS = env_int("VENDOR_BATCH_DEADLINE_SECONDS", 50 * 3600)
# A create the provider refuses for a while (rate limit, outage) is tried again at most this
# many times, within this many seconds of the job's creation; then the job fails with the
# provider's last answer. Well inside the job deadline.
CREATE_RETRY_ATTEMPTS = env_int("CREATE_RETRY_ATTEMPTS", 6)
CREATE_RETRY_SECONDS = env_int("CREATE_RETRY_SECONDS", 180)
if not (1 <= CREATE_RETRY_ATTEMPTS <= 50 and 0 <= CREATE_RETRY_SECONDS < JOB_DEADLINE_SECONDS):
    raise ImproperlyConfigured("CREATE_RETRY_ATTEMPTS must be 1-50, CREATE_RETRY_SECONDS below JOB_DEADLINE_SECONDS")
SIMULATOR_URL = os.environ.get("SIMULATOR_URL", "http://127.0.0.1:8100")

# Credits: the team's unit, and the budget of people for whom staff set none.
CREDITS_UNIT = os.environ.get("CREDITS_UNIT", "USD")
DEFAULT_BUDGET = env_decimal("DEFAULT_BUDGET", "20")
DEFAULT_BUDGET_PERIOD = os.environ.get("DEFAULT_BUDGET_PERIOD", "month")
if DEFAULT_BUDGET_PERIOD not in {"day", "week", "month", "none"}:
    raise ImproperlyConfigured("DEFAULT_BUDGET_PERIOD must be day, week, month or none")
FORM_RENDERER = "nanoweb.renderers.FormRenderer"

# --- single sign-on: the team's OpenID Connect provider (django-allauth), when OIDC_ISSUER is set ---
INSTALLED_APPS += [
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "nanoweb.sso",
]
MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").rstrip("/")  # discovery at <issuer>/.well-known/openid-configuration
OIDC_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
OIDC_NAME = os.environ.get("OIDC_NAME", "single sign-on")  # the button says "Sign in with <OIDC_NAME>"
# Who may sign in: an email address at one of these domains ("*": any the provider vouches for)
# and, if set, membership of this group in the OIDC_GROUPS_CLAIM claim. Both rules apply when both are set.
OIDC_ALLOWED_DOMAINS = [domain.lower().lstrip("@") for domain in env_list("OIDC_ALLOWED_DOMAINS", [])]
OIDC_REQUIRED_GROUP = os.environ.get("OIDC_REQUIRED_GROUP", "")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
# What to ask for; some providers send the groups claim only for a scope of that name.
OIDC_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile").replace(",", " ").split()
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
if OIDC_ISSUER and not (OIDC_ALLOWED_DOMAINS or OIDC_REQUIRED_GROUP):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_ALLOWED_DOMAINS (or * for anyone) and/or OIDC_REQUIRED_GROUP")
if OIDC_ISSUER and "openid" not in OIDC_SCOPES:
    raise ImproperlyConfigured(f"OIDC_SCOPES must include openid, not {OIDC_SCOPES!r}")
if OIDC_ISSUER and urlsplit(OIDC_ISSUER).scheme != "https" and not DEBUG:
    raise ImproperlyConfigured(f"OIDC_ISSUER must be an https URL, not {OIDC_ISSUER!r}")
if OIDC_ISSUER:  # the button's form is redirected there, and browsers hold redirects of a form to form-action
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append("{0.scheme}://{0.netloc}".format(urlsplit(OIDC_ISSUER)))
SOCIALACCOUNT_ADAPTER = "nanoweb.sso.adapter.TeamAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"  # the provider's email_verified claim decides (nanoweb/sso/adapter.py)
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = OUTBOUND_TIMEOUT
ACCOUNT_EMAIL_VERIFICATION = "none"

# The HTTP API, webhooks and metrics (nanoweb/api/).
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120)  # requests per token and minute
WEBHOOK_RETRY_SECONDS = float(os.environ.get("WEBHOOK_RETRY_SECONDS", "30"))  # the first retry's wait; doubling
# A scraper sending "Authorization: Bearer <METRICS_TOKEN>" may read /metrics (as staff may).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
