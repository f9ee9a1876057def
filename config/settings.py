"""Settings for every deployment, read from environment variables.

Defaults are safe and local: a SQLite file in the project folder, debug off, and
a random secret key generated once into `var/secret_key` (git-ignored). `make run`
and the tests turn debug on (DJANGO_DEBUG=1). A lab or production deployment sets
`DATABASE_URL`, `DJANGO_SECRET_KEY` (the same on every web server, or sessions made
on one are refused by the others), `DJANGO_ALLOWED_HOSTS` and the `DJANGO_SECURE_*`
settings below.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-deploy"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """The key in `path`, made once (random, readable by this user only) when the file does not exist yet."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        # O_EXCL: when two processes start at once, one writes the key and the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return local_secret_key(path)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = DEV_SECRET_KEY
    else:
        # No key given: one for this checkout, kept across restarts so sessions survive them.
        # Several web servers must share DJANGO_SECRET_KEY instead (see README's Configuration).
        SECRET_KEY = local_secret_key(Path(os.environ.get("DJANGO_SECRET_KEY_FILE", BASE_DIR / "var" / "secret_key")))
elif not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is the development key, which would let anyone "
        "forge sessions. Set a long random string, or unset it to use var/secret_key."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" + (",testserver" if DEBUG else ""))
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "pages",
    "ideas",
    "experiments",
    "api",
]

MIDDLEWARE = [
    # Request latency for /metrics (config/metrics.py), then /healthz, /readyz and /metrics answered before
    # the host check, HTTPS redirect, sessions and throttles (config/probes.py).
    "config.metrics.RequestMetricsMiddleware",
    "config.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # NUL characters in the address and oversized bodies, refused before any view (config/request_guards.py).
    "config.request_guards.RequestGuardMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    # A page whose view hit an unreachable database answers 503 (the API answers it in api.exceptions).
    "config.availability.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"

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

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections: a worker claims each run without opening a new connection first.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default has a web server and a worker writing one file:
    # WAL lets readers go on during a write, IMMEDIATE takes the write lock at
    # BEGIN so two writers queue instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so the tests' real worker process can open the test database too.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # One file per test process, so two test sessions in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "idea-list"
LOGOUT_REDIRECT_URL = "idea-list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js ships inside the plotly package: served as /static/plotly/plotly.min.js, no CDN.
    ("plotly", Path(plotly.__file__).parent / "package_data"),
]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it

IDEAS_PAGE_SIZE = env_int("IDEAS_PAGE_SIZE", 20)

# --- Experiments: runs, workers, artifacts ---
ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", BASE_DIR / "var" / "artifacts"))
GIT_COMMIT = os.environ.get("GIT_COMMIT", "")  # else read from the checkout at run time
RUN_MAX_ATTEMPTS = env_int("RUN_MAX_ATTEMPTS", 3)
RUN_HEARTBEAT_SECONDS = float(os.environ.get("RUN_HEARTBEAT_SECONDS", "1"))
RUN_STALE_AFTER_SECONDS = float(os.environ.get("RUN_STALE_AFTER_SECONDS", "60"))
# A queued run whose message is not in the broker (or was never sent) is sent again once it is this old;
# where the broker cannot be read (not Redis), after RUN_RESEND_QUEUED_AFTER_SECONDS.
RUN_RESEND_GRACE_SECONDS = float(os.environ.get("RUN_RESEND_GRACE_SECONDS", "10"))
RUN_RESEND_QUEUED_AFTER_SECONDS = float(os.environ.get("RUN_RESEND_QUEUED_AFTER_SECONDS", "900"))
RUN_REAP_INTERVAL_SECONDS = float(os.environ.get("RUN_REAP_INTERVAL_SECONDS", "10"))
# How long a finished attempt keeps trying to store its outcome while the database is unreachable.
RUN_FINAL_WRITE_RETRY_SECONDS = float(os.environ.get("RUN_FINAL_WRITE_RETRY_SECONDS", "600"))
RUN_QUEUE_CAP_PER_USER = env_int("RUN_QUEUE_CAP_PER_USER", 20)
# Each worker records the queues it consumes every WORKER_PRESENCE_SECONDS; one silent for WORKER_GONE_AFTER_SECONDS
# is gone, and a queued run whose queue no live worker consumes says so on its page ("waiting for a GPU worker").
WORKER_PRESENCE_SECONDS = float(os.environ.get("WORKER_PRESENCE_SECONDS", "15"))
WORKER_GONE_AFTER_SECONDS = float(os.environ.get("WORKER_GONE_AFTER_SECONDS", "60"))
# The longest hard time limit any kind may have; the broker's visibility timeout sits above it.
RUN_LONGEST_TIME_LIMIT = env_int("RUN_LONGEST_TIME_LIMIT", 6 * 3600)
# The pretrained causal language model the catalogue's behavioural specs (#10, #14, #15, #16) evaluate: a Hugging
# Face model folder (config.json, tokenizer files, weights), on every worker that runs them. It is added to the
# folders specs may load models from (PRETRAINED_MODEL_DIRS), so the shipped specs can name it.
EVAL_MODEL_DIR = Path(os.environ.get("EVAL_MODEL_DIR", BASE_DIR / "models" / "eval-lm")).expanduser().resolve()
_model_dirs = [d for d in os.environ.get("PRETRAINED_MODEL_DIRS", "").split(os.pathsep) if d.strip()]
if str(EVAL_MODEL_DIR) not in _model_dirs:
    os.environ["PRETRAINED_MODEL_DIRS"] = os.pathsep.join([*_model_dirs, str(EVAL_MODEL_DIR)])
# The largest uploaded dataset, text or prompt set, in bytes (ARTIFACT_ROOT/datasets/<id>/; the web server must
# accept the body).
DATASET_MAX_BYTES = env_int("DATASET_MAX_BYTES", 20 * 1024 * 1024)

# --- Artifact storage: STORAGES["artifacts"] (experiments/storage_backends/; README's "Artifact storage") ---
# local: ARTIFACT_ROOT is the store (one machine, or a disk every worker mounts). s3: an S3-compatible bucket;
# workers write each attempt into ARTIFACT_ROOT as scratch and upload what it keeps, the web server streams
# downloads from the bucket, and workers cache what they read (checkpoints, datasets) under ARTIFACT_ROOT/cache/.
# Credentials come from boto3's own AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an instance role).
ARTIFACT_STORAGE = os.environ.get("ARTIFACT_STORAGE", "local").strip().lower() or "local"
if ARTIFACT_STORAGE == "local":
    _artifact_storage: dict = {"BACKEND": "experiments.storage_backends.local.ArtifactFileSystemStorage"}
elif ARTIFACT_STORAGE == "s3":
    if not os.environ.get("ARTIFACT_S3_BUCKET", "").strip():
        raise ImproperlyConfigured("ARTIFACT_STORAGE=s3 needs ARTIFACT_S3_BUCKET, the bucket's name.")
    _artifact_storage = {
        "BACKEND": "experiments.storage_backends.s3.ArtifactS3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["ARTIFACT_S3_BUCKET"].strip(),
            "endpoint_url": os.environ.get("ARTIFACT_S3_ENDPOINT_URL", "").strip() or None,  # blank: AWS
            "region_name": os.environ.get("ARTIFACT_S3_REGION", "").strip() or None,
            "location": os.environ.get("ARTIFACT_S3_PREFIX", "").strip().strip("/"),
            # A bucket that does not answer fails an attempt's upload within seconds, not minutes.
            "connect_timeout": float(os.environ.get("ARTIFACT_S3_CONNECT_TIMEOUT", "5")),
            "read_timeout": float(os.environ.get("ARTIFACT_S3_READ_TIMEOUT", "60")),
            "max_attempts": env_int("ARTIFACT_S3_MAX_ATTEMPTS", 3),
        },
    }
else:
    raise ImproperlyConfigured(f"ARTIFACT_STORAGE must be local or s3; got {ARTIFACT_STORAGE!r}")
# How long a finished attempt retries uploading its files while the bucket does not answer (s3 only).
ARTIFACT_UPLOAD_RETRY_SECONDS = float(os.environ.get("ARTIFACT_UPLOAD_RETRY_SECONDS", "300"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": _artifact_storage,
}

# Embedded default: kombu's filesystem transport in var/broker, no server needed.
# Production and CI: CELERY_BROKER_URL=redis://host:6379/0.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("CELERY_FS_BROKER_DIR", BASE_DIR / "var" / "broker"))
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # A message not acknowledged within this many seconds is delivered again: it must
    # outlast the longest run, or a healthy long run would be started twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": RUN_LONGEST_TIME_LIMIT + 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Runs keep their outcome in the database; a result backend is only needed for ad-hoc
# tasks such as experiments.ping (benchmarks/dispatch.py sets it).
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# How long the pool waits for a result from a process that died before calling it lost
# (Celery's default is 10 s); the run is re-queued or failed as soon as it is declared lost.
CELERY_WORKER_LOST_WAIT = float(os.environ.get("CELERY_WORKER_LOST_WAIT", "1"))
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# The worker sets up its own logging: its root logger's handlers are replaced by one writing to
# --logfile (var/worker.log under `make run`), or to stderr without it.
CELERY_WORKER_HIJACK_ROOT_LOGGER = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Monitoring, a shared cache, torch threads per worker (README "Monitoring") ---
# Django's cache (the API's throttle counters) in Redis when REDIS_CACHE_URL is set, so counts hold across web
# processes and machines; else local memory per process. Short socket timeouts: a Redis that is down costs a
# request half a second, and the throttles then let it through (api/throttles.py).
REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL", "").strip()
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# /metrics: a Bearer token when METRICS_TOKEN is set; else only these client addresses (or networks).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
if METRICS_TOKEN == "change-me":  # the placeholder of deploy/ideas.env.example: anyone could guess it
    raise ImproperlyConfigured(
        "METRICS_TOKEN is the example's placeholder 'change-me'. Make a token with "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))', or leave it unset (loopback only)."
    )
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
# /readyz answers 503 when the database or the broker does not answer within this many seconds.
READYZ_TIMEOUT_SECONDS = float(os.environ.get("READYZ_TIMEOUT_SECONDS", "2"))
# Torch threads per run process; 0: the CPUs the worker may use (os.sched_getaffinity) // its concurrency, >= 1.
WORKER_TORCH_THREADS = env_int("WORKER_TORCH_THREADS", 0)

# --- HTTPS (see README's Configuration; `manage.py check --deploy` is clean with them set) ---
# Cookies only over HTTPS when debug is off; DJANGO_SECURE_COOKIES=0 for a plain-HTTP lab server.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Off by default: behind a proxy that terminates TLS the redirect is the proxy's job, and a
# server without HTTPS would send every visitor to an address that does not answer.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# 0 by default: browsers remember HSTS for this many seconds, so turn it on only once HTTPS works.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Trust X-Forwarded-Proto only when a proxy in front sets it (and strips it from clients' requests).
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's default gives "django" a console handler of its own, and its lines also reach the
    # root's: "Bad Request: ..." printed twice. Here they go through the root's handler only (the
    # worker's log file in a worker). "django.server" (runserver's request lines) keeps its own.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}

# --- REST API ---
# /api/: Django REST framework, token + session auth, throttles from the environment,
# an OpenAPI schema (drf-spectacular) and Swagger UI served from our own static files.
INSTALLED_APPS += ["rest_framework", "rest_framework.authtoken", "drf_spectacular", "drf_spectacular_sidecar"]

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes "not signed in" a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.SafeJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.AnonReadThrottle", "api.throttles.WriteThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "200/min"),
        "write": os.environ.get("API_THROTTLE_WRITE", "60/min"),
        "trigger": os.environ.get("API_THROTTLE_TRIGGER", "30/min"),  # run triggers, per user
    },
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.FormatFirstNegotiation",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 20)
API_MAX_PAGE_SIZE = 100

SPECTACULAR_SETTINGS = {
    "TITLE": "AI-safety research ideas API",
    "DESCRIPTION": "Browse, search, vote on and edit research ideas. See docs/api.md for a walk-through.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "IdeaKindEnum": "ideas.models.IdeaKind",
        "IdeaStatusEnum": "ideas.models.IdeaStatus",
        "LinkTypeEnum": "ideas.models.LinkType",
        "RunStatusEnum": "experiments.models.RunStatus",
        "VerdictEnum": "experiments.models.Verdict",
        "DatasetFormatEnum": "experiments.models.DatasetFormat",
    },
}
