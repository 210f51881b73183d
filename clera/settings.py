"""Django settings. Every knob is an environment variable with a safe default, read only here."""

import os
from decimal import Decimal
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from clera.logging import url_passwords

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- Core -----------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
# Django's signing key (sessions, CSRF, password resets). The development key below is public
# (it is in this repository), so it is refused unless DEBUG; bin/run makes a random one for the
# demo and keeps it in var/ (clera/devstack/local_settings.py).
DEVELOPMENT_SECRET_KEY = "django-insecure-dev-only-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if SECRET_KEY == DEVELOPMENT_SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set, and the development key is refused unless DEBUG is on: set "
        "SECRET_KEY to a long random value (python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))'), or DEBUG=true on a development machine."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()

# --- Security: HTTPS, proxies, content policy, operations access ----------------------------
# `manage.py check --deploy` is clean with these defaults (tests/security/test_startup_settings.py).

# True when browsers reach the site only over HTTPS (TLS ending here or at the proxy): the
# default of the secure cookies, the redirect to https and HSTS below. On unless DEBUG; bin/run
# and the tests, plain http on 127.0.0.1, set it false.
HTTPS_ONLY = env.bool("HTTPS_ONLY", default=not DEBUG)
# Session and CSRF cookies sent only over HTTPS.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS_ONLY)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS_ONLY)
# Redirect http:// to https://, except /health and /metrics: load balancers and Prometheus
# reach those from the inside, over plain http.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS_ONLY)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
# HSTS (sent on HTTPS answers only): seconds a browser keeps to HTTPS for this host (a year; 0
# sends no header), its subdomains too, and consent to the browsers' preload lists.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS_ONLY)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS_ONLY)
# Reverse proxies in front of the app, each appending the address it saw to X-Forwarded-For
# (the Procfile's web says 1: a platform's router). The client's address, which every
# per-client limit keys on (portfolio/client_address.py), is the NUM_PROXIES-th entry from the
# right; with 0 the header is ignored and the peer is the client. Also DRF's NUM_PROXIES.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
# The header in which the proxy says which scheme the browser used ("https": a secure
# request). Default X-Forwarded-Proto behind a proxy; none without one, where a client could
# send it itself.
_PROXY_SSL_HEADER = env.str(
    "SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto" if NUM_PROXIES else ""
)
SECURE_PROXY_SSL_HEADER = (
    (f"HTTP_{_PROXY_SSL_HEADER.upper().replace('-', '_')}", "https") if _PROXY_SSL_HEADER else None
)
# The Content-Security-Policy of every answer (django-csp's middleware; error pages included,
# Django's DEBUG error pages excepted): the browser loads and runs the site's own files only —
# no inline script or style, nothing from another origin, no plugins, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Bearer token (`Authorization: Bearer <token>`) that opens /metrics, /api/docs and /api/schema
# to a scraper or an operator without a staff sign-in; empty: staff only. DEBUG opens them.
OPS_TOKEN = env.str("OPS_TOKEN", default="")

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
    "drf_spectacular_sidecar",
    "channels",
    "csp",
    "marketdata",
    "portfolio",
    "realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clera.urls"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
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
# The page's own files, and the chart library npm installed from package-lock.json (bin/_static.sh).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
# Served by the app itself (daphne has no static handler); straight from the finders, so no
# collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Re-read static files on every request: for editing the page under a running `bin/run`
# (otherwise a file whose size changed is served with its old length and the browser hangs).
WHITENOISE_AUTOREFRESH = env.bool("STATIC_AUTOREFRESH", default=DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The portfolio API (portfolio/api/): token first, so a missing login answers 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "portfolio.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["portfolio.api.throttling.UserThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "portfolio.api.errors.api_exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
}

# --- Database -------------------------------------------------------------------------------

if "DATABASE_URL" not in os.environ:
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests on SQLite get a file (one per test process), not Django's shared in-memory database,
    # whose table locks fail at once: concurrent requests then wait for each other as they do
    # in production (e.g. two "add funds" requests with one Idempotency-Key).
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
# Seconds a thread keeps its database connection for its next call (Django's persistent
# connections; 0 opens and closes one per request or sync_to_async call). A socket's handshake
# reads the session, the user and the account link, one call each: with 0, opening and closing
# connections took ~40 % of Channels' database thread in a reconnect storm. A kept connection
# is checked before reuse, so a database restart costs no failed call.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Redis: channel layer, Celery, cache ------------------------------------------------------

EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6380)
REDIS_IS_EMBEDDED = "REDIS_URL" not in os.environ
# redis://[:password@]host:port/db, or rediss:// for TLS (see REDIS_TLS_* below).
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

# Seconds a Redis client waits for a connection, and for any reply, before the call fails: a
# Redis that is unreachable or hung fails a request, task or stream in seconds instead of
# hanging it until the OS gives up. The reply timeout must exceed the longest blocking read
# (1 s: XREAD in realtime/price_feed.py, Celery's BRPOP).
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)
# Seconds a pooled connection may sit idle before it is checked (PING) on its next use: one
# left broken by a Redis restart or a dropped network path is replaced instead of failing a
# call. No retry on a timeout: it would double the time a hung Redis holds the caller.
REDIS_HEALTH_CHECK_INTERVAL = env.int("REDIS_HEALTH_CHECK_INTERVAL", default=15)
# rediss:// only: the CA bundle (PEM) that signed the server's certificate (empty: the system's
# trusted CAs), and whether its certificate is checked: "required" (and its host name),
# "optional" or "none" (encrypted, not authenticated: only for a provider whose certificates
# cannot be checked).
REDIS_TLS_CA_FILE = env.str("REDIS_TLS_CA_FILE", default="")
REDIS_TLS_CERT_REQS = env.str("REDIS_TLS_CERT_REQS", default="required")
if REDIS_TLS_CERT_REQS not in ("required", "optional", "none"):
    raise ImproperlyConfigured("REDIS_TLS_CERT_REQS must be required, optional or none")
REDIS_TLS = (
    {"ssl_cert_reqs": REDIS_TLS_CERT_REQS, "ssl_ca_certs": REDIS_TLS_CA_FILE or None}
    if REDIS_URL.startswith("rediss://")
    else {}
)
# Connection options of every redis-py client for REDIS_URL: the cache and channel layer
# below, marketdata/store.py (price cache, book, presence, quotes, calculator, event consumer,
# sockets) and /health; Celery's broker gets the same through its own settings below.
# A command on a pooled connection that a Redis restart left dead (used within the health
# check interval) is retried once, at once, on a new connection: without it the first ticket
# or socket after a restart failed (bin/run, Redis killed for 10 s). Connection errors only:
# a retried timeout would double the time a hung Redis holds the caller. redis-py's asyncio
# clients need their own Retry class (REDIS_ASYNC_OPTIONS).
_RETRY_ONCE = {"backoff": NoBackoff(), "retries": 1, "supported_errors": (RedisConnectionError,)}
REDIS_OPTIONS = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
    "retry": Retry(**_RETRY_ONCE),
    **REDIS_TLS,
}
REDIS_ASYNC_OPTIONS = {**REDIS_OPTIONS, "retry": AsyncRetry(**_RETRY_ONCE)}

# The pub/sub layer with a pipelined group_send_many (realtime/layers.py): with a member in
# every group it sends 2-7x what the classic RedisChannelLayer does (~2,000/s here) and ~20x
# batched; its at-most-once delivery is covered by whole-state, numbered updates (BENCHMARKS.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "realtime.layers.PubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, **REDIS_ASYNC_OPTIONS}]},
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "clera",
        "OPTIONS": REDIS_OPTIONS,
    },
}

# No result backend: every task ignores its result and nothing reads one.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
}
# Without it kombu would take a rediss:// URL without checking the server's certificate.
CELERY_BROKER_USE_SSL = REDIS_TLS or False
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
# The built-in sandbox serves sip without a symbol limit, so the demo streams every holding;
# Alpaca's free plan is iex (30 symbols, one connection).
ALPACA_DATA_FEED = env.str("ALPACA_DATA_FEED", default="sip" if USE_BUILTIN_SANDBOX else "iex")
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

# --- Portfolio REST API (portfolio/api/) ----------------------------------------------------

# Requests per signed-in user (DRF rate: "240/minute", "10/second"; "none" switches it off).
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="240/minute")
# Token requests per client IP: slows down password guessing.
API_AUTH_THROTTLE_RATE = env.str("API_AUTH_THROTTLE_RATE", default="10/minute")
# Failed sign-ins (API token, sign-in form, admin) a username may have, and a client address,
# within LOGIN_LOCKOUT_SECONDS; after that it is refused (429, Retry-After) until
# LOGIN_LOCKOUT_SECONDS have passed since its last counted failure. 0 turns a limit off.
LOGIN_MAX_FAILURES_PER_USERNAME = env.int("LOGIN_MAX_FAILURES_PER_USERNAME", default=5)
LOGIN_MAX_FAILURES_PER_CLIENT = env.int("LOGIN_MAX_FAILURES_PER_CLIENT", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Seconds asset details (name, class, exchange) stay cached; assets rarely change.
ASSET_CACHE_TTL = env.int("ASSET_CACHE_TTL", default=86400)
# Seconds a portfolio history answer stays cached.
HISTORY_CACHE_TTL = env.int("HISTORY_CACHE_TTL", default=60)
# Largest single "add funds" deposit, in dollars.
FUNDS_MAX_AMOUNT = Decimal(env.str("FUNDS_MAX_AMOUNT", default="50000"))
# Seconds an "add funds" request waits for a newly linked bank account to be approved.
FUNDS_ACH_APPROVAL_WAIT = env.float("FUNDS_ACH_APPROVAL_WAIT", default=3.0)

SPECTACULAR_SETTINGS = {
    "TITLE": "Clera portfolio API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "",  # filled in by portfolio.api.schema.describe
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portfolio.api.schema.describe",
    ],
}

# --- Portfolio analytics: classification table (portfolio/classification.py) ---------------

# Classification CSVs (symbol,name,category,sector,industry), comma-separated, read in order:
# a later file's row replaces an earlier one. List the shipped file and yours to extend it,
# only yours to replace it. Relative paths are from the project root.
CLASSIFICATION_CSV = env.list(
    "CLASSIFICATION_CSV", default=["portfolio/data/classification.csv"]
)

# --- Portfolio analytics: risk views and statistics (portfolio/risk.py, performance.py) ---
# Every answer states the conventions it used; docs/analytics.md explains each.

# Trading days of daily returns behind risk, correlation and the frontier (252: a year).
ANALYTICS_WINDOW_DAYS = env.int("ANALYTICS_WINDOW_DAYS", default=252)
# Annual risk-free rate for Sharpe, Sortino and alpha (0.04 = 4 %).
ANALYTICS_RISK_FREE_RATE = Decimal(env.str("ANALYTICS_RISK_FREE_RATE", default="0.04"))
# The benchmark symbol for beta, alpha and the history chart's comparison line.
ANALYTICS_BENCHMARK = env.str("ANALYTICS_BENCHMARK", default="SPY")
# A holding over this share of the portfolio, or a sector over the next, is warned about.
ANALYTICS_MAX_WEIGHT = Decimal(env.str("ANALYTICS_MAX_WEIGHT", default="0.20"))
ANALYTICS_MAX_SECTOR_WEIGHT = Decimal(env.str("ANALYTICS_MAX_SECTOR_WEIGHT", default="0.40"))
# A holding with fewer common days of history is listed apart, with the reason.
ANALYTICS_MIN_HISTORY_DAYS = env.int("ANALYTICS_MIN_HISTORY_DAYS", default=60)
# Points on the efficient frontier, from minimum volatility to maximum return.
ANALYTICS_FRONTIER_POINTS = env.int("ANALYTICS_FRONTIER_POINTS", default=30)
# Seconds a risk, frontier or performance answer stays cached per account (prices move, but
# these are daily statistics: the cache keeps the warm answer fast).
ANALYTICS_CACHE_TTL = env.int("ANALYTICS_CACHE_TTL", default=300)

# --- Real-time portfolio --------------------------------------------------------------------

SYMBOL_COLLECTION_INTERVAL = env.int("SYMBOL_COLLECTION_INTERVAL", default=60)
PRICE_TTL = env.int("PRICE_TTL", default=3600)
MIN_UPDATE_INTERVAL = env.float("MIN_UPDATE_INTERVAL", default=1.0)
RECALCULATION_INTERVAL = env.int("RECALCULATION_INTERVAL", default=15)
ENABLE_REALTIME_PORTFOLIO = env.bool("ENABLE_REALTIME_PORTFOLIO", default=True)

# --- Real-time pipeline state: price cache, account book, broker events, quote consumer -----
# Read by marketdata/price_cache.py, marketdata/quotes.py, marketdata/events.py,
# marketdata/book/, realtime/collection.py and realtime/broker_events.py; README's
# configuration table says what each does.

TRADE_FRESHNESS_SECONDS = env.float("TRADE_FRESHNESS_SECONDS", default=60.0)
QUOTE_FLUSH_SECONDS = env.float("QUOTE_FLUSH_SECONDS", default=0.05)
QUOTE_FLUSH_SYMBOLS = env.int("QUOTE_FLUSH_SYMBOLS", default=5000)
QUOTE_STREAM_SILENCE_SECONDS = env.float("QUOTE_STREAM_SILENCE_SECONDS", default=30.0)
# Alpaca's free IEX plan streams at most 30 symbols; SIP plans have no symbol limit (0).
QUOTE_STREAM_SYMBOL_LIMIT = env.int(
    "QUOTE_STREAM_SYMBOL_LIMIT", default=30 if ALPACA_DATA_FEED == "iex" else 0
)
QUOTE_LOCK_SECONDS = env.float("QUOTE_LOCK_SECONDS", default=15.0)
EVENTS_SILENCE_SECONDS = env.float("EVENTS_SILENCE_SECONDS", default=45.0)
EVENTS_MAX_BACKOFF_SECONDS = env.float("EVENTS_MAX_BACKOFF_SECONDS", default=30.0)
ACCOUNT_FETCH_CONCURRENCY = env.int("ACCOUNT_FETCH_CONCURRENCY", default=8)
LAST_EQUITY_REFRESH_SPREAD = env.int("LAST_EQUITY_REFRESH_SPREAD", default=300)

# --- Real-time push: presence, fan-out, calculator, operations stats ------------------------
# Read by realtime/presence.py, fanout.py, calculator.py and stats.py; the README's
# configuration table says what each does.

# Seconds a socket counts as live after its last heartbeat: a little over two server
# heartbeats (15 s each by default), so a crashed process's sockets vanish soon after.
PRESENCE_TTL = env.float("PRESENCE_TTL", default=35.0)
# Updates kept per account for a reconnecting client, and how long they are kept.
UPDATE_HISTORY_LENGTH = env.int("UPDATE_HISTORY_LENGTH", default=50)
UPDATE_HISTORY_SECONDS = env.int("UPDATE_HISTORY_SECONDS", default=3600)
# Seconds trade events are collected per account before one "orders"/"positions" push.
TRADE_BATCH_WINDOW = env.float("TRADE_BATCH_WINDOW", default=1.0)
# Calculator processes sharing the accounts by hash (run_calculator --partition 0..N-1).
CALCULATOR_PARTITIONS = env.int("CALCULATOR_PARTITIONS", default=1)
# Seconds between a process's writes of its socket counters, and how long they count after
# (a process silent that long has died and drops out of the sums).
STATS_FLUSH_INTERVAL = env.float("STATS_FLUSH_INTERVAL", default=5.0)
STATS_TTL = env.int("STATS_TTL", default=20)
# Batched events needed before a low batch efficiency marks the service degraded.
STATS_MIN_BATCH_EVENTS = env.int("STATS_MIN_BATCH_EVENTS", default=100)
# Seconds without market data after which /health says "degraded" (still 200).
HEALTH_QUOTES_MAX_AGE = env.float("HEALTH_QUOTES_MAX_AGE", default=60.0)

# --- The portfolio page (templates/portfolio/page.html) --------------------------------------
# Seconds between summary polls while the page's socket is down, and between refreshes of the
# risk, diversification and allocation widgets.
PAGE_POLL_INTERVAL = env.float("PAGE_POLL_INTERVAL", default=5.0)
PAGE_ANALYTICS_REFRESH = env.float("PAGE_ANALYTICS_REFRESH", default=300.0)

# --- Real-time sockets: /ws/portfolio/<id> and /ws/stream ------------------------------------
# Read by realtime/consumers.py and its helpers (limits, tickets, relay, hub); the README's
# configuration table says what each does.

# Seconds between the server's app-level pings; a client silent longer than the timeout is
# closed (4408). Presence (PRESENCE_TTL) assumes the 15 s default.
WS_HEARTBEAT_INTERVAL = env.float("WS_HEARTBEAT_INTERVAL", default=15.0)
WS_HEARTBEAT_TIMEOUT = env.float("WS_HEARTBEAT_TIMEOUT", default=30.0)
# Open sockets per user (across processes), per daphne process, and across all processes
# (0 = no overall cap); one more is closed with 1013.
WS_MAX_CONNECTIONS_PER_USER = env.int("WS_MAX_CONNECTIONS_PER_USER", default=5)
WS_MAX_CONNECTIONS_PER_PROCESS = env.int("WS_MAX_CONNECTIONS_PER_PROCESS", default=10000)
WS_MAX_CONNECTIONS_TOTAL = env.int("WS_MAX_CONNECTIONS_TOTAL", default=0)
# Handshakes one process works on at once (from the request to the socket's first frame); more
# are refused at once with 1013 and a retry_after, before any session or database read. Daphne
# drops a handshake not accepted within 5 s and lets its work run on: without this bound a
# reconnect storm of thousands spent its time on handshakes that were dropped anyway.
WS_MAX_PENDING_HANDSHAKES = env.int("WS_MAX_PENDING_HANDSHAKES", default=200)
# Inbound frames: the largest accepted, the most per second, and the bad frames a minute a
# client may send (each answered with an error) before it is closed with 1008.
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=4096)
WS_MAX_MESSAGES_PER_SECOND = env.int("WS_MAX_MESSAGES_PER_SECOND", default=20)
WS_MAX_BAD_FRAMES = env.int("WS_MAX_BAD_FRAMES", default=5)
# Symbols one /ws/stream socket may follow, and the least seconds between two price_update
# messages of one symbol (the relay coalesces quotes in between).
WS_MAX_SYMBOLS = env.int("WS_MAX_SYMBOLS", default=50)
WS_STREAM_INTERVAL = env.float("WS_STREAM_INTERVAL", default=0.25)
# Seconds a ticket from POST /api/realtime/ticket can be redeemed (once).
WS_TICKET_TTL = env.int("WS_TICKET_TTL", default=30)
# Snapshots a /ws/portfolio socket may get a minute by resuming from an update no longer kept
# (each may read the broker; at least 1); beyond, resume answers "resume_limited", retry_after.
WS_MAX_RESUME_SNAPSHOTS = env.int("WS_MAX_RESUME_SNAPSHOTS", default=3)
# Seconds a daphne process given SIGTERM waits for its sockets to close (1001) before exiting.
WS_SHUTDOWN_GRACE = env.float("WS_SHUTDOWN_GRACE", default=5.0)

# --- Logging --------------------------------------------------------------------------------

# Every process logs through this configuration, Celery's worker and beat too (celery_app.py),
# so no record reaches a sink before the filter has replaced the secrets below with ***.
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
                OPS_TOKEN,
                *url_passwords(REDIS_URL, CELERY_BROKER_URL, env.str("DATABASE_URL", default="")),
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
