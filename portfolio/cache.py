"""The API's read-through cache (Django's cache, i.e. Redis) that never fails a read.

Everything :mod:`portfolio.selectors` caches can be asked of the broker again, so a cache that
does not answer is a cache miss, never an error: a read goes to the broker, a write is
dropped, and a warning is logged (at most once per ``QUIET_SECONDS``, so an outage does not
flood the logs). Only Redis's own failures are absorbed; anything else is a bug and raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

#: Seconds between two warnings about an unreachable cache.
QUIET_SECONDS = 10.0
_warned_at = -QUIET_SECONDS


def _unreachable(operation: str, error: RedisError) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at >= QUIET_SECONDS:
        _warned_at = now
        logger.warning("cache unreachable (%s: %r): reading from the broker", operation, error)


def get(key: str) -> Any:
    """The cached value, or None when absent or the cache is unreachable."""
    try:
        return cache.get(key)
    except RedisError as error:
        _unreachable("get", error)
        return None


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    """The cached values found ({} when the cache is unreachable)."""
    try:
        return cache.get_many(list(keys))
    except RedisError as error:
        _unreachable("get_many", error)
        return {}


def set(key: str, value: Any, timeout: float) -> None:  # noqa: A001 - the cache's own verb
    try:
        cache.set(key, value, timeout)
    except RedisError as error:
        _unreachable("set", error)


def set_many(values: Mapping[str, Any], timeout: float) -> None:
    try:
        cache.set_many(dict(values), timeout)
    except RedisError as error:
        _unreachable("set_many", error)


def add(key: str, value: Any, timeout: float) -> bool:
    """Store unless present: True if stored — and True when the cache is unreachable, so
    whoever asks "am I first?" goes ahead and asks the broker."""
    try:
        return cache.add(key, value, timeout)
    except RedisError as error:
        _unreachable("add", error)
        return True
