"""OHLCV bars of the sandbox's prices: past sessions from the seeded history, today from the prints.

Intraday bars of a past session chunk its minute path (:meth:`.market.Market.minute_path`);
the current session's chunk the minute closes the market recorded as it printed. Daily bars
are the seeded closes, with today's bar read from the live book. Volume, trade count and VWAP
are not simulated per trade: a bar's volume is drawn from a seed of its own, with a trade per
100 shares and VWAP halfway between two of its prices, so the same bar is the same every time
it is asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .assets import Asset
    from .calendar import Session
    from .market import Market


@dataclass
class Bar:
    """An OHLCV bar starting at ``time``."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trade_count: int
    vwap: Decimal

    @classmethod
    def of_units(
        cls,
        asset: Asset,
        time: datetime,
        ohlc: tuple[int, int, int, int],
        volume: int,
        trade_count: int,
        vwap: int,
    ) -> Bar:
        """A bar from prices in the asset's integer units."""
        first, high, low, last = (asset.to_decimal(units) for units in ohlc)
        return cls(time, first, high, low, last, volume, trade_count, asset.to_decimal(vwap))


def bars_in(
    market: Market, symbol: str, minutes: int | None, start: datetime, end: datetime
) -> list[Bar]:
    """Bars in [start, end): daily when ``minutes`` is None, else ``minutes`` wide."""
    if minutes is None:
        return _daily_bars(market, symbol, start, end)
    asset = market.assets[symbol]
    calendar = market.calendar(symbol)
    out: list[Bar] = []
    first = start.astimezone(start.tzinfo).date() - timedelta(days=1)
    for session in calendar.sessions(first, end.date() + timedelta(days=1)):
        if session.close <= start or session.open >= end:
            continue
        closes = _session_minutes(market, symbol, session)
        rng = random.Random(f"{market.seed}:vol:{symbol}:{session.day.isoformat()}")
        for i in range(0, len(closes), minutes):
            begin = session.open + timedelta(minutes=i)
            if begin < start or begin >= end:
                continue
            chunk = closes[i : i + minutes]
            prior = closes[i - 1] if i else chunk[0]
            out.append(_bar(asset, begin, prior, chunk, rng))
    return out


def live_minute_bar(market: Market, symbol: str, minute: datetime | None = None) -> Bar | None:
    """The current session's minute bar starting at ``minute`` (default: the latest), built
    from the prints the market recorded; None when nothing printed in that minute.
    """
    live = market.live[symbol]
    session = market.calendar(symbol).session(market.session_day[symbol])
    if session is None or not live.minutes:
        return None
    opened = session.open.astimezone(UTC)
    index = max(live.minutes) if minute is None else int((minute - opened).total_seconds() // 60)
    entry = live.minutes.get(index)
    if entry is None:
        return None
    first, high, low, last, volume = entry
    return Bar.of_units(
        market.assets[symbol],
        opened + timedelta(minutes=index),
        (first, high, low, last),
        volume,
        max(1, volume // 100),
        (high + low) // 2,
    )


def _session_minutes(market: Market, symbol: str, session: Session) -> list[int]:
    """Minute closes (units) of a session; the current one up to its last published minute."""
    asset = market.assets[symbol]
    if session.day < market.session_day[symbol]:
        return [asset.to_units(p) for p in market.minute_path(symbol, session)]
    live = market.live[symbol]
    closes, close = [], live.day_open
    for minute in range(live.minute_keys[-1] + 1):
        bar = live.minutes.get(minute)
        close = bar[3] if bar is not None else close
        closes.append(close)
    return closes


def _bar(asset: Asset, begin: datetime, prior: int, chunk: list[int], rng: random.Random) -> Bar:
    volume = rng.randint(100, 5000) * len(chunk)
    return Bar.of_units(
        asset,
        begin,
        (prior, max(prior, *chunk), min(prior, *chunk), chunk[-1]),
        volume,
        max(1, volume // 100),
        (prior + chunk[-1]) // 2,
    )


def _daily_bars(market: Market, symbol: str, start: datetime, end: datetime) -> list[Bar]:
    asset = market.assets[symbol]
    calendar = market.calendar(symbol)
    out: list[Bar] = []
    closes = market.closes(symbol)
    days = [d for d in closes if start.date() <= d < end.date() or d == start.date()]
    previous = None
    for day in days:
        close = asset.to_units(closes[day])
        prior = previous if previous is not None else close
        rng = random.Random(f"{market.seed}:daily:{symbol}:{day.isoformat()}")
        spread = max(1, int(abs(close - prior) * 0.5) + asset.tick_units)
        chunk = [close + rng.randint(-spread, spread), close]
        session = calendar.session(day)
        out.append(_bar(asset, session.open if session else start, prior, chunk, rng))
        previous = close
    session = calendar.session(market.session_day[symbol])
    live = market.live[symbol]
    if session and start <= session.open < end:
        out.append(
            Bar.of_units(
                asset,
                session.open,
                (live.day_open, live.high, live.low, live.last),
                live.volume,
                live.trade_count,
                (live.high + live.low) // 2,
            )
        )
    return out
