"""The sandbox's prices: daily and intraday history, and live random walks, for every asset.

Prices are geometric random walks quantised to realistic ticks (a cent for stocks over $1,
finer below a dollar and for crypto) with a bid/ask spread around the walk. Everything is a
deterministic function of the seed except the live walk, which starts from the generated
"now" and then follows the quotes the sandbox actually publishes, so history, positions and
the stream always agree. Values leave this module as ``Decimal``; the walk itself runs on
floats and is quantised on every step. The assets come from :mod:`.assets`; :mod:`.bars`
turns these prices into OHLCV bars.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

import numpy

from .assets import Asset
from .calendar import AlwaysOpen, Calendar, Session

SECONDS_PER_YEAR = 365.25 * 24 * 3600
#: Past sessions' minute paths kept in memory (each up to 1,440 floats); the rest regenerate.
PATH_CACHE_SIZE = 512
HISTORY_YEARS = 6

#: Annualised volatility by category: what makes a bond fund calmer than a crypto coin.
VOLATILITY = {
    "stock": 0.32,
    "etf_broad": 0.16,
    "etf_sector": 0.22,
    "etf_bond": 0.06,
    "crypto": 0.70,
    "option": 1.10,
}


def _stable_seed(seed: int, *parts: str) -> int:
    """A seed for numpy derived from the sandbox seed and names, stable across runs."""
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Tick:
    """One published market event: a quote, optionally with the trade it printed."""

    symbol: str
    time: datetime
    bid: Decimal
    ask: Decimal
    bid_size: int | float
    ask_size: int | float
    trade_price: Decimal | None = None
    trade_size: int | float | None = None
    trade_id: int | None = None


@dataclass
class LiveState:
    """A symbol's live book: prices in integer units of the asset's scale."""

    last: int
    bid: int
    ask: int
    prev_close: int
    day_open: int
    high: int
    low: int
    volume: int = 0
    trade_count: int = 0
    bid_size: int | float = 0
    ask_size: int | float = 0
    last_trade_at: datetime | None = None
    last_quote_at: datetime | None = None
    walk: float = 0.0  # the unquantised mid the walk continues from
    updated_at: datetime | None = None
    minutes: dict[int, list[int]] = field(default_factory=dict)  # minute of session → o,h,l,c,v
    minute_keys: list[int] = field(default_factory=list)  # sorted keys of ``minutes``


class Market:
    """Prices of every asset: history (deterministic from the seed) and the live walk."""

    def __init__(
        self,
        assets: list[Asset],
        seed: int,
        stock_calendar: Calendar,
        now: datetime,
    ) -> None:
        self.seed = seed
        self.assets = {a.symbol: a for a in assets}
        self.assets_by_id = {str(a.id): a for a in assets}
        self._unslashed = {a.symbol.replace("/", ""): a for a in assets if a.is_crypto}
        self.stock_calendar = stock_calendar
        self.crypto_calendar = AlwaysOpen()
        self.started_at = now
        self._trade_ids = 0
        self._closes: dict[str, dict[date, float]] = {}
        self._close_days: dict[str, list[date]] = {}
        self._calendar_days: dict[str, list[date]] = {}
        self._paths: OrderedDict[tuple[str, date], list[float]] = OrderedDict()
        self.live: dict[str, LiveState] = {}
        self.session_day: dict[str, date] = {}
        for asset in assets:
            self._open_live(asset, now)
        streamable = [a.symbol for a in assets if a.asset_class != "us_option"]
        # Activity falls with rank within each class: BTC/USD is as busy as the top stock.
        ranks: Counter[str] = Counter()
        weights = []
        for symbol in streamable:
            asset_class = self.assets[symbol].asset_class
            weights.append(1.0 / (ranks[asset_class] + 8))
            ranks[asset_class] += 1
        self._streamable = streamable
        self._cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))]
        self._rng = random.Random(f"{seed}:live")

    def find(self, key: str) -> Asset | None:
        """An asset by symbol (crypto with or without the slash, any case) or by id."""
        upper = key.upper()
        found = self.assets.get(key) or self.assets.get(upper) or self._unslashed.get(upper)
        if found is not None:
            return found
        try:
            asset_id = uuid.UUID(key)
        except ValueError:
            return None
        return self.assets_by_id.get(str(asset_id))

    # -- calendars -----------------------------------------------------------------------
    def calendar(self, symbol: str) -> Calendar:
        return self.crypto_calendar if self.assets[symbol].is_crypto else self.stock_calendar

    def is_open(self, symbol: str, moment: datetime) -> bool:
        return self.calendar(symbol).is_open(moment)

    # -- history ---------------------------------------------------------------------------
    def _vol(self, asset: Asset) -> float:
        return VOLATILITY.get(asset.category, 0.3)

    def _sessions_per_year(self, symbol: str) -> float:
        return 365.0 if isinstance(self.calendar(symbol), AlwaysOpen) else 252.0

    def closes(self, symbol: str) -> dict[date, float]:
        """Closing prices of every past session (before the current one), as floats, oldest first.

        Generated backwards from the previous close, so the series ends exactly where the
        live walk begins; cached per symbol.
        """
        cached = self._closes.get(symbol)
        if cached is not None:
            return cached
        asset = self.assets[symbol]
        days = self._history_days(self.calendar(symbol))
        rng = numpy.random.default_rng(_stable_seed(self.seed, "closes", symbol))
        daily = self._vol(asset) / math.sqrt(self._sessions_per_year(symbol))
        drift = 0.07 / self._sessions_per_year(symbol)
        last = float(asset.to_decimal(self.live[symbol].prev_close))
        # Walk backwards from the previous close: close[k-1] = close[k] / exp(return[k]).
        returns = drift + daily * rng.standard_normal(len(days))
        returns[-1] = 0.0
        values = last / numpy.exp(numpy.cumsum(returns[::-1]))[::-1]
        closes = dict(zip(days, values.tolist(), strict=True))
        self._closes[symbol] = closes
        self._close_days[symbol] = list(days)
        return self._closes[symbol]

    def close_on(self, symbol: str, day: date) -> Decimal:
        """Close of the last session on or before ``day``; the live price for the current one."""
        asset = self.assets[symbol]
        if day >= self.session_day[symbol]:
            return asset.to_decimal(self.live[symbol].last)
        closes = self.closes(symbol)
        value = closes.get(day)
        if value is None:
            days = self._close_days[symbol]
            index = bisect.bisect_right(days, day) - 1
            if not days:
                return asset.to_decimal(self.live[symbol].prev_close)
            value = closes[days[max(index, 0)]]
        return asset.to_decimal(asset.to_units(value))

    def _history_days(self, calendar: Calendar) -> list[date]:
        """Past session days covered by history, oldest first; one list per calendar."""
        days = self._calendar_days.get(calendar.name)
        if days is None:
            current = calendar.current_or_previous(self.started_at)
            first = current.day - timedelta(days=int(365.25 * HISTORY_YEARS))
            day, days = first, []
            while day < current.day:
                if calendar.is_trading_day(day):
                    days.append(day)
                day += timedelta(days=1)
            self._calendar_days[calendar.name] = days
        return days

    def _base_prev_close(self, asset: Asset) -> float:
        rng = random.Random(f"{self.seed}:prevclose:{asset.symbol}")
        return float(asset.reference_price) * math.exp(rng.gauss(0.0, 0.05))

    def minute_path(self, symbol: str, session: Session) -> list[float]:
        """Minute closes of a past session: a Brownian bridge from the prior close to its close."""
        key = (symbol, session.day)
        path = self._paths.get(key)
        if path is not None:
            self._paths.move_to_end(key)
            return path
        asset = self.assets[symbol]
        calendar = self.calendar(symbol)
        start = float(self.close_on(symbol, calendar.previous(session).day))
        end = float(self.close_on(symbol, session.day))
        minutes = max(1, int((session.close - session.open).total_seconds() // 60))
        rng = random.Random(f"{self.seed}:path:{symbol}:{session.day.isoformat()}")
        step = self._vol(asset) / math.sqrt(self._sessions_per_year(symbol) * minutes)
        walk = [0.0]
        for _ in range(minutes):
            walk.append(walk[-1] + step * rng.gauss(0.0, 1.0))
        drift = math.log(end / start)
        path = [
            start * math.exp(walk[i] - (walk[-1] - drift) * i / minutes)
            for i in range(1, minutes + 1)
        ]
        self._paths[key] = path
        if len(self._paths) > PATH_CACHE_SIZE:
            self._paths.popitem(last=False)
        return path

    def price_at(self, symbol: str, moment: datetime) -> Decimal:
        """The last trade price at ``moment``: history, today's path, or the live price."""
        asset = self.assets[symbol]
        calendar = self.calendar(symbol)
        session = calendar.current_or_previous(moment)
        if session.day >= self.session_day[symbol]:
            live = self.live[symbol]
            minute = int((moment - session.open).total_seconds() // 60)
            if minute >= live.minute_keys[-1]:
                return asset.to_decimal(live.last)
            index = bisect.bisect_right(live.minute_keys, minute) - 1
            if index < 0:
                return asset.to_decimal(live.day_open)
            return asset.to_decimal(live.minutes[live.minute_keys[index]][3])
        if moment >= session.close:
            return self.close_on(symbol, session.day)
        if session.day <= next(iter(self.closes(symbol)), session.day):
            return self.close_on(symbol, session.day)
        path = self.minute_path(symbol, session)
        minute = min(len(path) - 1, int((moment - session.open).total_seconds() // 60))
        return asset.to_decimal(asset.to_units(path[minute]))

    def _spread_units(self, asset: Asset, mid: int) -> int:
        if asset.is_crypto:
            return max(asset.tick_units, round(mid * 0.0004))
        if asset.asset_class == "us_option":
            return asset.tick_units * 2
        return asset.tick_units * (1 if mid * asset.tick_units > 2000 else 2)

    def _open_live(self, asset: Asset, now: datetime) -> None:
        """Start a symbol's session: the day so far is a bridge from the previous close."""
        calendar = self.calendar(asset.symbol)
        session = calendar.current_or_previous(now)
        prev_close = asset.to_units(self._base_prev_close(asset))
        elapsed = min(1.0, max(0.0, (now - session.open) / (session.close - session.open)))
        rng = random.Random(f"{self.seed}:open:{asset.symbol}")
        daily = self._vol(asset) / math.sqrt(self._sessions_per_year(asset.symbol))
        move = math.exp(daily * math.sqrt(elapsed) * rng.gauss(0.0, 1.0))
        last = asset.to_units(float(asset.to_decimal(prev_close)) * move)
        spread = self._spread_units(asset, last)
        state = LiveState(
            last=last,
            bid=last - spread // 2 - spread % 2,
            ask=last + spread // 2,
            prev_close=prev_close,
            day_open=prev_close,
            high=max(prev_close, last),
            low=min(prev_close, last),
            walk=float(asset.to_decimal(last)),
            updated_at=now,
            bid_size=rng.randint(1, 20) * 100,
            ask_size=rng.randint(1, 20) * 100,
            last_trade_at=now,
            last_quote_at=now,
        )
        minutes = int((min(now, session.close) - session.open).total_seconds() // 60)
        for minute in range(minutes + 1):
            fraction = minute / max(1, minutes)
            units = round(prev_close + (last - prev_close) * fraction)
            state.minutes[minute] = [units, units, units, units, 0]
            state.minute_keys.append(minute)
        self.live[asset.symbol] = state
        self.session_day[asset.symbol] = session.day

    def last_price(self, symbol: str) -> Decimal:
        asset = self.assets[symbol]
        return asset.to_decimal(self.live[symbol].last)

    def prev_close(self, symbol: str) -> Decimal:
        asset = self.assets[symbol]
        return asset.to_decimal(self.live[symbol].prev_close)

    def roll_sessions(self, now: datetime) -> list[str]:
        """Start a new session for every symbol whose calendar opened one; returns them."""
        rolled = []
        for symbol, live in self.live.items():
            session = self.calendar(symbol).current_or_previous(now)
            if session.day == self.session_day[symbol]:
                continue
            self.closes(symbol)[self.session_day[symbol]] = float(
                self.assets[symbol].to_decimal(live.last)
            )
            self._close_days[symbol].append(self.session_day[symbol])
            self._paths[(symbol, self.session_day[symbol])] = [
                float(self.assets[symbol].to_decimal(live.minutes[m][3])) for m in live.minute_keys
            ] or [float(self.assets[symbol].to_decimal(live.last))]
            live.prev_close = live.day_open = live.high = live.low = live.last
            live.volume = live.trade_count = 0
            live.minutes = {0: [live.last] * 4 + [0]}
            live.minute_keys = [0]
            self.session_day[symbol] = session.day
            rolled.append(symbol)
        return rolled

    def step(self, now: datetime, updates: int) -> list[Tick]:
        """Advance ``updates`` randomly chosen open symbols (popular ones more often)."""
        if updates <= 0 or not self._streamable:
            return []
        picks = self._rng.choices(self._streamable, cum_weights=self._cum_weights, k=updates)
        ticks = []
        for symbol in picks:
            if not self.is_open(symbol, now):
                continue
            ticks.append(self._advance(symbol, now))
        return ticks

    def _advance(self, symbol: str, now: datetime) -> Tick:
        asset = self.assets[symbol]
        live = self.live[symbol]
        rng = self._rng
        dt = max(0.05, (now - (live.updated_at or now)).total_seconds())
        sigma = self._vol(asset) * math.sqrt(dt / SECONDS_PER_YEAR)
        live.walk *= math.exp(sigma * rng.gauss(0.0, 1.0))
        live.updated_at = now
        mid = asset.to_units(live.walk)
        spread = self._spread_units(asset, mid)
        live.bid = max(asset.tick_units, mid - spread // 2 - spread % 2)
        live.ask = live.bid + spread
        if asset.is_crypto:
            live.bid_size = round(rng.uniform(0.01, 3.0), 4)
            live.ask_size = round(rng.uniform(0.01, 3.0), 4)
        else:
            live.bid_size = rng.randint(1, 20) * 100
            live.ask_size = rng.randint(1, 20) * 100
        live.last_quote_at = now
        tick = Tick(
            symbol=symbol,
            time=now,
            bid=asset.to_decimal(live.bid),
            ask=asset.to_decimal(live.ask),
            bid_size=live.bid_size,
            ask_size=live.ask_size,
        )
        if rng.random() < 0.4:
            price = rng.choice((live.bid, live.ask, mid))
            size = round(rng.uniform(0.001, 1.5), 4) if asset.is_crypto else rng.randint(1, 300)
            self.record_trade(symbol, price, size, now)
            self._trade_ids += 1
            tick.trade_price = asset.to_decimal(price)
            tick.trade_size = size
            tick.trade_id = self._trade_ids
        return tick

    def record_trade(self, symbol: str, units: int, size: int | float, now: datetime) -> None:
        """Print a trade at ``units``: the last price, the day's range and the minute bar."""
        live = self.live[symbol]
        live.last = units
        live.high = max(live.high, units)
        live.low = min(live.low, units)
        live.volume += int(size) if isinstance(size, int) else 1
        live.trade_count += 1
        live.last_trade_at = now
        session = self.calendar(symbol).current_or_previous(now)
        minute = int((now - session.open).total_seconds() // 60)
        bar = live.minutes.get(minute)
        if bar is None:
            live.minutes[minute] = [units, units, units, units, int(size) or 1]
            bisect.insort(live.minute_keys, minute)
        else:
            bar[1] = max(bar[1], units)
            bar[2] = min(bar[2], units)
            bar[3] = units
            bar[4] += int(size) or 1

    @cached_property
    def streamable_symbols(self) -> frozenset[str]:
        return frozenset(self._streamable)
