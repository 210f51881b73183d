"""/ws/stream: seed 003's subscribe / unsubscribe / heartbeat, price_update from the price cache
through the process's relay, the symbol limit and unknown symbols."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata import book, moments
from marketdata.price_cache import PriceCache, quote_fields, trade_fields
from tests.realtime.conftest import position

pytestmark = pytest.mark.django_db(transaction=True)


def quote_and_trade(symbol: str, bid: str, ask: str, trade: str, size: int = 100) -> None:
    """Write one quote and one trade the way the quote consumer does (it also XADDs the
    symbol to clera:changes)."""
    now = datetime.now(UTC)
    PriceCache().write_batch(
        {symbol: quote_fields(Decimal(bid), 300, Decimal(ask), 500, now)},
        {symbol: trade_fields(Decimal(trade), size, now)},
        {symbol: (moments.new_york_day(now), Decimal(size))},
    )


async def test_subscribe_sends_current_prices_then_every_change(connect, owner):
    PriceCache().set_prev_close({"AAPL": Decimal("200")})
    quote_and_trade("AAPL", "201.10", "201.20", "201.15")
    socket = await connect("/ws/stream", cookie=owner.cookie)

    await socket.send({"type": "subscribe", "symbols": ["aapl", "MSFT"]})
    subscribed = await socket.next_of("system")
    assert subscribed["message"] == "Subscribed to 2 symbols"
    assert subscribed["symbols"] == ["AAPL", "MSFT"]
    assert subscribed["not_streaming"] == ["AAPL", "MSFT"]  # nobody in the book holds them
    first = await socket.next_of("price_update")
    assert {k: v for k, v in first.items() if k != "timestamp"} == {
        "type": "price_update",
        "symbol": "AAPL",
        "price": "201.15",
        "price_source": "trade",
        "bid": "201.10",
        "ask": "201.20",
        "bid_size": "300",
        "ask_size": "500",
        "volume": "100",
        "prev_close": "200.00",
        "change": "1.15",
        "change_percent": "0.58",
    }
    assert first["timestamp"].endswith("Z")

    quote_and_trade("AAPL", "198.90", "199.10", "199", size=50)
    moved = await socket.next_of("price_update")
    assert (moved["price"], moved["change"], moved["change_percent"], moved["volume"]) == (
        "199.00",
        "-1.00",
        "-0.50",
        "150",
    )


async def test_unsubscribed_symbols_stop(connect, owner):
    socket = await connect("/ws/stream", cookie=owner.cookie)
    await socket.send({"type": "subscribe", "symbols": ["AAPL", "MSFT"]})
    await socket.next_of("system")

    await socket.send({"type": "unsubscribe", "symbols": ["AAPL", "TSLA"]})
    gone = await socket.next_of("system")
    assert gone["symbols"] == ["AAPL"]

    quote_and_trade("AAPL", "1", "2", "1.5")
    quote_and_trade("MSFT", "3", "4", "3.5")
    assert (await socket.next_of("price_update"))["symbol"] == "MSFT"
    await socket.send({"type": "heartbeat"})
    assert (await socket.next_of("heartbeat"))["message"] == "pong"  # and no AAPL before it


async def test_unknown_symbols_are_refused_by_name_and_the_rest_subscribed(connect, owner):
    book.store_collection({owner.account_id: [position("ZZZT", "3")]}, datetime.now(UTC))
    socket = await connect("/ws/stream", cookie=owner.cookie)

    await socket.send({"type": "subscribe", "symbols": ["NOPE123", "ZZZT", "$$$", "btcusd"]})
    refused = await socket.next_of("error")
    assert refused["code"] == "unknown_symbols"
    assert refused["symbols"] == ["NOPE123", "$$$"]
    subscribed = await socket.next_of("system")
    assert subscribed["symbols"] == ["ZZZT", "BTC/USD"]  # tracked; in the universe
    assert subscribed["not_streaming"] == ["BTC/USD"]


async def test_the_symbol_limit_refuses_the_whole_request(connect, owner, settings):
    settings.WS_MAX_SYMBOLS = 3
    socket = await connect("/ws/stream", cookie=owner.cookie)
    await socket.send({"type": "subscribe", "symbols": ["AAPL", "MSFT"]})
    await socket.next_of("system")

    await socket.send({"type": "subscribe", "symbols": ["AMZN", "NVDA", "AAPL"]})
    refused = await socket.next_of("error")
    assert refused["code"] == "symbol_limit"
    assert (refused["limit"], refused["subscribed"]) == (3, 2)

    await socket.send({"type": "subscribe", "symbols": ["AMZN", "MSFT"]})
    assert (await socket.next_of("system"))["symbols"] == ["AMZN", "MSFT"]


async def test_a_heartbeat_is_answered_with_pong_and_server_time(connect, owner):
    socket = await connect("/ws/stream", cookie=owner.cookie)
    await socket.send({"type": "heartbeat", "timestamp": "2026-01-27T12:34:56Z"})
    pong = await socket.next_of("heartbeat")
    assert pong["message"] == "pong"
    assert abs(pong["server_time"] - datetime.now(UTC).timestamp()) < 60
