"""Redis killed and restarted under open sockets: they stay open and get updates and prices
again without the client doing anything (a Redis of this test's own, not the session's)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from redis.exceptions import RedisError

from clera.devstack.embedded_redis import EmbeddedRedis
from marketdata.price_cache import PriceCache, quote_fields, trade_fields
from realtime import fanout, presence

pytestmark = pytest.mark.django_db(transaction=True)


async def eventually(attempt, what: str, seconds: float = 30.0):
    """Retry ``attempt`` (it returns a result, or None / raises RedisError) until it succeeds:
    a restarted Redis and the reconnections it causes announce themselves nowhere."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        try:
            result = await attempt()
        except RedisError:
            result = None
        if result:
            return result
        await asyncio.sleep(0.2)
    pytest.fail(f"gave up after {seconds:g}s waiting for {what}")


def write_price(symbol: str, price: str) -> None:
    now = datetime.now(UTC)
    PriceCache().write_batch(
        {symbol: quote_fields(Decimal(price), 100, Decimal(price), 100, now)},
        {symbol: trade_fields(Decimal(price), 1, now)},
        {},
    )


@pytest.fixture
def own_redis(settings):
    server = EmbeddedRedis(port=0).start()
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": settings.CHANNEL_LAYERS["default"]["BACKEND"],
                    "CONFIG": {"hosts": [server.url]}},
    }  # fmt: skip
    settings.WS_HEARTBEAT_INTERVAL = 0.3
    settings.WS_HEARTBEAT_TIMEOUT = 60
    yield server
    server.stop()


async def test_sockets_recover_from_a_redis_restart(connect, owner, own_redis):
    portfolio = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await portfolio.next_of("snapshot")
    for n in range(3):
        seq = await fanout.publish(owner.account_id, {"before": n})
        assert (await portfolio.next_of("update"))["seq"] == seq
    stream = await connect("/ws/stream", cookie=owner.cookie)
    await stream.send({"type": "subscribe", "symbols": ["AAPL"]})
    await stream.next_of("system")
    try:
        own_redis.kill()  # and back empty: subscriptions, presence, leases, sequences gone
        own_redis.revive()

        async def pushed():
            await fanout.publish(owner.account_id, {"after": "restart"})
            while not await portfolio.receive_nothing(timeout=0.1):
                message = await portfolio.next()
                if message["type"] == "update":
                    return message

        update = await eventually(pushed, "an update on the open portfolio socket")
        assert update["data"] == {"after": "restart"}
        assert update["seq"] > seq  # numbered after what the client saw: it takes it

        live = await eventually(
            lambda: presence.alive([owner.account_id]), "the heartbeat to restore presence"
        )
        assert live == {owner.account_id}

        async def priced():
            write_price("AAPL", "123.45")
            while not await stream.receive_nothing(timeout=0.1):
                message = await stream.next()
                if message["type"] == "price_update":
                    return message

        assert (await eventually(priced, "a price on the open stream socket"))["price"] == "123.45"
    finally:
        await portfolio.disconnect()
        await stream.disconnect()
