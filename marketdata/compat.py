"""Every use of a third-party library's private API, each behind a function with a plain name.

The lowest module of the lowest layer, so any layer may import it; nothing else in the product
touches a library's private attributes. Each shim names what it relies on and the version it
was checked against (the pins in requirements.txt); ``tests/test_compat.py`` fails when one of
them changes shape, so an upgrade breaks there first, not in production.

* alpaca-py 0.44.0 — ``RESTClient._retry``, ``_retry_codes``, ``_session``; ``DataStream``'s
  ``_running``, ``_should_run``, ``_loop``, ``_stop_stream_event``, ``_run_forever()``,
  ``_start_ws()``, ``_consume()``, ``_dispatch()``.
* channels-redis 4.3.0 — ``RedisPubSubChannelLayer._get_layer()``; the loop layer's
  ``channels``, ``_get_group_channel_name()`` and ``_get_shard()``; the shard's ``_lock``,
  ``_ensure_redis()`` and ``_redis``.
* daphne 4.2.3 — ``WebSocketProtocol.handle_reply(self, message)``, replaced on the class.

Nothing here imports daphne: importing it is how :mod:`realtime.serving` tells it is running
under daphne.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests
    from alpaca.common.rest import RESTClient
    from alpaca.data.live.websocket import DataStream
    from channels_redis.pubsub import (
        RedisPubSubChannelLayer,
        RedisPubSubLoopLayer,
        RedisSingleShardConnection,
    )
    from redis.asyncio import Redis

# --- alpaca-py 0.44.0: the REST client --------------------------------------------------------


def disable_sdk_retries(client: RESTClient) -> None:
    """Make a 429 or 504 fail at once instead of after three 3-second sleeps.

    ``retry_attempts=0`` cannot do it (the SDK treats 0 as "use the default").
    Private API: ``RESTClient._retry`` and ``_retry_codes``.
    """
    client._retry = 0
    client._retry_codes = []


def replace_sdk_session(client: RESTClient, session: requests.Session) -> None:
    """Send the client's requests through ``session`` (the SDK builds its own, with no
    timeout). Private API: ``RESTClient._session``."""
    client._session.close()
    client._session = session


# --- alpaca-py 0.44.0: the market-data streams ------------------------------------------------


def stream_is_running(stream: DataStream) -> bool:
    """Whether the stream is connected, authenticated and subscribed on a live socket (so
    ``subscribe_*`` goes out at once). Private API: ``DataStream._running``."""
    return bool(stream._running)


def stream_stop_requested(stream: DataStream) -> bool:
    """Whether ``stop_ws()`` was called: a socket closing afterwards is no failure.
    Private API: ``DataStream._should_run``."""
    return not stream._should_run


async def run_stream_forever(stream: DataStream) -> None:
    """The SDK's own connect-consume-reconnect loop on the running event loop (``run()``
    would start a loop of its own). Private API: ``DataStream._run_forever()``."""
    await stream._run_forever()


async def connect_stream(stream: DataStream) -> None:
    """Connect and authenticate now, on the running loop, with nothing subscribed yet (the
    SDK's loop would wait for a subscription first); afterwards ``subscribe_*`` from another
    thread goes over this socket. Private API: ``DataStream._loop``, ``_stop_stream_event``,
    ``_start_ws()``, ``_running``."""
    stream._loop = asyncio.get_running_loop()
    stream._stop_stream_event = asyncio.Event()
    await stream._start_ws()
    stream._running = True


async def consume_stream(stream: DataStream) -> bool:
    """Hand messages to the handlers until a stop (False) or ``data_timeout`` of silence
    (True); a dropped socket raises. Private API: ``DataStream._consume()``."""
    return await stream._consume()


def dispatch_stream_message(stream: DataStream, message: dict) -> Awaitable[None]:
    """Hand one decoded message to the stream's handlers, as its receive loop does (the SDK's
    own coroutine, unwrapped: benchmarks time it). Private API: ``DataStream._dispatch()``."""
    return stream._dispatch(message)


# --- channels-redis 4.3.0: the pub/sub layer --------------------------------------------------


def pubsub_loop_layer(layer: RedisPubSubChannelLayer) -> RedisPubSubLoopLayer:
    """The layer's per-event-loop worker for the running loop, made on first use.
    Private API: ``RedisPubSubChannelLayer._get_layer()``."""
    return layer._get_layer()


def group_channel_name(loop_layer: RedisPubSubLoopLayer, group: str) -> str:
    """The Redis channel a ``group_send`` to ``group`` publishes on.
    Private API: ``RedisPubSubLoopLayer._get_group_channel_name()``."""
    return loop_layer._get_group_channel_name(group)


def forget_channel(loop_layer: RedisPubSubLoopLayer, channel: str) -> bool:
    """Drop ``channel``'s receive queue from the loop layer; True if it had one (then it is
    still subscribed). Undocumented API: ``RedisPubSubLoopLayer.channels``."""
    return loop_layer.channels.pop(channel, None) is not None


def shard_for(loop_layer: RedisPubSubLoopLayer, channel: str) -> RedisSingleShardConnection:
    """The connection to the Redis host that carries ``channel``.
    Private API: ``RedisPubSubLoopLayer._get_shard()``."""
    return loop_layer._get_shard(channel)


@asynccontextmanager
async def shard_client(shard: RedisSingleShardConnection) -> AsyncIterator[Redis]:
    """The shard's Redis client, under the lock its own ``publish`` holds, so nothing else
    publishes through it meanwhile. Private API: the shard's ``_lock``, ``_ensure_redis()``
    and ``_redis``."""
    async with shard._lock:
        shard._ensure_redis()
        yield shard._redis


# --- daphne 4.2.3: the websocket protocol -----------------------------------------------------


def intercept_websocket_replies(
    protocol_class: Any, intercept: Callable[[Any, dict], bool]
) -> None:
    """Offer every ASGI message the application sends to a daphne websocket to
    ``intercept(protocol, message)`` first; daphne handles those it returns False for.

    Idempotent. Private API: ``daphne.ws_protocol.WebSocketProtocol.handle_reply(self,
    message)``, replaced on ``protocol_class``.
    """
    original = protocol_class.handle_reply
    if getattr(original, "intercepted_by", None) is intercept:
        return

    @functools.wraps(original)
    def handle_reply(self: Any, message: dict) -> None:
        if not intercept(self, message):
            original(self, message)

    handle_reply.intercepted_by = intercept
    protocol_class.handle_reply = handle_reply
