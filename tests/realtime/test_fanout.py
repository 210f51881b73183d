"""The push over the real channel layer and Redis: numbering, replay and batched sends."""

import asyncio
import re

import pytest
from channels.layers import get_channel_layer

from realtime import fanout

pytestmark = pytest.mark.usefixtures("redis_client")


async def member(group: str) -> str:
    """A real channel of this process's layer, added to ``group``."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def receive(channel: str, timeout: float = 10.0) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


def test_group_names_are_channels_safe() -> None:
    safe = re.compile(r"^[A-Za-z0-9._-]{1,99}$")
    for account_id in ("3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b", "weird id/with:chars", "é" * 200):
        name = fanout.group_name(account_id)
        assert safe.match(name), name
    assert fanout.group_name("a b") != fanout.group_name("a_b")


async def test_publish_numbers_and_delivers_to_the_accounts_group() -> None:
    channel = await member(fanout.group_name("acct-a"))

    first = await fanout.publish("acct-a", {"total_value": "10.00"})
    second = await fanout.publish("acct-a", {"total_value": "11.00"})

    assert (first, second) == (1, 2)
    assert await receive(channel) == {
        "type": "portfolio.update",
        "seq": 1,
        "payload": {"total_value": "10.00"},
    }
    assert (await receive(channel))["seq"] == 2


async def test_publish_many_reaches_each_group_once_with_its_own_numbers() -> None:
    channels = {a: await member(fanout.group_name(a)) for a in ("acct-a", "acct-b", "acct-c")}
    await fanout.publish("acct-b", {"n": "0"})
    await receive(channels["acct-b"])

    numbers = await fanout.publish_many({a: {"n": a} for a in channels})

    assert numbers == {"acct-a": 1, "acct-b": 2, "acct-c": 1}
    for account_id, channel in channels.items():
        message = await receive(channel)
        assert message["seq"] == numbers[account_id]
        assert message["payload"] == {"n": account_id}


async def test_updates_since_returns_the_gap_or_none_when_too_old(settings) -> None:
    settings.UPDATE_HISTORY_LENGTH = 5
    for value in range(1, 9):
        await fanout.publish("acct-a", {"v": str(value)})

    assert await fanout.updates_since("acct-a", 8) == []
    assert await fanout.updates_since("acct-a", 6) == [(7, {"v": "7"}), (8, {"v": "8"})]
    kept = await fanout.updates_since("acct-a", 3)
    assert [seq for seq, _ in kept] == [4, 5, 6, 7, 8]
    assert await fanout.updates_since("acct-a", 2) is None  # 3 is no longer kept
    assert await fanout.updates_since("acct-a", 9) is None  # never sent: another epoch
    assert await fanout.updates_since("acct-never", 0) is None


async def test_relayed_trade_events_carry_their_kind() -> None:
    channel = await member(fanout.group_name("acct-a"))
    await fanout.push_events(
        {("acct-a", "orders"): [{"event": "new"}], ("acct-a", "positions"): []}
    )
    assert await receive(channel) == {"type": "portfolio.orders", "events": [{"event": "new"}]}
