"""Redis connections and the value encodings shared by every real-time key.

The price cache (:mod:`marketdata.price_cache`), the account book (:mod:`marketdata.book`), the
event cursors (:mod:`marketdata.events`) and the quote consumer's status all live in the Redis
at ``REDIS_URL`` and write values the same way, so any of them can be read by any process:

* amounts and quantities: plain decimal strings (``"187.2"``, ``"-3"``), parsed to ``Decimal``;
* moments: :func:`marketdata.moments.stored` (fixed-width UTC, so they compare as strings).
"""

from __future__ import annotations

import threading
from decimal import Decimal, InvalidOperation
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: A hung Redis must not hang a worker or a stream thread for ever; a dead one fails fast.
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_INTERVAL = 15
#: Connections one asyncio client (one per event loop) may hold to Redis at once.
ASYNC_POOL_SIZE = 64

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _options() -> dict[str, Any]:
    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }


def redis_client() -> redis.Redis:
    """The process's shared client for ``REDIS_URL`` (thread-safe; reconnects by itself)."""
    url = settings.REDIS_URL
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, **_options())
        return client


def async_redis_client() -> redis.asyncio.Redis:
    """A new asyncio client for ``REDIS_URL``; its connections belong to the caller's loop.

    Its pool *waits* for a free connection (up to SOCKET_TIMEOUT) when all ASYNC_POOL_SIZE are
    busy, instead of failing with "Too many connections" when a burst of sockets connects.
    """
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL, max_connections=ASYNC_POOL_SIZE, timeout=SOCKET_TIMEOUT, **_options()
    )
    return redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: aclose() ends it


@receiver(setting_changed)
def _forget_clients(setting: str, **kwargs: Any) -> None:
    """A test that points REDIS_URL elsewhere gets a client for the new URL."""
    if setting == "REDIS_URL":
        with _clients_lock:
            _clients.clear()


def parse_decimal(text: bytes | str | None) -> Decimal | None:
    """A finite Decimal from a stored decimal string; None for a missing or unreadable value."""
    if text is None or text == b"" or text == "":
        return None
    try:
        number = Decimal(text.decode() if isinstance(text, bytes) else text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
