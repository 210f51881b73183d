"""The calculator on real Redis and the real channel layer: who gets pushed, what, and how often.

Prices are written as the quote consumer writes them (``PriceCache.write_batch``: the price hash
and one ``clera:changes`` entry); sockets are real members of the accounts' groups.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from channels.layers import get_channel_layer
from django.test import override_settings

from clera.devstack.embedded_redis import EmbeddedRedis
from marketdata import book
from marketdata.price_cache import PriceCache, trade_fields
from realtime import fanout, presence, protocol, stats
from realtime.broker_events import TRADE_UPDATES_CHANNEL
from realtime.calculator import Calculator
from realtime.redis_loop import forget_loop_client
from realtime.trade_events import TradeEvents
from tests.realtime.conftest import position

pytestmark = pytest.mark.usefixtures("redis_client")

A, B, C = (str(uuid.UUID(int=n)) for n in (101, 102, 103))
CASH = {A: Decimal("1000.50"), B: Decimal("20.00"), C: Decimal("5.00")}
LAST_EQUITY = {A: Decimal("5000.00"), B: Decimal("900.00"), C: Decimal("100.00")}
HOLDINGS = {  # A and C hold AAA; only B holds CCC
    A: [position("AAA", "10", avg="90"), position("BBB", "-3", avg="40")],
    B: [position("CCC", "2.5", avg="300")],
    C: [position("AAA", "1")],
}
PREV_CLOSE = {"AAA": Decimal("100.00"), "BBB": Decimal("50.00"), "CCC": Decimal("310.00")}


def build_book(client: redis.Redis | None = None) -> None:
    """The three accounts, through the book's own API, with a price for every symbol."""
    at = datetime.now(UTC) - timedelta(seconds=1)
    book.store_collection(HOLDINGS, at, client=client)
    for account_id in HOLDINGS:
        revision = book.load([account_id], client)[account_id].revision
        assert book.store_balances(
            account_id, CASH[account_id], LAST_EQUITY[account_id], at, revision, 0, client
        )
    cache = PriceCache(client)
    cache.set_prev_close(PREV_CLOSE)
    trade({"AAA": "101", "BBB": "49.5", "CCC": "320"}, cache)


def trade(prices: dict[str, str], cache: PriceCache | None = None) -> None:
    """Trades as the quote consumer writes them (which also names them on clera:changes)."""
    at = datetime.now(UTC)
    trades = {symbol: trade_fields(Decimal(p), Decimal(1), at) for symbol, p in prices.items()}
    (cache or PriceCache()).write_batch({}, trades, {})


def recompute(account_id: str, prices: dict[str, str]) -> dict:
    """Total, today's return and holdings from the book's inputs, independently, to the cent."""
    total = CASH[account_id]
    holdings = {}
    for held in HOLDINGS[account_id]:
        price = Decimal(prices[held.symbol])
        value = held.qty * price
        total += value
        holdings[held.symbol] = {
            "price": price,
            "market_value": value.quantize(Decimal("0.01")),
            "day_change": (held.qty * (price - PREV_CLOSE[held.symbol])).quantize(Decimal("0.01")),
        }
    return {
        "total_value": total.quantize(Decimal("0.01")),
        "today_return": (total - LAST_EQUITY[account_id]).quantize(Decimal("0.01")),
        "holdings": holdings,
    }


def assert_matches(payload: dict, expected: dict) -> None:
    assert Decimal(payload["total_value"]) == expected["total_value"]
    assert Decimal(payload["today_return"]) == expected["today_return"]
    assert len(payload["holdings"]) == len(expected["holdings"])
    for holding in payload["holdings"]:
        want = expected["holdings"][holding["symbol"]]
        assert Decimal(holding["price"]) == want["price"]
        assert Decimal(holding["market_value"]) == want["market_value"]
        assert Decimal(holding["day_change"]) == want["day_change"]
        assert holding["price_source"] == "trade"
        assert holding["price_at"] is not None
    assert payload["oldest_price_at"] is not None


async def member(account_id: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(fanout.group_name(account_id), channel)
    return channel


#: Each test channel's state as a client rebuilds it from the updates, whole and partial.
_states: dict[str, dict] = {}


async def receive(channel: str, timeout: float = 10.0) -> dict:
    """The next group message; an update also carries ``payload``: the whole state after it,
    applied as a client applies it (realtime.protocol.apply)."""
    message = await asyncio.wait_for(get_channel_layer().receive(channel), timeout)
    if message["type"] == fanout.UPDATE:
        data = json.loads(message["data"])
        _states[channel] = protocol.apply(_states.get(channel, {}), data)
        return {**message, "data": data, "payload": _states[channel]}
    return message


@pytest.fixture
def running() -> Iterator[None]:
    """The book built and A and B watched (C has no socket)."""
    build_book()
    presence.join(A, "socket-a")
    presence.join(B, "socket-b")
    yield


@pytest.fixture
async def start_calculator(running: None) -> AsyncIterator[Callable[[], Calculator]]:
    """Starts a running calculator (after the test has joined its groups: the first thing it
    does is a full pass); stops it afterwards."""
    stop = asyncio.Event()
    tasks = []

    def start() -> Calculator:
        calc = Calculator()
        tasks.append(asyncio.create_task(calc.run(stop)))
        return calc

    yield start
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_a_price_change_pushes_exactly_its_watched_holders_a_true_value(start_calculator):
    channels = {account_id: await member(account_id) for account_id in (A, B, C)}
    start_calculator()
    # The full pass on start: every watched account once, nobody else.
    first_a = await receive(channels[A])
    first_b = await receive(channels[B])
    assert_matches(first_a["payload"], recompute(A, {"AAA": "101", "BBB": "49.5"}))
    assert_matches(first_b["payload"], recompute(B, {"CCC": "320"}))

    trade({"AAA": "102.37"})  # held by A (watched) and C (not watched)
    update = await receive(channels[A])
    assert update["type"] == "portfolio.update"
    assert update["seq"] == first_a["seq"] + 1
    assert_matches(update["payload"], recompute(A, {"AAA": "102.37", "BBB": "49.5"}))
    assert update["payload"]["account_id"] == A
    # The first push was A's whole state; this one carries only what AAA moved.
    assert "partial" not in first_a["data"] and update["data"]["partial"] is True
    before = {h["symbol"]: h for h in first_a["payload"]["holdings"]}
    for holding in update["data"]["holdings"]:  # AAA moved; BBB only if its weight did
        assert holding != before[holding["symbol"]]
        if holding["symbol"] == "BBB":
            assert {k for k in holding if holding[k] != before["BBB"][k]} == {"weight_percent"}
    assert "AAA" in {h["symbol"] for h in update["data"]["holdings"]}
    assert {"total_value", "today_return", "as_of"} <= set(update["data"])
    assert "cash" not in update["data"] and "last_equity" not in update["data"]
    # A new socket's snapshot is the state after that update, whole.
    seq, state = await fanout.latest_state(A)
    assert seq == update["seq"] and json.loads(state) == update["payload"]

    # C holds AAA but nobody watches it: never numbered, so never published.
    assert await fanout.updates_since(C, 0) is None
    # B does not hold AAA: its next update is the one CCC causes, numbered right after the first.
    trade({"CCC": "321"})
    assert (await receive(channels[B]))["seq"] == first_b["seq"] + 1


async def test_every_few_pushes_one_is_whole_so_a_snapshot_can_be_composed(running, settings):
    settings.UPDATE_HISTORY_LENGTH = 4  # a whole update at least every 2 partial ones
    channel = await member(A)
    calculator = Calculator()
    await calculator.start()
    whole = []
    for price in ("101", "102", "103", "104", "105"):
        trade({"AAA": price})
        await calculator._read_quotes({"AAA"})
        await calculator._push([A])
        message = await receive(channel)
        whole.append("partial" not in message["data"])
        seq, state = await fanout.latest_state(A)  # what a new socket's snapshot would be
        assert seq == message["seq"] and json.loads(state) == message["payload"]
    assert whole == [True, False, False, True, False]


async def test_cash_changes_named_on_the_stream_are_pushed(start_calculator):
    channel = await member(A)
    start_calculator()
    await receive(channel)  # full pass
    revision = book.load([A])[A].revision
    cash = Decimal("2000.50")
    assert book.store_balances(A, cash, LAST_EQUITY[A], datetime.now(UTC), revision, 0)
    update = await receive(channel)  # store_balances named A on clera:changes
    assert Decimal(update["payload"]["cash"]) == cash
    expected = recompute(A, {"AAA": "101", "BBB": "49.5"})["total_value"] + 1000
    assert Decimal(update["payload"]["total_value"]) == expected


async def test_a_burst_is_coalesced_and_the_last_price_always_arrives(start_calculator, settings):
    interval = settings.MIN_UPDATE_INTERVAL
    channel = await member(A)
    calculator = start_calculator()
    await receive(channel)  # full pass
    last = None
    began = time.monotonic()
    for step in range(50):  # 50 changes over 200 ms
        last = f"{103 + step / 100:.2f}"
        trade({"AAA": last})
        await asyncio.sleep(0.004)
    burst = time.monotonic() - began
    pushes = []
    while True:
        update = await receive(channel, timeout=interval + 10)
        pushes.append(update)
        prices = {h["symbol"]: h["price"] for h in update["payload"]["holdings"]}
        if prices["AAA"] == last:
            break
    assert len(pushes) <= math.ceil(max(burst, 0.2) / interval) + 1
    assert_matches(pushes[-1]["payload"], recompute(A, {"AAA": last, "BBB": "49.5"}))
    assert [p["seq"] for p in pushes] == sorted(p["seq"] for p in pushes)
    assert not calculator._pending  # nothing more is owed


async def test_no_live_socket_means_no_push(running, settings):
    presence.leave(A, "socket-a")
    presence.leave(B, "socket-b")
    calc = Calculator()
    await calc.start()
    trade({"AAA": "150", "CCC": "300"})
    report = await calc.step(block_ms=2000)
    assert report.ticks == 2
    assert (report.affected, report.pushed) == (0, 0)
    assert await fanout.updates_since(A, 0) is None
    reported = stats.market_data()["calculator"]  # the operations page sees it working
    assert reported["running"] is True
    assert reported["partitions"][0]["ticks"] == "2"


async def test_a_socket_that_joins_is_followed_within_a_refresh(running):
    calc = Calculator()
    await calc.start()
    channel = await member(C)
    presence.join(C, "socket-c")
    calc._watch_at = -math.inf  # its next pass re-reads who is watched
    trade({"AAA": "99"})
    report = await calc.step(block_ms=2000)
    assert report.pushed >= 1
    assert_matches((await receive(channel))["payload"], recompute(C, {"AAA": "99"}))


async def test_an_account_watched_again_is_followed_again(running):
    """A socket that leaves and comes back: its account's price changes reach it again, even
    when the account was valued (and so cached) while nobody watched it."""
    calc = Calculator()
    await calc.start()
    channel = await member(A)
    presence.leave(A, "socket-a")
    calc._watch_at = -math.inf
    await calc._valuations([A])  # valued while unwatched, as a push queued before it left
    await calc.step(block_ms=100)
    presence.join(A, "socket-a2")
    calc._watch_at = -math.inf
    trade({"AAA": "98.76"})
    for _ in range(5):
        report = await calc.step(block_ms=2000)
        if report.pushed:
            break
    assert report.pushed >= 1
    update = await receive(channel)
    while {h["symbol"]: h["price"] for h in update["payload"]["holdings"]}["AAA"] != "98.76":
        update = await receive(channel)
    assert_matches(update["payload"], recompute(A, {"AAA": "98.76", "BBB": "49.5"}))


async def test_trade_events_are_batched_per_account_and_sent_only_to_watched_ones(
    running, redis_client, settings
):
    settings.TRADE_BATCH_WINDOW = 0.3
    channel_a, channel_c = await member(A), await member(C)
    relay = TradeEvents()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    order = {
        "id": str(uuid.uuid4()),
        "client_order_id": "c1",
        "symbol": "AAA",
        "side": "buy",
        "type": "market",
        "status": "filled",
        "time_in_force": "day",
        "qty": "2",
        "filled_qty": "2",
        "filled_avg_price": "101.5",
        "created_at": "2026-11-20T15:00:00Z",
        "submitted_at": "2026-11-20T15:00:00Z",
        "filled_at": "2026-11-20T15:00:01Z",
    }
    events = [
        {"account_id": A, "event": "new", "event_id": "e1", "order": {**order, "status": "new"}},
        {"account_id": A, "event": "fill", "event_id": "e2", "order": order, "qty": "2",
         "price": "101.5", "position_qty": "12", "at": "2026-11-20T10:00:01.123456789-05:00"},
        {"account_id": C, "event": "fill", "event_id": "e3", "order": order, "qty": "2",
         "price": "101.5", "position_qty": "3"},
        {"account_id": A, "event": "new", "event_id": "bad", "order": {"id": "no fields"}},
    ]  # fmt: skip
    await subscribed(redis_client, TRADE_UPDATES_CHANNEL)  # pub/sub keeps nothing for late joiners
    for event in events:
        redis_client.publish(TRADE_UPDATES_CHANNEL, json.dumps(event))
    orders = await receive(channel_a)
    positions = await receive(channel_a)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert orders["type"] == "portfolio.orders"
    assert [e["event_id"] for e in orders["events"]] == ["e1", "e2"]  # one batch, bad one dropped
    assert orders["events"][1]["order"]["filled_avg_price"] == "101.50"
    assert orders["events"][1]["at"] == "2026-11-20T15:00:01.123456Z"  # Alpaca's moment, as UTC
    assert positions == {
        "type": "portfolio.positions",
        "events": [{"event": "fill", "event_id": "e2", "at": "2026-11-20T15:00:01.123456Z",
                    "symbol": "AAA", "side": "buy", "qty": "2", "price": "101.50",
                    "position_qty": "12"}],
    }  # fmt: skip
    with pytest.raises(TimeoutError):  # C has no socket: nothing was sent to its group
        await receive(channel_c, timeout=0.3)


async def test_the_calculator_recovers_when_redis_is_killed_and_restarted():
    server = EmbeddedRedis(port=0).start()
    layers = {"default": {**get_settings_layer(), "CONFIG": {"hosts": [server.url]}}}
    try:
        with override_settings(REDIS_URL=server.url, CHANNEL_LAYERS=layers):
            await forget_loop_client()
            build_book()
            presence.join(A, "socket-a")
            channel = await member(A)
            calc = Calculator()
            stop = asyncio.Event()
            task = asyncio.create_task(calc.run(stop))
            await receive(channel)  # full pass

            server.stop()  # every key is gone with it
            # Same port (start() would refuse it while the old sockets linger in TIME_WAIT).
            server._process = subprocess.Popen(server.command(), start_new_session=True)
            server._wait_until_ready()
            build_book()  # as the next collection would
            presence.join(A, "socket-a")  # as the socket's next heartbeat would

            deadline = time.monotonic() + 30
            while True:  # pushes again, from a full pass or from this trade
                assert time.monotonic() < deadline, "no push after Redis came back"
                trade({"AAA": "111"})
                try:
                    update = await receive(channel, timeout=1)
                except TimeoutError:
                    continue
                prices = {h["symbol"]: h["price"] for h in update["payload"]["holdings"]}
                if prices["AAA"] == "111.00":
                    break
            assert_matches(update["payload"], recompute(A, {"AAA": "111", "BBB": "49.5"}))
            stop.set()
            await asyncio.wait_for(task, 10)
            await forget_loop_client()
    finally:
        server.stop()


async def subscribed(client: redis.Redis, channel: str) -> None:
    """Bounded polling: Redis announces no subscription to third parties."""
    deadline = time.monotonic() + 10
    while not dict(client.pubsub_numsub(channel)).get(channel.encode()):
        assert time.monotonic() < deadline, f"nobody subscribed to {channel}"
        await asyncio.sleep(0.02)


def get_settings_layer() -> dict:
    from django.conf import settings

    return settings.CHANNEL_LAYERS["default"]


async def test_a_lost_change_notice_is_made_good_by_the_revision_sweep(
    running, settings, redis_client
):
    settings.RECALCULATION_INTERVAL = 0  # sweep on every refresh of who is watched
    settings.MIN_UPDATE_INTERVAL = 0
    channel = await member(A)
    calc = Calculator()
    await calc.start()
    await calc.step(block_ms=100)  # the full pass
    await receive(channel)
    revision = book.load([A])[A].revision
    assert book.store_balances(A, Decimal("7.00"), LAST_EQUITY[A], datetime.now(UTC), revision, 0)
    redis_client.xtrim("clera:changes", maxlen=0)  # the notice is lost
    calc._watch_at = -math.inf
    trade({"BBB": "49.5"})
    await calc.step(block_ms=2000)
    assert Decimal((await receive(channel))["payload"]["cash"]) == Decimal("7.00")


@pytest.mark.django_db(transaction=True)
async def test_a_missing_book_is_rebuilt_at_once_and_its_watched_accounts_pushed(
    sandbox_accounts,
):
    """Redis came back empty (this test's Redis is flushed): the calculator does not wait for
    the next beat's collection; it collects now, and a watched account gets its value."""
    watched = next(a["id"] for a in sandbox_accounts if a["shape"] == "diversified")
    assert not book.last_collection()
    channel = await member(watched)
    presence.join(watched, "socket-d")
    stop = asyncio.Event()
    calculator = asyncio.create_task(Calculator().run(stop))
    try:
        pushed = await receive(channel, timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(calculator, 10)
    assert book.last_collection()["accounts"]  # a whole collection ran, balances included
    assert pushed["payload"]["account_id"] == watched
    entry = book.load([watched])[watched]
    assert Decimal(pushed["payload"]["cash"]) == entry.cash.quantize(Decimal("0.01"))
