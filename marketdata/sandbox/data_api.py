"""Historical and latest market data, as Alpaca's Market Data API serves it to alpaca-py.

Stocks live under ``/v2/stocks`` (``StockHistoricalDataClient``), crypto under
``/v1beta3/crypto/us`` (``CryptoHistoricalDataClient``). Bars come from :mod:`.bars`
(history is a deterministic function of the seed, the current session follows the prints);
latest quotes, trades and snapshots read the live book. Bars paginate for real, across
symbols, with an opaque ``next_page_token``: the SDK loops until the token is null, so a
fake that ignored it would loop forever.

The wire shapes (``quote_body`` and friends) are shared with the websocket feed in
:mod:`.stream`, which adds ``T``/``S`` and a msgpack timestamp.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from marketdata import moments

from .assets import Asset
from .bars import Bar, bars_in, live_minute_bar
from .calendar import NEW_YORK
from .market import HISTORY_YEARS, Market

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger(__name__)

#: Alpaca's cap on items per page, and its default when ``limit`` is not sent.
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
STOCK_FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "all"})
#: The sandbox prints everything on IEX ("V") and tape C; conditions are the regular ones.
EXCHANGE = "V"
TAPE = "C"
QUOTE_CONDITIONS = ("R",)
TRADE_CONDITIONS = ("@",)
#: Daily bars are fetched from this far before ``start`` so the first bar opens at the
#: previous close, as it does when the range starts earlier (long weekends fit in a week).
DAILY_LOOKBACK = timedelta(days=7)
HISTORY = timedelta(days=int(365.25 * HISTORY_YEARS))

_TIMEFRAME = re.compile(r"^([1-9][0-9]*)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNITS = {"T": "Min", "H": "Hour", "D": "Day", "W": "Week", "M": "Month"}
_FRACTION = re.compile(r"(\.\d{6})\d+")


class BadParameter(ValueError):
    """A query parameter Alpaca would reject; the message names it."""


@dataclass(frozen=True)
class TimeFrame:
    """A bar width: ``minutes`` wide intraday bars, or daily bars grouped by ``group``."""

    minutes: int | None  # None: built from daily bars
    group: str | None = None  # None (one bar a day) | "week" | "month"
    months: int = 1


@dataclass(frozen=True)
class AssetKind:
    """What differs between the stock and the crypto endpoints."""

    asset_class: str
    crypto: bool


STOCKS = AssetKind("us_equity", crypto=False)
CRYPTO = AssetKind("crypto", crypto=True)


# -- wire shapes ---------------------------------------------------------------------------
def quote_body(
    crypto: bool, bid: Decimal, ask: Decimal, bid_size: float, ask_size: float, stamp: Any
) -> dict:
    """A quote's fields; crypto quotes carry no exchange, conditions or tape."""
    if crypto:
        return {"t": stamp, "bp": float(bid), "bs": bid_size, "ap": float(ask), "as": ask_size}
    return {
        "t": stamp,
        "bx": EXCHANGE,
        "bp": float(bid),
        "bs": bid_size,
        "ax": EXCHANGE,
        "ap": float(ask),
        "as": ask_size,
        "c": QUOTE_CONDITIONS,
        "z": TAPE,
    }


def trade_body(
    crypto: bool, price: Decimal, size: float, trade_id: int | None, taker: str, stamp: Any
) -> dict:
    """A trade's fields; crypto trades name the taker side (``tks``) instead of an exchange."""
    if crypto:
        return {"t": stamp, "p": float(price), "s": size, "i": trade_id, "tks": taker}
    return {
        "t": stamp,
        "x": EXCHANGE,
        "p": float(price),
        "s": size,
        "c": TRADE_CONDITIONS,
        "i": trade_id,
        "z": TAPE,
    }


def bar_body(bar: Bar, stamp: Any) -> dict:
    return {
        "t": stamp,
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": bar.volume,
        "n": bar.trade_count,
        "vw": float(bar.vwap),
    }


def taker_side(price: Decimal, bid: Decimal, ask: Decimal) -> str:
    """Buyer-initiated ("B") when the print is at or above the mid, else seller ("S")."""
    return "B" if price * 2 >= bid + ask else "S"


# -- parameters ----------------------------------------------------------------------------
def parse_timeframe(text: str | None) -> TimeFrame:
    """``1Min``..``59Min``, ``1Hour``..``23Hour``, ``1Day``, ``1Week``, ``1/2/3/6/12Month``
    (and Alpaca's short units T, H, D, W, M), as the SDK's ``TimeFrame`` validates them."""
    match = _TIMEFRAME.match(text or "")
    if match is None:
        raise BadParameter(f"invalid timeframe: {text!r} (e.g. 1Min, 15Min, 1Hour, 1Day)")
    amount, unit = int(match[1]), _UNITS.get(match[2], match[2])
    valid = {
        "Min": amount <= 59,
        "Hour": amount <= 23,
        "Day": amount == 1,
        "Week": amount == 1,
        "Month": amount in (1, 2, 3, 6, 12),
    }[unit]
    if not valid:
        raise BadParameter(f"invalid timeframe: {text!r} (amount out of range for {unit})")
    if unit == "Min":
        return TimeFrame(minutes=amount)
    if unit == "Hour":
        return TimeFrame(minutes=60 * amount)
    if unit == "Day":
        return TimeFrame(minutes=None)
    if unit == "Week":
        return TimeFrame(minutes=None, group="week")
    return TimeFrame(minutes=None, group="month", months=amount)


def parse_moment(text: str, name: str) -> datetime:
    """RFC 3339 (nanoseconds allowed, naive means UTC) or a bare date (midnight UTC)."""
    # A '+' in an unencoded query string arrives as a space.
    cleaned = _FRACTION.sub(r"\1", text.strip().replace(" ", "+"))
    try:
        if len(cleaned) == 10:
            return datetime.combine(date.fromisoformat(cleaned), time(0), UTC)
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadParameter(f"invalid {name}: {text!r} (expected RFC 3339 or YYYY-MM-DD)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _symbols(request: web.Request, market: Market, kind: AssetKind) -> list[str]:
    """Requested symbols of this asset class, sorted and deduplicated; others are dropped
    silently, as Alpaca leaves unknown symbols out of the answer."""
    raw = request.query.get("symbols", "")
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names:
        raise BadParameter("missing symbols")
    return sorted(
        name
        for name in names
        if (asset := market.assets.get(name)) is not None and asset.asset_class == kind.asset_class
    )


def _common(request: web.Request, kind: AssetKind) -> None:
    """Validate what the sandbox accepts but does not vary on: feed, currency, adjustment."""
    query = request.query
    if not kind.crypto and "feed" in query and query["feed"] not in STOCK_FEEDS:
        raise BadParameter(f"invalid feed: {query['feed']!r}")
    if query.get("currency", "USD") != "USD":
        raise BadParameter(f"invalid currency: {query['currency']!r} (the sandbox quotes USD)")
    if query.get("adjustment", "raw") not in ADJUSTMENTS:
        raise BadParameter(f"invalid adjustment: {query['adjustment']!r}")


@dataclass(frozen=True)
class BarsQuery:
    """A validated ``/bars`` request, with the position the page token resumes from."""

    symbols: list[str]
    frame: TimeFrame
    start: datetime
    end: datetime
    limit: int
    descending: bool
    resume: tuple[str, datetime] | None

    @classmethod
    def parse(cls, request: web.Request, market: Market, kind: AssetKind) -> BarsQuery:
        _common(request, kind)
        query = request.query
        now = datetime.now(UTC)
        symbols = _symbols(request, market, kind)
        frame = parse_timeframe(query.get("timeframe"))
        if "start" in query:
            start = parse_moment(query["start"], "start")
        else:  # Alpaca's default: the beginning of the current day
            start = datetime.combine(now.astimezone(NEW_YORK).date(), time(0), NEW_YORK)
        end = parse_moment(query["end"], "end") if "end" in query else now
        if end < start:
            raise BadParameter("invalid end: it is before start")
        # Nothing exists before the generated history or after now; clamping also keeps
        # extreme dates (year 1, year 9999) away from date arithmetic and session loops.
        first_day = (market.started_at - HISTORY).astimezone(NEW_YORK).date()
        start = max(start, datetime.combine(first_day, time(0), NEW_YORK))
        end = min(end, now)
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise BadParameter(f"invalid limit: {query['limit']!r}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter(f"invalid limit: {limit} (between 1 and {MAX_LIMIT})")
        sort = query.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise BadParameter(f"invalid sort: {sort!r} (asc or desc)")
        token = query.get("page_token")
        resume = _read_token(token, symbols) if token else None
        return cls(symbols, frame, start, end, limit, sort == "desc", resume)


def _write_token(symbol: str, moment: datetime) -> str:
    """Where the next page starts: a symbol and the time of its next bar."""
    return base64.urlsafe_b64encode(json.dumps([symbol, moments.iso(moment)]).encode()).decode()


def _read_token(token: str, symbols: list[str]) -> tuple[str, datetime]:
    try:
        symbol, moment = json.loads(base64.urlsafe_b64decode(token.encode()))
        resume = (symbol, parse_moment(moment, "page_token"))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadParameter("invalid page_token") from None
    if symbol not in symbols:
        raise BadParameter("invalid page_token: it belongs to another query")
    return resume


# -- bars ----------------------------------------------------------------------------------
def _series(
    market: Market, symbol: str, query: BarsQuery, resume: datetime | None
) -> Iterator[Bar]:
    """One symbol's bars in [start, end] in the requested order, from ``resume`` on.

    Intraday bars are computed a whole session at a time (only as many sessions as the page
    needs), so every bar is the same whichever range or page asks for it.
    """
    start, end, descending = query.start, query.end, query.descending
    if query.frame.minutes is not None:
        if resume is not None:
            start, end = (start, resume) if descending else (resume, end)
        calendar = market.calendar(symbol)
        sessions = [
            session
            for session in calendar.sessions(
                start.astimezone(NEW_YORK).date() - timedelta(days=1),
                end.astimezone(NEW_YORK).date() + timedelta(days=1),
            )
            if session.open <= end and session.close > start
        ]
        for session in reversed(sessions) if descending else sessions:
            bars = [
                bar
                for bar in bars_in(market, symbol, query.frame.minutes, session.open, session.close)
                if start <= bar.time <= end
            ]
            yield from reversed(bars) if descending else bars
        return
    daily = [
        bar
        for bar in bars_in(market, symbol, None, start - DAILY_LOOKBACK, end + timedelta(days=1))
        if start <= bar.time <= end
    ]
    if query.frame.group is not None:
        daily = _grouped(market.assets[symbol], daily, query.frame)
    for bar in reversed(daily) if descending else daily:
        if resume is None or (bar.time <= resume if descending else bar.time >= resume):
            yield bar


def _grouped(asset: Asset, daily: list[Bar], frame: TimeFrame) -> list[Bar]:
    """Weekly (ISO weeks) or n-monthly bars from daily ones, stamped with their first day."""
    groups: dict[tuple[int, int], list[Bar]] = {}
    for bar in daily:
        day = bar.time.astimezone(NEW_YORK).date()
        if frame.group == "week":
            key = day.isocalendar()[:2]
        else:
            key = (day.year, (day.month - 1) // frame.months)
        groups.setdefault(key, []).append(bar)
    tick = Decimal(1).scaleb(-asset.scale)
    out = []
    for bars in groups.values():
        volume = sum(bar.volume for bar in bars)
        traded = sum(bar.vwap * bar.volume for bar in bars)
        out.append(
            Bar(
                time=bars[0].time,
                open=bars[0].open,
                high=max(bar.high for bar in bars),
                low=min(bar.low for bar in bars),
                close=bars[-1].close,
                volume=volume,
                trade_count=sum(bar.trade_count for bar in bars),
                vwap=(traded / volume).quantize(tick) if volume else bars[-1].close,
            )
        )
    return out


def bars_page(market: Market, query: BarsQuery) -> tuple[dict[str, list[dict]], str | None]:
    """Up to ``limit`` bars, symbol by symbol, and the token of the next page (None at the
    end). Looks one bar past the page so the last page never carries a dangling token."""
    out: dict[str, list[dict]] = {}
    remaining = query.limit
    first = query.symbols.index(query.resume[0]) if query.resume else 0
    for symbol in query.symbols[first:]:
        resume = query.resume[1] if query.resume and symbol == query.resume[0] else None
        for bar in _series(market, symbol, query, resume):
            if remaining == 0:
                return out, _write_token(symbol, bar.time)
            out.setdefault(symbol, []).append(bar_body(bar, moments.iso(bar.time)))
            remaining -= 1
    return out, None


# -- latest and snapshots --------------------------------------------------------------------
def latest_quote(market: Market, symbol: str) -> dict:
    asset = market.assets[symbol]
    live = market.live[symbol]
    return quote_body(
        asset.is_crypto,
        asset.to_decimal(live.bid),
        asset.to_decimal(live.ask),
        live.bid_size,
        live.ask_size,
        moments.iso(live.last_quote_at),
    )


def latest_trade(sandbox: Sandbox, symbol: str) -> dict:
    """The last print of the live book. Size and id come from the feed's record of that
    print; a print the feed did not publish (an order filled by the exchange, the opening
    state) reports size 0 and no id, because the book keeps only its price and time."""
    market = sandbox.market
    asset = market.assets[symbol]
    live = market.live[symbol]
    price = asset.to_decimal(live.last)
    printed = sandbox.streams.last_print(symbol)
    if printed is not None and printed.time == live.last_trade_at:
        size, trade_id, taker = printed.size, printed.trade_id, printed.taker
    else:
        size, trade_id = 0, None
        taker = taker_side(price, asset.to_decimal(live.bid), asset.to_decimal(live.ask))
    at = moments.iso(live.last_trade_at)
    return trade_body(asset.is_crypto, price, size, trade_id, taker, at)


def snapshot(sandbox: Sandbox, symbol: str) -> dict:
    """Latest trade and quote, the latest minute bar, today's and the previous daily bar."""
    market = sandbox.market
    calendar = market.calendar(symbol)
    today = calendar.session(market.session_day[symbol])
    previous = calendar.previous(today)
    daily = {
        bar.time: bar
        for bar in bars_in(
            market, symbol, None, previous.open - DAILY_LOOKBACK, today.open + timedelta(minutes=1)
        )
    }
    minute = live_minute_bar(market, symbol)
    return {
        "latestTrade": latest_trade(sandbox, symbol),
        "latestQuote": latest_quote(market, symbol),
        "minuteBar": bar_body(minute, moments.iso(minute.time)) if minute else None,
        "dailyBar": _maybe_bar(daily.get(today.open)),
        "prevDailyBar": _maybe_bar(daily.get(previous.open)),
    }


def _maybe_bar(bar: Bar | None) -> dict | None:
    return bar_body(bar, moments.iso(bar.time)) if bar else None


def _book(market: Market, symbol: str) -> dict:
    """Top of the book as a one-level order book (the sandbox keeps no depth)."""
    asset = market.assets[symbol]
    live = market.live[symbol]
    return {
        "t": moments.iso(live.last_quote_at),
        "b": [{"p": float(asset.to_decimal(live.bid)), "s": live.bid_size}],
        "a": [{"p": float(asset.to_decimal(live.ask)), "s": live.ask_size}],
    }


# -- routes --------------------------------------------------------------------------------
Endpoint = Callable[[web.Request], dict]


def _answer(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Run an endpoint: 400 naming the bad parameter, 500 without a traceback on a bug."""

    async def handler(request: web.Request) -> web.Response:
        try:
            return web.json_response(endpoint(request))
        except BadParameter as error:
            return web.json_response({"code": 40010001, "message": str(error)}, status=400)
        except Exception:
            logger.exception("market data request %s failed", request.path_qs)
            return web.json_response(
                {"code": 50010000, "message": "internal server error"}, status=500
            )

    return handler


def routes(sandbox: Sandbox) -> list[web.RouteDef]:
    market = sandbox.market

    def per_symbol(kind: AssetKind, key: str | None, build: Callable[[str], dict]) -> Endpoint:
        """An endpoint answering ``{key: {symbol: build(symbol)}}`` (no key: the bare map)."""

        def endpoint(request: web.Request) -> dict:
            _common(request, kind)
            found = {symbol: build(symbol) for symbol in _symbols(request, market, kind)}
            return found if key is None else {key: found}

        return endpoint

    def bars(kind: AssetKind) -> Endpoint:
        def endpoint(request: web.Request) -> dict:
            page, token = bars_page(market, BarsQuery.parse(request, market, kind))
            return {"bars": page, "next_page_token": token}

        return endpoint

    def latest_bar(symbol: str) -> dict | None:
        bar = live_minute_bar(market, symbol)
        return bar_body(bar, moments.iso(bar.time)) if bar else None

    def quote(symbol: str) -> dict:
        return latest_quote(market, symbol)

    def trade(symbol: str) -> dict:
        return latest_trade(sandbox, symbol)

    def snap(symbol: str) -> dict:
        return snapshot(sandbox, symbol)

    def book(symbol: str) -> dict:
        return _book(market, symbol)

    stocks, crypto = "/v2/stocks", "/v1beta3/crypto/us"
    endpoints = {
        f"{stocks}/bars": bars(STOCKS),
        f"{stocks}/bars/latest": per_symbol(STOCKS, "bars", latest_bar),
        f"{stocks}/quotes/latest": per_symbol(STOCKS, "quotes", quote),
        f"{stocks}/trades/latest": per_symbol(STOCKS, "trades", trade),
        f"{stocks}/snapshots": per_symbol(STOCKS, None, snap),
        f"{crypto}/bars": bars(CRYPTO),
        f"{crypto}/latest/bars": per_symbol(CRYPTO, "bars", latest_bar),
        f"{crypto}/latest/quotes": per_symbol(CRYPTO, "quotes", quote),
        f"{crypto}/latest/trades": per_symbol(CRYPTO, "trades", trade),
        f"{crypto}/latest/orderbooks": per_symbol(CRYPTO, "orderbooks", book),
        f"{crypto}/snapshots": per_symbol(CRYPTO, "snapshots", snap),
    }
    return [web.get(path, _answer(endpoint)) for path, endpoint in endpoints.items()]
