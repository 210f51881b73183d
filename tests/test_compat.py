"""Every private third-party API behind marketdata.compat still has the shape its shim expects.

Each test names the library (and the version requirements.txt pins) whose internals it checks;
after an upgrade, a failure here names the shim to rework before the product finds out. Apart
from marketdata.compat itself, this is the one module that touches a library's private names.
"""

import asyncio
import inspect
from datetime import UTC, datetime

import msgpack
import pytest
import requests
from alpaca.broker import BrokerClient
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream
from alpaca.data.live.websocket import DataStream
from alpaca.data.models import Quote
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from redis.asyncio import Redis

from marketdata import compat

# --- alpaca-py 0.44.0 -----------------------------------------------------------------------


class CountingSession(requests.Session):
    """A Session that counts the requests sent through it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def request(self, *args: object, **kwargs: object) -> requests.Response:
        self.requests += 1
        return super().request(*args, **kwargs)


def sandbox_client() -> BrokerClient:
    key, secret = settings.ALPACA_BROKER_CREDENTIALS
    return BrokerClient(key, secret, raw_data=True, url_override=settings.ALPACA_BROKER_URL)


def test_the_rest_client_keeps_its_retry_settings_and_session_where_the_shims_set_them():
    client = sandbox_client()

    assert {"_retry", "_retry_codes", "_session"} <= vars(client).keys()
    assert 429 in client._retry_codes
    assert isinstance(client._session, requests.Session)


def test_with_retries_off_a_429_fails_at_once_through_our_session(faults):
    faults(rate_limited=1)
    client = sandbox_client()
    session = CountingSession()
    compat.disable_sdk_retries(client)
    compat.replace_sdk_session(client, session)

    with pytest.raises(APIError) as failure:
        client.get("/clock")

    assert failure.value.status_code == 429
    assert session.requests == 1  # no sleeping retries


def test_a_data_stream_keeps_its_flags_and_coroutines_where_the_shims_use_them():
    stream = StockDataStream("key", "secret")

    assert {"_running", "_should_run", "_loop", "_stop_stream_event"} <= vars(stream).keys()
    for name in ("_run_forever", "_start_ws", "_consume"):
        assert inspect.iscoroutinefunction(getattr(DataStream, name)), name
    assert not compat.stream_is_running(stream)
    assert not compat.stream_stop_requested(stream)


async def test_the_sdk_loop_ends_for_a_stream_stopped_before_it_subscribed():
    stream = StockDataStream("key", "secret")
    await stream.stop_ws()

    assert compat.stream_stop_requested(stream)
    await asyncio.wait_for(compat.run_stream_forever(stream), timeout=5)


async def test_a_connected_stream_runs_and_consumes_until_stopped(sandbox_url):
    origin = sandbox_url.replace("http://", "ws://", 1)
    stream = StockDataStream(
        settings.SANDBOX_API_KEY,
        settings.SANDBOX_SECRET_KEY,
        feed=DataFeed.IEX,
        url_override=f"{origin}/v2/iex",
    )

    await compat.connect_stream(stream)
    assert compat.stream_is_running(stream)
    await stream.stop_ws()

    assert await asyncio.wait_for(compat.consume_stream(stream), timeout=10) is False
    assert not compat.stream_is_running(stream)  # the SDK closed the socket


QUOTE = {
    "T": "q", "S": "AAPL", "bx": "V", "bp": 189.99, "bs": 100.0, "ax": "V", "ap": 190.01,
    "as": 200.0, "c": ["R"], "z": "C",
    "t": msgpack.Timestamp.from_datetime(datetime(2026, 11, 20, 15, 0, tzinfo=UTC)),
}  # fmt: skip


async def test_a_decoded_message_reaches_its_handler_raw_or_as_a_model():
    received: list[object] = []

    async def handler(quote: object) -> None:
        received.append(quote)

    for raw_data in (True, False):
        stream = StockDataStream("key", "secret", raw_data=raw_data)
        stream.subscribe_quotes(handler, "AAPL")
        await compat.dispatch_stream_message(stream, dict(QUOTE))

    raw, model = received
    assert raw == QUOTE
    assert isinstance(model, Quote) and model.ask_price == 190.01


# --- channels-redis 4.3.0 -------------------------------------------------------------------


async def test_group_channel_and_shard_are_those_group_send_publishes_through():
    # Two hosts, so choosing the wrong shard would show; nothing connects until a publish.
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"])
    loop_layer = compat.pubsub_loop_layer(layer)
    assert compat.pubsub_loop_layer(layer) is loop_layer

    for group in ("portfolio.a", "portfolio.b", "portfolio.c"):
        channel = compat.group_channel_name(loop_layer, group)
        shard = compat.shard_for(loop_layer, channel)
        published: list[tuple[str, bytes]] = []

        async def publish(channel: str, data: bytes, published: list = published) -> None:
            published.append((channel, data))

        shard.publish = publish  # any other shard would try its unreachable host
        await loop_layer.group_send(group, {"type": "update", "group": group})

        ((sent_on, data),) = published
        assert sent_on == channel
        assert layer.deserialize(data) == {"type": "update", "group": group}


async def test_a_shard_client_is_its_redis_client_under_its_lock():
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1/0"])
    loop_layer = compat.pubsub_loop_layer(layer)
    shard = compat.shard_for(loop_layer, compat.group_channel_name(loop_layer, "g"))

    async with compat.shard_client(shard) as client:
        assert isinstance(client, Redis)
        assert shard._lock.locked()
    assert not shard._lock.locked()


# --- daphne 4.2.3 ---------------------------------------------------------------------------


def test_daphne_replies_can_be_intercepted_and_the_rest_still_reach_daphne():
    from daphne.ws_protocol import WebSocketProtocol

    assert list(inspect.signature(WebSocketProtocol.handle_reply).parameters) == [
        "self",
        "message",
    ]

    class Protocol(WebSocketProtocol):
        """A subclass, so daphne's own class stays as it is for every other test."""

    offered: list[dict] = []

    def intercept(protocol: object, message: dict) -> bool:
        offered.append(message)
        return message["type"] == "websocket.close"

    compat.intercept_websocket_replies(Protocol, intercept)
    compat.intercept_websocket_replies(Protocol, intercept)  # installing twice wraps once
    protocol = Protocol.__new__(Protocol)
    protocol.state = WebSocketProtocol.STATE_OPEN
    sent: list[object] = []
    protocol.serverSend = lambda content, binary: sent.append(content)

    protocol.handle_reply({"type": "websocket.close", "code": 1001})
    protocol.handle_reply({"type": "websocket.send", "text": "left to daphne"})

    assert [message["type"] for message in offered] == ["websocket.close", "websocket.send"]
    assert sent == ["left to daphne"]
