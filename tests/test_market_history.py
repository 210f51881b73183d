"""Daily closes through the real alpaca-py data clients against the session's sandbox, cached in
the real Redis: the closes are the sandbox's bars, one request per asset class, none for what
Redis holds, Alpaca's failures as our errors, and an answer when Redis is down."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from clera.devstack.ports import free_port
from marketdata import errors
from marketdata.market_history import (
    CLOSES_PREFIX,
    CLOSES_TTL,
    DailyCloses,
    daily_closes,
    last_completed_day,
)
from marketdata.moments import NEW_YORK
from marketdata.sandbox.assets import build_assets
from tests.stack import SANDBOX_OPTIONS

STOCK_BARS = "/v2/stocks/bars"
CRYPTO_BARS = "/v1beta3/crypto/us/bars"
_ASSETS = build_assets(SANDBOX_OPTIONS["symbols"], SANDBOX_OPTIONS["seed"])
STOCKS = [asset.symbol for asset in _ASSETS if asset.category == "stock"][:2] + ["SPY"]
PAIRS = [asset.symbol for asset in _ASSETS if asset.is_crypto][:2]
DAY = timedelta(days=1)


def requests_received(sandbox_url: str) -> Counter[str]:
    """The Alpaca requests the sandbox has received, by route."""
    return Counter(requests.get(f"{sandbox_url}/_sandbox/stats", timeout=5).json()["requests"])


def served(sandbox_url: str, symbols: list[str], first: date, last: date) -> dict[str, dict]:
    """The sandbox's adjusted daily closes as its wire says them (exact decimals), by symbol and
    by the bar's day (New York's for stocks, UTC's for crypto), for days in [first, last]."""
    headers = {
        "APCA-API-KEY-ID": settings.SANDBOX_API_KEY,
        "APCA-API-SECRET-KEY": settings.SANDBOX_SECRET_KEY,
    }
    out: dict[str, dict] = {}
    for path, zone, group in ((STOCK_BARS, NEW_YORK, STOCKS), (CRYPTO_BARS, UTC, PAIRS)):
        asked = [symbol for symbol in symbols if symbol in group]
        query = {
            "symbols": ",".join(asked),
            "timeframe": "1Day",
            "start": (first - 3 * DAY).isoformat(),  # wider than asked: the days are ours to pick
            "adjustment": "all",
            "limit": 10_000,
        }
        token = None
        while asked:
            page = requests.get(
                f"{sandbox_url}{path}",
                params={**query, **({"page_token": token} if token else {})},
                headers=headers,
                timeout=30,
            )
            page.raise_for_status()
            body = json.loads(page.text, parse_float=Decimal)
            for symbol, bars in body["bars"].items():
                for bar in bars:
                    day = datetime.fromisoformat(bar["t"]).astimezone(zone).date()
                    if first <= day <= last:
                        out.setdefault(symbol, {})[day] = Decimal(bar["c"])
            token = body["next_page_token"]
            if token is None:
                break
    return out


def as_served(answer: dict[str, DailyCloses]) -> dict[str, dict]:
    for symbol, series in answer.items():
        assert series.symbol == symbol
        assert list(series.days) == sorted(series.days)
        assert all(isinstance(close, Decimal) for close in series.closes)
    return {symbol: dict(zip(s.days, s.closes, strict=True)) for symbol, s in answer.items()}


@pytest.fixture
def window() -> tuple[date, date]:
    """Four hundred days up to the last completed one."""
    last = last_completed_day()
    return last - 400 * DAY, last


def test_closes_are_the_sandbox_bars_in_one_request_per_asset_class(
    sandbox_url, redis_client, window
):
    first, last = window
    symbols = [*STOCKS, *PAIRS, "NOPE"]
    expected = served(sandbox_url, symbols, first, last)
    before = requests_received(sandbox_url)

    answer = daily_closes(symbols, first, last + 5 * DAY)  # days not over yet are left out

    sent = requests_received(sandbox_url) - before
    assert sent == Counter({STOCK_BARS: 1, CRYPTO_BARS: 1})
    assert sorted(answer) == sorted([*STOCKS, *PAIRS])  # an unknown symbol is simply absent
    assert as_served(answer) == expected
    for series in answer.values():  # the sandbox trades every day, crypto and stocks alike
        assert series.days[0] == first and series.days[-1] == last
        assert len(series.days) == (last - first).days + 1


def test_a_second_call_is_answered_from_redis(sandbox_url, redis_client, window, faults):
    first, last = window
    symbols = [*STOCKS, *PAIRS]
    answer = daily_closes(symbols, first, last)
    before = requests_received(sandbox_url)

    again = daily_closes(symbols, first, last)
    inside_first, inside_last = first + 100 * DAY, last - 100 * DAY
    inside = daily_closes(symbols, inside_first, inside_last)

    assert requests_received(sandbox_url) == before
    assert again == answer
    assert as_served(inside) == {
        symbol: {day: close for day, close in closes.items() if inside_first <= day <= inside_last}
        for symbol, closes in as_served(answer).items()
    }
    assert 0 < redis_client.ttl(CLOSES_PREFIX + "SPY") <= CLOSES_TTL
    faults(server_error=1)  # Alpaca failing does not matter to what Redis has
    assert daily_closes(symbols, first, last) == answer


def test_widening_asks_once_per_class_and_the_cache_stays_exact(sandbox_url, redis_client, window):
    first, last = window
    symbols = [*STOCKS, *PAIRS]
    daily_closes(symbols, first + 50 * DAY, last - 50 * DAY)
    daily_closes(STOCKS[:1], first, last)  # one symbol ahead of the others
    expected = served(sandbox_url, symbols, first, last)
    before = requests_received(sandbox_url)

    later = daily_closes(PAIRS, first + 50 * DAY, last)  # the newer days only
    wider = daily_closes(symbols, first, last)  # older days for all but the one ahead
    cached = daily_closes(symbols, first, last)

    sent = requests_received(sandbox_url) - before
    assert sent == Counter({STOCK_BARS: 1, CRYPTO_BARS: 2})
    assert as_served(wider) == as_served(cached) == expected
    assert as_served(later) == {
        symbol: {day: close for day, close in expected[symbol].items() if day >= first + 50 * DAY}
        for symbol in PAIRS
    }


def test_a_history_alpaca_readjusted_is_fetched_anew(sandbox_url, redis_client, window):
    first, last = window
    daily_closes(["SPY"], first, last - 5 * DAY)
    # A split went ex: Alpaca's adjusted closes before it are no longer the ones cached.
    key = CLOSES_PREFIX + "SPY"
    redis_client.hset(key, (last - 5 * DAY).isoformat(), "1.00")
    redis_client.hset(key, (first + 10 * DAY).isoformat(), "2.00")
    before = requests_received(sandbox_url)

    answer = daily_closes(["SPY"], first, last)

    assert requests_received(sandbox_url) - before == Counter({STOCK_BARS: 2})
    expected = served(sandbox_url, ["SPY"], first, last)
    assert as_served(answer) == expected
    assert as_served(daily_closes(["SPY"], first, last)) == expected  # and so is the cache now


def test_three_years_of_spy_in_every_universe(redis_client):
    for size in (1, 40, 150, 600):
        assert "SPY" in {asset.symbol for asset in build_assets(size, seed=size)}
    last = last_completed_day()
    first = last.replace(year=last.year - 3)

    spy = daily_closes(["SPY"], first, last)["SPY"]

    assert spy.days[0] == first and spy.days[-1] == last
    assert len(spy.days) == (last - first).days + 1


def test_nothing_to_ask_sends_nothing(sandbox_url, redis_client):
    last = last_completed_day()
    before = requests_received(sandbox_url)

    assert daily_closes([], last - 30 * DAY, last) == {}
    assert daily_closes(["SPY"], last, last - DAY) == {}
    assert daily_closes(["SPY"], last + DAY, last + 9 * DAY) == {}  # not over yet

    assert requests_received(sandbox_url) == before


def test_a_rate_limit_is_our_error_at_once(redis_client, faults, caplog, window):
    faults(rate_limited=1, retry_after=7)

    started = time.monotonic()
    with pytest.raises(errors.BrokerRateLimited) as caught:
        daily_closes(["SPY", *PAIRS], *window)

    assert time.monotonic() - started < 2  # the SDK's own retries would sleep about 9 s
    assert caught.value.retry_after == 7.0 and caught.value.status == 429
    assert caught.value.__context__ is None  # the SDK's exception carries our credentials
    (record,) = [r for r in caplog.records if r.name == "marketdata.market_history"]
    assert record.levelno == logging.WARNING and "429" in record.getMessage()
    assert settings.SANDBOX_SECRET_KEY not in caplog.text


def test_a_server_error_is_unavailable(redis_client, faults, window):
    faults(server_error=1)

    with pytest.raises(errors.BrokerUnavailable) as caught:
        daily_closes(PAIRS, *window)

    assert caught.value.status == 500


def test_a_slow_answer_times_out(redis_client, faults, window):
    faults(slow=1, slow_seconds=3)

    started = time.monotonic()
    with override_settings(ALPACA_TIMEOUT=0.5), pytest.raises(errors.BrokerTimeout):
        daily_closes(["SPY"], *window)

    assert time.monotonic() - started < 1.5


def test_redis_down_still_answers(sandbox_url, redis_client, caplog, window):
    first, last = window
    expected = served(sandbox_url, ["SPY", *PAIRS], first, last)

    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        answer = daily_closes(["SPY", *PAIRS], first, last)

    assert as_served(answer) == expected
    assert any("Redis failed" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert redis_client.keys(CLOSES_PREFIX + "*") == []  # nothing was written anywhere else
