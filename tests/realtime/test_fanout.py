"""The push over the real channel layer and Redis: numbering, replay and batched sends."""

import asyncio
import json
import re
import time

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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_publish_numbers_and_delivers_to_the_accounts_group() -> None:
    channel = await member(fanout.group_name("acct-a"))
    before = now_ms()

    first = await fanout.publish("acct-a", {"total_value": "10.00"})
    second = await fanout.publish("acct-a", {"total_value": "11.00"})

    assert before < first <= now_ms() + 1  # a new counter starts at the clock, in ms
    assert second == first + 1
    assert await fanout.current_seq("acct-a") == second
    assert await receive(channel) == {
        "type": "portfolio.update",
        "seq": first,
        "data": '{"total_value":"10.00"}',  # encoded once, here: every socket sends this text
    }
    assert (await receive(channel))["seq"] == second
    assert await fanout.latest_state("acct-a") == (second, '{"total_value":"11.00"}')


async def test_a_snapshot_is_the_newest_whole_update_with_the_partial_ones_after_it(settings):
    settings.UPDATE_HISTORY_LENGTH = 4
    whole = {"account_id": "acct-a", "total_value": "10.00", "holdings": [{"symbol": "A"}]}
    first = await fanout.publish("acct-a", whole)
    partials = [{"partial": True, "total_value": f"1{n}.00"} for n in range(1, 4)]
    numbers = [await fanout.publish("acct-a", partial) for partial in partials]

    missed = await fanout.updates_since("acct-a", first)
    assert [(seq, json.loads(data)) for seq, data in missed] == list(
        zip(numbers, partials, strict=True)
    )
    seq, state = await fanout.latest_state("acct-a")
    assert seq == numbers[-1] and json.loads(state) == {**whole, "total_value": "13.00"}

    for cash in ("1.00", "2.00"):  # the first partial one after the whole one drops out
        await fanout.publish("acct-a", {"partial": True, "cash": cash})
    assert await fanout.latest_state("acct-a") is None  # the socket values its snapshot afresh
    last = await fanout.publish("acct-a", whole)
    assert await fanout.latest_state("acct-a") == (last, json.dumps(whole, separators=(",", ":")))
    await fanout.forget_states(["acct-a"])  # nobody watches it: the next snapshot is valued anew
    assert await fanout.latest_state("acct-a") is None


async def test_numbers_keep_growing_after_redis_loses_the_counter(redis_client) -> None:
    last = 0
    for _ in range(3):
        last = await fanout.publish("acct-a", {"v": "before"})
    while now_ms() <= last:  # the bound the numbering relies on: fewer updates than ms
        await asyncio.sleep(0.001)
    redis_client.flushdb()  # a restarted, empty Redis (or a counter that expired)

    assert await fanout.updates_since("acct-a", last) is None  # a gap: the client re-snapshots
    assert await fanout.current_seq("acct-a") > last  # the snapshot's number
    assert await fanout.publish("acct-a", {"v": "after"}) > last


async def test_a_snapshot_before_any_update_can_be_resumed_from() -> None:
    seen = await fanout.current_seq("acct-a")  # what a snapshot says, before any update
    assert seen == await fanout.current_seq("acct-a")

    first = await fanout.publish("acct-a", {"v": "1"})

    assert first == seen + 1
    assert await fanout.updates_since("acct-a", seen) == [(first, '{"v":"1"}')]


async def test_publish_many_reaches_each_group_once_with_its_own_numbers() -> None:
    channels = {a: await member(fanout.group_name(a)) for a in ("acct-a", "acct-b", "acct-c")}
    b0 = await fanout.publish("acct-b", {"n": "0"})
    await receive(channels["acct-b"])

    numbers = await fanout.publish_many({a: {"n": a} for a in channels})

    assert numbers["acct-b"] == b0 + 1
    assert numbers["acct-a"] > b0 and numbers["acct-c"] > b0  # new counters, from the clock
    for account_id, channel in channels.items():
        message = await receive(channel)
        assert message["seq"] == numbers[account_id]
        assert json.loads(message["data"]) == {"n": account_id}


async def test_updates_since_returns_the_gap_or_none_when_too_old(settings) -> None:
    settings.UPDATE_HISTORY_LENGTH = 5
    numbers = [await fanout.publish("acct-a", {"v": str(value)}) for value in range(1, 9)]
    assert numbers == list(range(numbers[0], numbers[0] + 8))
    n = dict(enumerate(numbers, start=1))  # the n-th update's number

    assert await fanout.updates_since("acct-a", n[8]) == []
    assert await fanout.updates_since("acct-a", n[6]) == [(n[7], '{"v":"7"}'), (n[8], '{"v":"8"}')]
    kept = await fanout.updates_since("acct-a", n[3])
    assert [seq for seq, _ in kept] == [n[4], n[5], n[6], n[7], n[8]]
    assert await fanout.updates_since("acct-a", n[2]) is None  # 3 is no longer kept
    assert await fanout.updates_since("acct-a", n[8] + 1) is None  # never sent: another epoch
    assert await fanout.updates_since("acct-never", 0) is None  # no counter: nothing kept


async def test_relayed_trade_events_carry_their_kind() -> None:
    channel = await member(fanout.group_name("acct-a"))
    await fanout.push_events(
        {("acct-a", "orders"): [{"event": "new"}], ("acct-a", "positions"): []}
    )
    assert await receive(channel) == {"type": "portfolio.orders", "events": [{"event": "new"}]}
