"""The price cache: its valuation rule, its key schema on real Redis, and its async twin."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from marketdata.price_cache import (
    CHANGES_STREAM,
    AsyncPriceCache,
    CachedPrice,
    PriceCache,
    canonical_symbol,
    number_text,
    price_key,
    quote_fields,
    trade_fields,
)
from marketdata.store import async_redis_client
from portfolio.pricing import valuation_price

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
LAST_KNOWN = Decimal("99.50")


def seconds_ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def cached(trade_age: float | None = None, quote_age: float | None = None, **fields) -> CachedPrice:
    return CachedPrice(
        symbol="AAPL",
        trade_price=Decimal("101.25") if trade_age is not None else None,
        trade_at=seconds_ago(trade_age) if trade_age is not None else None,
        bid=fields.get("bid", Decimal("100.10")) if quote_age is not None else None,
        ask=fields.get("ask", Decimal("100.20")) if quote_age is not None else None,
        quote_at=seconds_ago(quote_age) if quote_age is not None else None,
    )


@override_settings(TRADE_FRESHNESS_SECONDS=60)
@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (cached(trade_age=5, quote_age=1), (Decimal("101.25"), "trade", seconds_ago(5))),
        (cached(trade_age=60, quote_age=1), (Decimal("101.25"), "trade", seconds_ago(60))),
        (cached(trade_age=61, quote_age=2), (Decimal("100.15"), "quote", seconds_ago(2))),
        (cached(quote_age=30), (Decimal("100.15"), "quote", seconds_ago(30))),
        (cached(trade_age=300, quote_age=120), (LAST_KNOWN, "position", None)),
        (cached(quote_age=1, bid=Decimal(0)), (LAST_KNOWN, "position", None)),
        (CachedPrice(symbol="AAPL", prev_close=Decimal("98")), (LAST_KNOWN, "position", None)),
        (None, (LAST_KNOWN, "position", None)),
    ],
    ids=[
        "fresh-trade",
        "trade-at-the-limit",
        "stale-trade-fresh-quote",
        "quote-only",
        "all-stale",
        "one-sided-quote",
        "close-only",
        "nothing-cached",
    ],
)
def test_valuation_price_prefers_trade_then_mid_then_position(entry, expected) -> None:
    assert valuation_price(entry, LAST_KNOWN, NOW) == expected


def test_canonical_symbols_give_crypto_pairs_their_slash() -> None:
    assert canonical_symbol("BTCUSD", "crypto") == "BTC/USD"
    assert canonical_symbol("ETHUSDT", "crypto") == "ETH/USDT"
    assert canonical_symbol("BTC/USD", "crypto") == "BTC/USD"
    assert canonical_symbol("BRK.B", "us_equity") == "BRK.B"
    assert number_text(1.234e-05) == "0.00001234" and number_text(187.2) == "187.2"


def test_a_batch_round_trips_exactly_with_ttl_and_one_change_entry(redis_client) -> None:
    cache = PriceCache()
    at = datetime(2026, 11, 20, 15, 0, 1, 123456, tzinfo=UTC)
    with override_settings(PRICE_TTL=1234):
        written = cache.write_batch(
            {"AAPL": quote_fields(187.2, 300.0, 187.21, 100.0, at)},
            {"AAPL": trade_fields(187.205, 50.0, at), "SHIB/USD": trade_fields(1.234e-05, 1e6, at)},
            {"AAPL": ("2026-11-20", Decimal("50")), "SHIB/USD": ("2026-11-20", Decimal("1E6"))},
        )
        cache.set_prev_close({"AAPL": Decimal("186.00")})

    assert written == 2
    prices = cache.get(["AAPL", "SHIB/USD", "NOPE"])
    assert set(prices) == {"AAPL", "SHIB/USD"}
    apple = prices["AAPL"]
    assert (apple.bid, apple.ask, apple.bid_size) == (Decimal("187.2"), Decimal("187.21"), 300)
    assert (apple.trade_price, apple.trade_at, apple.prev_close) == (
        Decimal("187.205"),
        at,
        Decimal("186.00"),
    )
    assert apple.volume == 50 and apple.volume_day == "2026-11-20"
    assert prices["SHIB/USD"].trade_price == Decimal("0.00001234")
    assert 1200 < redis_client.ttl(price_key("AAPL")) <= 1234
    entries = redis_client.xrange(CHANGES_STREAM)
    assert len(entries) == 1
    assert entries[0][1] == {b"symbols": b"AAPL,SHIB/USD"}


def test_day_volume_adds_up_and_restarts_on_a_new_day(redis_client) -> None:
    cache = PriceCache()
    at = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    trade = {"MSFT": trade_fields(500.0, 10.0, at)}
    cache.write_batch({}, trade, {"MSFT": ("2026-11-20", Decimal("10.5"))})
    cache.write_batch({}, trade, {"MSFT": ("2026-11-20", Decimal("0.25"))})
    assert cache.get(["MSFT"])["MSFT"].volume == Decimal("10.75")

    cache.write_batch({}, trade, {"MSFT": ("2026-11-21", Decimal("3"))})
    assert cache.get(["MSFT"])["MSFT"].volume == 3


async def test_async_reads_match_sync_reads(redis_client) -> None:
    at = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    PriceCache().write_batch({"ETH/USD": quote_fields(3000.5, 1.5, 3001.0, 2.0, at)}, {}, {})
    client = async_redis_client()
    try:
        from_async = await AsyncPriceCache(client).get(["ETH/USD", "NOPE"])
    finally:
        await client.aclose()
    assert from_async == PriceCache().get(["ETH/USD", "NOPE"])
    assert from_async["ETH/USD"].mid == Decimal("3000.75")
