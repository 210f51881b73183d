"""Django settings. Every knob is an environment variable with a safe default, read only here."""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- Core -----------------------------------------------------------------------------------

SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-do-not-use-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()

TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "marketdata",
    "portfolio",
    "realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clera.urls"
WSGI_APPLICATION = "clera.wsgi.application"
ASGI_APPLICATION = "clera.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Served by the app itself (daphne has no static handler); straight from the finders, so no
# collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- Database -------------------------------------------------------------------------------

if "DATABASE_URL" not in os.environ:
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}

# --- Redis: channel layer, Celery, cache ------------------------------------------------------

EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6380)
REDIS_IS_EMBEDDED = "REDIS_URL" not in os.environ
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "clera",
    },
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)

# --- Alpaca / built-in sandbox --------------------------------------------------------------

BROKER_API_KEY = env.str("BROKER_API_KEY", default="")
BROKER_SECRET_KEY = env.str("BROKER_SECRET_KEY", default="")
APCA_API_KEY_ID = env.str("APCA_API_KEY_ID", default="")
APCA_API_SECRET_KEY = env.str("APCA_API_SECRET_KEY", default="")
# Alpaca's hosted sandbox (paper) vs live; only meaningful when broker keys are set.
ALPACA_SANDBOX = env.bool("ALPACA_SANDBOX", default=True)

# No broker keys means the project's own sandbox server stands in for Alpaca.
USE_BUILTIN_SANDBOX = not (BROKER_API_KEY and BROKER_SECRET_KEY)

SANDBOX_HOST = env.str("SANDBOX_HOST", default="127.0.0.1")
SANDBOX_PORT = env.int("SANDBOX_PORT", default=5999)
SANDBOX_SEED = env.int("SANDBOX_SEED", default=42)
SANDBOX_ACCOUNTS = env.int("SANDBOX_ACCOUNTS", default=50)
SANDBOX_SYMBOLS = env.int("SANDBOX_SYMBOLS", default=150)
SANDBOX_QUOTES_PER_SECOND = env.int("SANDBOX_QUOTES_PER_SECOND", default=50)
SANDBOX_API_KEY = env.str("SANDBOX_API_KEY", default="sandbox-key")
SANDBOX_SECRET_KEY = env.str("SANDBOX_SECRET_KEY", default="sandbox-secret")

if USE_BUILTIN_SANDBOX:
    _broker_url = f"http://{SANDBOX_HOST}:{SANDBOX_PORT}"
    _data_url = _broker_url
    _stream_url = f"ws://{SANDBOX_HOST}:{SANDBOX_PORT}"
elif ALPACA_SANDBOX:
    _broker_url = "https://broker-api.sandbox.alpaca.markets"
    _data_url = "https://data.sandbox.alpaca.markets"
    _stream_url = "wss://stream.data.sandbox.alpaca.markets"
else:
    _broker_url = "https://broker-api.alpaca.markets"
    _data_url = "https://data.alpaca.markets"
    _stream_url = "wss://stream.data.alpaca.markets"

ALPACA_BROKER_URL = env.str("ALPACA_BROKER_URL", default=_broker_url)
ALPACA_DATA_URL = env.str("ALPACA_DATA_URL", default=_data_url)
# Origin only: callers append the feed path (e.g. /v2/iex).
ALPACA_STREAM_URL = env.str("ALPACA_STREAM_URL", default=_stream_url)
ALPACA_DATA_FEED = env.str("ALPACA_DATA_FEED", default="iex")
ALPACA_TIMEOUT = env.float("ALPACA_TIMEOUT", default=5.0)

if USE_BUILTIN_SANDBOX:
    ALPACA_BROKER_CREDENTIALS = (SANDBOX_API_KEY, SANDBOX_SECRET_KEY)
    # Market data comes from the sandbox too, so real data keys must never be sent to it.
    ALPACA_DATA_CREDENTIALS = ALPACA_BROKER_CREDENTIALS
else:
    ALPACA_BROKER_CREDENTIALS = (BROKER_API_KEY, BROKER_SECRET_KEY)
    ALPACA_DATA_CREDENTIALS = (
        (APCA_API_KEY_ID, APCA_API_SECRET_KEY)
        if APCA_API_KEY_ID and APCA_API_SECRET_KEY
        else ALPACA_BROKER_CREDENTIALS
    )

# --- Real-time portfolio --------------------------------------------------------------------

SYMBOL_COLLECTION_INTERVAL = env.int("SYMBOL_COLLECTION_INTERVAL", default=60)
PRICE_TTL = env.int("PRICE_TTL", default=3600)
MIN_UPDATE_INTERVAL = env.float("MIN_UPDATE_INTERVAL", default=1.0)
RECALCULATION_INTERVAL = env.int("RECALCULATION_INTERVAL", default=15)
ENABLE_REALTIME_PORTFOLIO = env.bool("ENABLE_REALTIME_PORTFOLIO", default=True)

# --- Logging --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {
            "()": "clera.logging.RedactSecrets",
            "secrets": [
                SECRET_KEY,
                BROKER_API_KEY,
                BROKER_SECRET_KEY,
                APCA_API_KEY_ID,
                APCA_API_SECRET_KEY,
            ],
        },
    },
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "console",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Drop Django's default handlers so its records reach ours once, redacted, via the root.
    "loggers": {
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
    },
}
