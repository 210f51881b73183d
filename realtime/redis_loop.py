"""One asyncio Redis client per event loop, shared by the real-time modules of a process.

``marketdata.store.async_redis_client()`` makes a new client on every call, and an asyncio
client's connections belong to the loop that opened them. Consumers (thousands per daphne
process) and the calculator call Redis many times a second, so they share one pooled client
per running loop (and ``REDIS_URL``) instead of opening a pool per call.
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio
from django.conf import settings

from marketdata.store import async_redis_client

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]] = (
    weakref.WeakKeyDictionary()
)


def loop_client() -> redis.asyncio.Redis:
    """The running loop's client for ``REDIS_URL`` (made on first use; reconnects by itself)."""
    per_url = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_url.get(settings.REDIS_URL)
    if client is None:
        client = per_url[settings.REDIS_URL] = async_redis_client()
    return client


async def forget_loop_client() -> None:
    """Close and drop the running loop's clients (shutdown, tests that restart Redis)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()
