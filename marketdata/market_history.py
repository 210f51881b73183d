"""Adjusted daily closes of stocks, ETFs and crypto from Alpaca's market data, kept in Redis.

``daily_closes(symbols, start, end)`` answers ``{symbol: DailyCloses}``: each symbol's closes on
the days in [start, end] (both inclusive) that have a bar, oldest first. A symbol with no bar
there (unknown to Alpaca, not listed yet) is absent from the answer, never an error.

* **Adjusted**: stock and ETF closes are split- and dividend-adjusted (``adjustment=all``, feed
  ALPACA_DATA_FEED), so a return across an ex-date is what the holder earned; crypto has no
  corporate actions.
* **Completed days only**: ``end`` is clipped to :func:`last_completed_day`, yesterday in New
  York, so no answer carries a close that may still move and every cached close is final. New
  York is behind UTC, so by then a crypto day (a UTC day) has ended too.
* **A bar's day**: a stock bar's New York date (Alpaca stamps them at midnight New York); a
  crypto bar's UTC date (Alpaca stamps them at midnight UTC; until mid-2025 at midnight
  Chicago, the same UTC date).
* **Symbols** as Alpaca's market data names them: crypto pairs with their slash (``BTC/USD``,
  see :func:`marketdata.price_cache.canonical_symbol`); a symbol with a slash is crypto.
* **One SDK call per asset class**, multi-symbol (``StockHistoricalDataClient.get_stock_bars``,
  ``CryptoHistoricalDataClient.get_crypto_bars``; Alpaca pages answers past 10,000 bars), for
  the days the cache lacks only; none when it has them all.
* **Failures** are the broker gateway's (:mod:`marketdata.errors`), translated once by
  :mod:`marketdata.broker_failures` and logged with our credentials cut out. Every request has
  ALPACA_TIMEOUT and the SDK's silent retries are off (:mod:`marketdata.broker_client`).
* **Redis is only a cache**: when it fails, the answer comes from Alpaca uncached (logged).

The cache (values encoded as :mod:`marketdata.store` says):

``clera:closes:<symbol>`` — a hash per symbol: ``YYYY-MM-DD`` → that day's close, and ``span``
→ ``first/last``, the days it covers: every day of the span that has a bar has its field
(weekends and holidays have none). A call asks Alpaca for the days outside the span and widens
it; a span that would not touch the new days is replaced. A write lands only if the span is
still the one the call read (another process may have written meanwhile), and renews the key's
TTL (:data:`CLOSES_TTL`), so symbols nobody asks for any more go away.

Adjusted closes are final until a split or dividend goes ex: then Alpaca re-adjusts every
earlier close. So each widening asks again for the cached bar next to the new days; a close that
no longer matches shows the re-adjustment, and that symbol's history is fetched anew.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import redis
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import moments
from .broker_client import PerThread, time_bounded
from .broker_failures import FAILURES, FailureTranslator
from .moments import NEW_YORK
from .store import parse_decimal, redis_client

logger = logging.getLogger(__name__)

CLOSES_PREFIX = "clera:closes:"
SPAN_FIELD = "span"
#: Seconds a symbol's cached closes outlive their last write.
CLOSES_TTL = 30 * 24 * 3600
_DAY = timedelta(days=1)

#: First and last day, inclusive.
Span = tuple[date, date]

# KEYS: the symbols' hashes. ARGV[1]: the TTL; ARGV[2]: JSON rows aligned with KEYS, each
# [the span the caller read ("" for none), whether to replace the hash, [field, value, ...]].
# A hash whose span changed since it was read is left alone. HSET goes in chunks: Lua's
# unpack() has a limit on how many values it spreads.
_STORE = """
local rows = cjson.decode(ARGV[2])
local written = 0
for i, key in ipairs(KEYS) do
  local row = rows[i]
  if (redis.call('HGET', key, 'span') or '') == row[1] then
    if row[2] then redis.call('DEL', key) end
    local items = row[3]
    for first = 1, #items, 1000 do
      redis.call('HSET', key, unpack(items, first, math.min(first + 999, #items)))
    end
    redis.call('EXPIRE', key, ARGV[1])
    written = written + 1
  end
end
return written
"""


@dataclass(frozen=True, slots=True)
class DailyCloses:
    """One symbol's adjusted closes, one per trading day, oldest first."""

    symbol: str
    days: tuple[date, ...]
    closes: tuple[Decimal, ...]


def last_completed_day() -> date:
    """The last day whose closes are final for stocks and crypto alike: yesterday in New York."""
    return datetime.now(NEW_YORK).date() - _DAY


@dataclass(frozen=True)
class _Cached:
    """One symbol's hash as read: the span as stored (to tell a later write), parsed."""

    stored_span: str
    span: Span | None
    closes: dict[date, Decimal]

    @classmethod
    def parse(cls, row: Mapping[bytes, bytes]) -> _Cached:
        fields = dict(row)
        stored = fields.pop(SPAN_FIELD.encode(), b"").decode(errors="replace")
        try:
            first, last = (date.fromisoformat(part) for part in stored.split("/"))
            closes = {
                date.fromisoformat(day.decode()): _price(value) for day, value in fields.items()
            }
        except (ValueError, UnicodeDecodeError):  # nothing cached, or not by us: start over
            return cls(stored, None, {})
        return cls(stored, (first, last), closes)

    def needs(self, start: date, end: date) -> Span | None:
        """The days to ask Alpaca for so [start, end] is known; None when it is already.

        A widening reaches back to the nearest cached bar, which tells a re-adjustment.
        """
        if self.span is None or not _touch(self.span, (start, end)):
            return start, end
        first, last = self.span
        if first <= start and end <= last:
            return None
        low = start if start < first else max(self.closes, default=last + _DAY)
        high = end if end > last else min(self.closes, default=first - _DAY)
        return low, high


@dataclass(frozen=True)
class _Update:
    """What Alpaca said for one symbol over ``span``; ``replace``: the cached closes are void."""

    span: Span
    closes: dict[date, Decimal]
    replace: bool


@dataclass(frozen=True)
class _Market:
    """What differs between the asset classes: how to ask, and whose date a bar's stamp is."""

    name: str
    zone: tzinfo
    ask: Callable[[list[str], datetime, datetime], Any]

    def holds(self, symbol: str) -> bool:
        """Whether ``symbol`` is of this asset class: crypto pairs carry a slash."""
        return ("/" in symbol) == (self.name == "crypto")


class MarketHistory:
    """Daily closes through alpaca-py's historical data clients, cached in Redis by day.

    Settings (ALPACA_DATA_URL, ALPACA_DATA_CREDENTIALS, ALPACA_DATA_FEED, ALPACA_TIMEOUT) are
    read once, here. Broker API keys (no separate data keys) authenticate with HTTP Basic, as
    Alpaca's data API wants them.
    """

    def __init__(self) -> None:
        key, secret = settings.ALPACA_DATA_CREDENTIALS
        if not key or not secret:
            raise ImproperlyConfigured("ALPACA_DATA_CREDENTIALS needs a key and a secret")
        try:
            feed = DataFeed(settings.ALPACA_DATA_FEED)
        except ValueError:
            raise ImproperlyConfigured(
                f"ALPACA_DATA_FEED is not a feed Alpaca has: {settings.ALPACA_DATA_FEED!r}"
            ) from None
        url = settings.ALPACA_DATA_URL.rstrip("/")
        timeout = float(settings.ALPACA_TIMEOUT)
        basic = tuple(settings.ALPACA_DATA_CREDENTIALS) == tuple(settings.ALPACA_BROKER_CREDENTIALS)
        # raw_data: closes are read from the JSON, never through the SDK's float models.
        options = {"raw_data": True, "url_override": url, "use_basic_auth": basic}
        stocks = PerThread(
            lambda: time_bounded(StockHistoricalDataClient(key, secret, **options), timeout)
        )
        crypto = PerThread(
            lambda: time_bounded(CryptoHistoricalDataClient(key, secret, **options), timeout)
        )
        self._stocks = _Market(
            "stock",
            NEW_YORK,
            lambda symbols, start, end: stocks.current().get_stock_bars(
                StockBarsRequest(
                    symbol_or_symbols=symbols,
                    timeframe=TimeFrame.Day,
                    start=start,
                    end=end,
                    adjustment=Adjustment.ALL,
                    feed=feed,
                )
            ),
        )
        self._crypto = _Market(
            "crypto",
            UTC,
            lambda symbols, start, end: crypto.current().get_crypto_bars(
                CryptoBarsRequest(
                    symbol_or_symbols=symbols, timeframe=TimeFrame.Day, start=start, end=end
                )
            ),
        )
        self._failures = FailureTranslator(key, secret, timeout)

    def daily_closes(
        self, symbols: Iterable[str], start: date, end: date
    ) -> dict[str, DailyCloses]:
        """Adjusted closes of each symbol with bars in [start, end], by symbol (see the module)."""
        wanted = sorted({symbols} if isinstance(symbols, str) else set(filter(None, symbols)))
        end = min(end, last_completed_day())
        if not wanted or start > end:
            return {}
        cache = self._read(wanted)
        known = cache or {}
        updates: dict[str, _Update] = {}
        for market in (self._stocks, self._crypto):
            needs = {
                symbol: span
                for symbol in wanted
                if market.holds(symbol)
                and (span := _needs(known.get(symbol), start, end)) is not None
            }
            if needs:
                updates.update(self._refresh(market, needs, known, (start, end)))
        if cache is not None and updates:
            self._store(updates, cache)
        answer = {}
        for symbol in wanted:
            update, cached = updates.get(symbol), known.get(symbol)
            closes = {} if cached is None or (update and update.replace) else dict(cached.closes)
            closes.update(update.closes if update else {})
            days = sorted(day for day in closes if start <= day <= end)
            if days:
                answer[symbol] = DailyCloses(
                    symbol, tuple(days), tuple(closes[day] for day in days)
                )
        return answer

    # --- Alpaca -----------------------------------------------------------------------------

    def _refresh(
        self, market: _Market, needs: dict[str, Span], known: dict[str, _Cached], wanted: Span
    ) -> dict[str, _Update]:
        """Ask Alpaca once for every symbol's missing days; once more for re-adjusted ones."""
        asked = (min(first for first, _ in needs.values()), max(last for _, last in needs.values()))
        fetched = self._bars(market, sorted(needs), asked)
        updates, readjusted = {}, []
        for symbol in needs:
            cached, closes = known.get(symbol), fetched.get(symbol, {})
            if cached is None or cached.span is None or not _touch(cached.span, asked):
                updates[symbol] = _Update(asked, closes, replace=True)
            elif _agree(cached, closes, asked):
                updates[symbol] = _Update(_hull(cached.span, asked), closes, replace=False)
            else:
                readjusted.append(symbol)
        if readjusted:
            logger.info(
                "market history: Alpaca re-adjusted %s; fetching their closes anew",
                ", ".join(readjusted),
            )
            whole = _hull(asked, wanted)
            again = fetched if whole == asked else self._bars(market, readjusted, whole)
            for symbol in readjusted:
                updates[symbol] = _Update(whole, again.get(symbol, {}), replace=True)
        return updates

    def _bars(
        self, market: _Market, symbols: list[str], span: Span
    ) -> dict[str, dict[date, Decimal]]:
        """Each symbol's closes by day in ``span``, in one SDK call."""
        start = datetime.combine(span[0], time(0), UTC)
        end = datetime.combine(span[1], time(23, 59, 59), UTC)
        try:
            wire = market.ask(symbols, start, end)
            return {
                symbol: _closes(wire[symbol], market.zone, span)
                for symbol in symbols
                if symbol in wire
            }
        except FAILURES as failure:
            error = self._failures.failed(f"market history ({market.name} bars)", failure, logger)
        raise error  # outside the except: the SDK's exception carries our credentials

    # --- Redis ------------------------------------------------------------------------------

    def _read(self, symbols: list[str]) -> dict[str, _Cached] | None:
        """What Redis holds for each symbol; None when Redis fails."""
        try:
            with redis_client().pipeline(transaction=False) as pipe:
                for symbol in symbols:
                    pipe.hgetall(CLOSES_PREFIX + symbol)
                rows = pipe.execute()
        except redis.RedisError as error:
            logger.warning(
                "market history: Redis failed (%s); asking Alpaca for every day",
                type(error).__name__,
            )
            return None
        return {symbol: _Cached.parse(row) for symbol, row in zip(symbols, rows, strict=True)}

    def _store(self, updates: dict[str, _Update], cache: dict[str, _Cached]) -> None:
        """Write what Alpaca said, where no other process has written since we read."""
        symbols = list(updates)
        rows = []
        for symbol in symbols:
            update = updates[symbol]
            items = [SPAN_FIELD, f"{update.span[0].isoformat()}/{update.span[1].isoformat()}"]
            for day, close in update.closes.items():
                items += [day.isoformat(), str(close)]
            rows.append([cache[symbol].stored_span, update.replace, items])
        try:
            redis_client().register_script(_STORE)(
                keys=[CLOSES_PREFIX + symbol for symbol in symbols],
                args=[CLOSES_TTL, json.dumps(rows)],
            )
        except redis.RedisError as error:
            logger.warning(
                "market history: Redis failed (%s); closes left uncached", type(error).__name__
            )


def _needs(cached: _Cached | None, start: date, end: date) -> Span | None:
    return (start, end) if cached is None else cached.needs(start, end)


def _touch(one: Span, other: Span) -> bool:
    """Whether two spans overlap or meet end to start."""
    return one[0] <= other[1] + _DAY and other[0] <= one[1] + _DAY


def _hull(one: Span, other: Span) -> Span:
    return min(one[0], other[0]), max(one[1], other[1])


def _agree(cached: _Cached, closes: dict[date, Decimal], asked: Span) -> bool:
    """Whether Alpaca's closes on the days both cover are the cached ones."""
    first, last = max(cached.span[0], asked[0]), min(cached.span[1], asked[1])

    def within(closes: dict[date, Decimal]) -> dict[date, Decimal]:
        return {day: close for day, close in closes.items() if first <= day <= last}

    return within(cached.closes) == within(closes)


def _closes(bars: Iterable[dict], zone: tzinfo, span: Span) -> dict[date, Decimal]:
    """Closes by the day of each bar (its date in ``zone``) within ``span``."""
    closes = {}
    for bar in bars:
        day = moments.parse(bar["t"]).astimezone(zone).date()
        if span[0] <= day <= span[1]:
            closes[day] = _price(bar["c"])
    return closes


def _price(value: object) -> Decimal:
    """A positive close from Alpaca's JSON number (exactly as written: its shortest repr) or
    from its cached decimal string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    price = parse_decimal(value) if isinstance(value, str | bytes) else None
    if price is None or price <= 0:
        raise ValueError(f"expected a positive price, got {value!r}")
    return price


_history: MarketHistory | None = None
_history_lock = threading.Lock()


def market_history() -> MarketHistory:
    """The process's market history, built on first use (so settings are read after they load)."""
    global _history
    with _history_lock:
        if _history is None:
            _history = MarketHistory()
        return _history


@receiver(setting_changed)
def _forget_history(setting: str, **kwargs: Any) -> None:
    """Rebuild the clients after a test overrides an ALPACA_* setting."""
    global _history
    if setting.startswith("ALPACA_"):
        with _history_lock:
            _history = None


def daily_closes(symbols: Iterable[str], start: date, end: date) -> dict[str, DailyCloses]:
    """Adjusted daily closes of each symbol with bars in [start, end], by symbol.

    Completed days only (``end`` is clipped to :func:`last_completed_day`); see the module for
    the conventions, the cache and the errors (:class:`marketdata.errors.BrokerError`).
    """
    return market_history().daily_closes(symbols, start, end)
