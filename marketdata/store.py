"""Redis connections and the value encodings shared by every real-time key.

The price cache (:mod:`marketdata.price_cache`), the account book (:mod:`marketdata.book`), the
event cursors (:mod:`marketdata.events`) and the quote consumer's status all live in the Redis
at ``REDIS_URL`` and write values the same way, so any of them can be read by any process:

* amounts and quantities: plain decimal strings (``"187.2"``, ``"-3"``), parsed to ``Decimal``;
* moments: :func:`marketdata.moments.stored` (fixed-width UTC, so they compare as strings).

Every client here connects with ``settings.REDIS_OPTIONS`` (timeouts, health checks, TLS), as
the cache, the channel layer and Celery's broker do: a call on a Redis that does not answer
raises ``redis.TimeoutError`` or ``redis.ConnectionError`` within seconds, and the next call
connects again by itself.
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

#: Connections one asyncio client (one per event loop) may hold to Redis at once.
ASYNC_POOL_SIZE = 64

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """The process's shared client for ``REDIS_URL`` (thread-safe; reconnects by itself).

    Connected with ``REDIS_OPTIONS`` (timeouts, health checks, TLS): a hung or unreachable
    Redis fails a call within REDIS_SOCKET_TIMEOUT / REDIS_CONNECT_TIMEOUT.
    """
    url = settings.REDIS_URL
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, **settings.REDIS_OPTIONS)
        return client


def async_redis_client() -> redis.asyncio.Redis:
    """A new asyncio client for ``REDIS_URL`` (``REDIS_ASYNC_OPTIONS``: :func:`redis_client`'s);
    its connections belong to the caller's loop.

    Its pool *waits* for a free connection (up to REDIS_SOCKET_TIMEOUT) when all
    ASYNC_POOL_SIZE are busy, instead of failing with "Too many connections" when a burst of
    sockets connects.
    """
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=ASYNC_POOL_SIZE,
        timeout=settings.REDIS_SOCKET_TIMEOUT,
        **settings.REDIS_ASYNC_OPTIONS,
    )
    return redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: aclose() ends it


@receiver(setting_changed)
def _forget_clients(setting: str, **kwargs: Any) -> None:
    """A test that points REDIS_URL (or the options) elsewhere gets a client for the new URL."""
    if setting in ("REDIS_URL", "REDIS_OPTIONS", "REDIS_ASYNC_OPTIONS"):
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
