"""Historical and latest market data, through the real alpaca-py clients (and raw HTTP where
the SDK hides the pagination) against the session sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    CryptoBarsRequest,
    CryptoLatestQuoteRequest,
    CryptoSnapshotRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from marketdata.sandbox.calendar import AlwaysOpen, Session
from tests.sandbox.test_stream import ACTIVE, STOCKS, credentials

PAGE = 10_000  # what the SDK asks per page


@pytest.fixture
def stocks(sandbox_url: str) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(*credentials(), url_override=sandbox_url)


@pytest.fixture
def get(sandbox_url: str):
    """GET a data path with the data API's key headers; returns the response."""
    key, secret = credentials()
    session = requests.Session()
    session.headers.update({"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})

    def fetch(path: str, **params: str | int) -> requests.Response:
        return session.get(f"{sandbox_url}{path}", params=params, timeout=30)

    yield fetch
    session.close()


def today() -> Session:
    """The current session of the test sandbox's calendar (it runs the default, always open)."""
    return AlwaysOpen().current_or_previous(datetime.now(UTC))


def test_a_year_of_daily_bars_paginates_and_ends_at_the_previous_close(stocks):
    symbols = STOCKS[:30]
    opened = today().open
    start = opened - timedelta(days=365)

    bars = stocks.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TimeFrame.Day,
            start=start,
            end=opened - timedelta(seconds=1),
        )
    ).data
    snapshots = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=symbols))

    assert sorted(bars) == sorted(symbols)
    assert sum(len(series) for series in bars.values()) > PAGE  # only pages can carry that
    for symbol, series in bars.items():
        days = [bar.timestamp.astimezone(opened.tzinfo).date() for bar in series]
        assert days == [start.date() + timedelta(days=n) for n in range(365)], symbol
        assert all(bar.low <= min(bar.open, bar.close) <= bar.high for bar in series)
        assert series[-1].close == snapshots[symbol].previous_daily_bar.close
        assert series[-1].close == snapshots[symbol].daily_bar.open


def test_a_day_of_minute_bars_for_several_symbols_arrives_whole(stocks):
    calendar = AlwaysOpen()
    session = calendar.previous(today())
    while session.close - session.open != timedelta(days=1):  # skip a daylight-saving day
        session = calendar.previous(session)
    symbols = STOCKS[:8]

    bars = stocks.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TimeFrame.Minute,
            start=session.open,
            end=session.close - timedelta(minutes=1),
        )
    ).data

    assert len(symbols) * 1440 > PAGE
    for symbol in symbols:
        times = [bar.timestamp for bar in bars[symbol]]
        assert times == [session.open + timedelta(minutes=n) for n in range(1440)], symbol
        assert all(bar.volume > 0 and bar.vwap > 0 for bar in bars[symbol])


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_pages_walked_by_token_add_up_to_one_big_page(get, sort):
    symbols = ",".join(STOCKS[:3])
    opened = today().open
    query = {
        "symbols": symbols,
        "timeframe": "1Hour",
        "start": (opened - timedelta(days=2)).isoformat(),
        "end": (opened - timedelta(seconds=1)).isoformat(),
        "sort": sort,
    }
    whole = get("/v2/stocks/bars", **query, limit=PAGE).json()
    assert whole["next_page_token"] is None

    walked: dict[str, list] = {}
    token = None
    for _ in range(50):
        page = get("/v2/stocks/bars", **query, limit=7, **({"page_token": token} if token else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert sum(len(series) for series in body["bars"].values()) <= 7
        for symbol, series in body["bars"].items():
            walked.setdefault(symbol, []).extend(series)
        token = body["next_page_token"]
        if token is None:
            break

    assert walked == whole["bars"]
    for series in walked.values():
        stamps = [bar["t"] for bar in series]
        assert stamps == sorted(stamps, reverse=sort == "desc")
        assert len(stamps) >= 2 * 23  # two sessions of hourly bars


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"timeframe": "7Fortnight"}, "timeframe"),
        ({"timeframe": "60Min"}, "timeframe"),
        ({"start": "last tuesday"}, "start"),
        ({"start": "2025-01-02", "end": "2025-01-01"}, "end"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"sort": "sideways"}, "sort"),
        ({"feed": "nasdaq"}, "feed"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"symbols": ""}, "symbols"),
    ],
)
def test_bad_parameters_are_refused_by_name(get, params, named):
    query = {"symbols": ACTIVE[0], "timeframe": "1Day", "start": "2025-01-01", **params}

    response = get("/v2/stocks/bars", **query)

    assert response.status_code == 400
    assert response.json()["code"] == 40010001
    assert named in response.json()["message"]


def test_an_unbounded_range_answers_the_history_there_is(get):
    query = {"symbols": ACTIVE[0], "start": "0001-01-01", "end": "9999-12-31T23:59:59Z"}

    daily = get("/v2/stocks/bars", **query, timeframe="1Day", limit=PAGE)
    minutes = get("/v2/stocks/bars", **query, timeframe="1Min", limit=5)

    assert daily.status_code == minutes.status_code == 200
    years = len(daily.json()["bars"][ACTIVE[0]]) / 365
    assert 5 < years < 7
    first_minutes = minutes.json()["bars"][ACTIVE[0]]
    assert len(first_minutes) == 5
    assert first_minutes[0]["t"][:10] == daily.json()["bars"][ACTIVE[0]][0]["t"][:10]


def test_the_sdk_raises_the_refusal(stocks):
    opened = today().open
    with pytest.raises(APIError) as refused:
        stocks.get_stock_bars(
            StockBarsRequest(
                symbol_or_symbols=ACTIVE[0],
                timeframe=TimeFrame(5, TimeFrameUnit.Minute),
                start=opened,
                end=opened - timedelta(days=1),
            )
        )
    assert refused.value.status_code == 400
    assert "end" in refused.value.message


def test_unknown_and_foreign_symbols_are_left_out(stocks):
    asked = [ACTIVE[0], "NOPE", "BTC/USD"]
    opened = today().open

    bars = stocks.get_stock_bars(
        StockBarsRequest(symbol_or_symbols=asked, timeframe=TimeFrame.Hour, start=opened)
    ).data
    quotes = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=asked))

    assert list(bars) == [ACTIVE[0]]
    assert list(quotes) == [ACTIVE[0]]


def test_latest_quotes_and_trades_follow_the_live_book(stocks):
    asked = datetime.now(UTC)
    quotes = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=ACTIVE))
    trades = stocks.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=ACTIVE))
    snapshots = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=ACTIVE))

    for symbol in ACTIVE:
        quote, trade, snapshot = quotes[symbol], trades[symbol], snapshots[symbol]
        # The most active symbols quote and print several times a second.
        assert asked - timedelta(seconds=30) < quote.timestamp <= datetime.now(UTC)
        assert asked - timedelta(seconds=30) < trade.timestamp <= datetime.now(UTC)
        assert 0 < quote.bid_price < quote.ask_price
        assert trade.price > 0
        assert snapshot.latest_quote.timestamp >= quote.timestamp
        bar = snapshot.minute_bar
        assert bar.low <= min(bar.open, bar.close) <= bar.high
        assert snapshot.daily_bar.timestamp == today().open
        assert snapshot.daily_bar.low <= snapshot.latest_trade.price <= snapshot.daily_bar.high


def test_crypto_bars_and_quotes(sandbox_url):
    crypto = CryptoHistoricalDataClient(*credentials(), url_override=sandbox_url)
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)

    bars = crypto.get_crypto_bars(
        CryptoBarsRequest(symbol_or_symbols="BTC/USD", timeframe=TimeFrame.Hour, start=start)
    )["BTC/USD"]
    quote = crypto.get_crypto_latest_quote(CryptoLatestQuoteRequest(symbol_or_symbols="BTC/USD"))
    snapshot = crypto.get_crypto_snapshot(CryptoSnapshotRequest(symbol_or_symbols="BTC/USD"))

    times = [bar.timestamp for bar in bars]
    assert times == sorted(set(times))
    assert start <= times[0] and times[-1] <= now and len(times) >= 48
    assert all(1000 < bar.low <= bar.high for bar in bars)
    assert 0 < quote["BTC/USD"].bid_price < quote["BTC/USD"].ask_price
    assert snapshot["BTC/USD"].previous_daily_bar.close == snapshot["BTC/USD"].daily_bar.open
