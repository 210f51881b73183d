"""The Redis price cache: the latest trade and quote of every tracked symbol, and its rule.

Contract (readers in any process may rely on it; values are encoded as :mod:`marketdata.store`
says: decimal strings, fixed-width UTC ISO moments):

``clera:price:<symbol>`` — a hash per symbol (crypto pairs with their slash, ``BTC/USD``):

====================  ===============================================================
``trade_price``       last trade's price               } written together by the quote
``trade_size``        last trade's size                } consumer (marketdata/quotes.py)
``trade_at``          last trade's exchange timestamp  }
``bid`` ``bid_size``  last quote's bid and its size    } written together by the quote
``ask`` ``ask_size``  last quote's ask and its size    } consumer
``quote_at``          last quote's exchange timestamp  }
``volume``            shares (coins) traded today as seen by the quote consumer: the sum of
                      streamed trade sizes since the first trade of ``volume_day``
``volume_day``        New York date (``YYYY-MM-DD``) that ``volume`` counts
``prev_close``        previous session's close (the positions' ``lastday_price``), set by
                      symbol collection every SYMBOL_COLLECTION_INTERVAL
====================  ===============================================================

Every write sets the key's TTL to PRICE_TTL, so a symbol nobody streams or collects any more
disappears on its own; a missing field means "never seen". Fields of one kind are written in one
HSET, so a reader never sees a bid from one quote with the ask of another.

``clera:changes`` — a Redis stream, the calculator's input (approximately the newest
100,000 entries are kept). Each entry carries ``symbols`` (comma-separated symbols whose prices
changed; one entry per quote-consumer flush, about every QUOTE_FLUSH_SECONDS) and/or
``accounts`` (comma-separated account ids whose cash, holdings or last_equity changed — fills,
transfers, collections). Entries only say *what* changed; read the current values from the
price cache and the book.

Which of these prices values a holding is :func:`portfolio.pricing.valuation_price`'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import redis
import redis.asyncio
from django.conf import settings

from . import moments
from .store import async_redis_client, parse_decimal, redis_client

PRICE_PREFIX = "clera:price:"
CHANGES_STREAM = "clera:changes"
#: Approximate length the changes stream is trimmed to (``XADD MAXLEN ~``).
CHANGES_MAXLEN = 100_000
#: Crypto quote currencies, longest first, for turning ``BTCUSD`` into ``BTC/USD``.
_CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")
_TWO = Decimal(2)

# One batch in one command (redis-py spends far more packing many small commands than Redis
# spends running them, and the writer's Python more building rows than Lua taking them apart).
# KEYS: clera:changes, then the price hashes. ARGV: TTL, JSON rows aligned with the hashes —
# [quote fields, trade fields (objects, either may be empty), volume day, size to add or ""]
# —, the stream's MAXLEN and the comma-separated symbols. A new New York day restarts the
# volume.
_WRITE_BATCH = """
local rows = cjson.decode(ARGV[2])
for i = 2, #KEYS do
  local row, fields = rows[i - 1], {}
  for kind = 1, 2 do
    for field, value in pairs(row[kind]) do
      fields[#fields + 1] = field
      fields[#fields + 1] = value
    end
  end
  redis.call('HSET', KEYS[i], unpack(fields))
  if row[4] ~= '' then
    if redis.call('HGET', KEYS[i], 'volume_day') == row[3] then
      redis.call('HINCRBYFLOAT', KEYS[i], 'volume', row[4])
    else
      redis.call('HSET', KEYS[i], 'volume_day', row[3], 'volume', row[4])
    end
  end
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'symbols', ARGV[4])
return #KEYS - 1
"""


def price_key(symbol: str) -> str:
    return PRICE_PREFIX + symbol


def canonical_symbol(symbol: str, asset_class: str) -> str:
    """The symbol as the market-data streams name it: crypto pairs always carry their slash.

    Alpaca's positions name a pair ``BTCUSD`` while its crypto stream says ``BTC/USD``.
    """
    if asset_class != "crypto" or "/" in symbol:
        return symbol
    for quote in _CRYPTO_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}/{quote}"
    return symbol


@dataclass(frozen=True, slots=True)
class CachedPrice:
    """One symbol's cached market data; any part may be missing (None)."""

    symbol: str
    trade_price: Decimal | None = None
    trade_size: Decimal | None = None
    trade_at: datetime | None = None
    bid: Decimal | None = None
    bid_size: Decimal | None = None
    ask: Decimal | None = None
    ask_size: Decimal | None = None
    quote_at: datetime | None = None
    prev_close: Decimal | None = None
    volume: Decimal | None = None
    volume_day: str | None = None

    @property
    def mid(self) -> Decimal | None:
        """The quote's midpoint; None unless both sides are positive."""
        if self.bid is None or self.ask is None or self.bid <= 0 or self.ask <= 0:
            return None
        return (self.bid + self.ask) / _TWO


def number_text(value: float | Decimal) -> str:
    """A streamed number as a plain decimal string: the float's shortest repr, no exponent."""
    if isinstance(value, float):
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    return format(value, "f")  # a Decimal's "f" form never has an exponent


def quote_fields(
    bid: float | Decimal,
    bid_size: float,
    ask: float | Decimal,
    ask_size: float,
    at: datetime | str,
) -> dict[str, str]:
    """The hash fields one quote sets; ``at`` a moment or its :func:`moments.stored` text."""
    return {
        "bid": number_text(bid),
        "bid_size": number_text(bid_size),
        "ask": number_text(ask),
        "ask_size": number_text(ask_size),
        "quote_at": at if isinstance(at, str) else moments.stored(at),
    }


def trade_fields(
    price: float | Decimal, size: float | Decimal, at: datetime | str
) -> dict[str, str]:
    """The hash fields one trade sets; ``at`` as for :func:`quote_fields`."""
    return {
        "trade_price": number_text(price),
        "trade_size": number_text(size),
        "trade_at": at if isinstance(at, str) else moments.stored(at),
    }


def add_changes(
    pipe: redis.client.Pipeline | redis.Redis,
    symbols: Iterable[str] = (),
    accounts: Iterable[str] = (),
) -> None:
    """Queue one ``clera:changes`` entry naming what changed (nothing when both are empty)."""
    entry = {}
    symbols = ",".join(symbols)
    accounts = ",".join(accounts)
    if symbols:
        entry["symbols"] = symbols
    if accounts:
        entry["accounts"] = accounts
    if entry:
        pipe.xadd(CHANGES_STREAM, entry, maxlen=CHANGES_MAXLEN, approximate=True)


def _parse(symbol: str, raw: Mapping[bytes, bytes]) -> CachedPrice | None:
    if not raw:
        return None
    day = raw.get(b"volume_day")
    return CachedPrice(
        symbol=symbol,
        trade_price=parse_decimal(raw.get(b"trade_price")),
        trade_size=parse_decimal(raw.get(b"trade_size")),
        trade_at=moments.parse_stored(raw.get(b"trade_at")),
        bid=parse_decimal(raw.get(b"bid")),
        bid_size=parse_decimal(raw.get(b"bid_size")),
        ask=parse_decimal(raw.get(b"ask")),
        ask_size=parse_decimal(raw.get(b"ask_size")),
        quote_at=moments.parse_stored(raw.get(b"quote_at")),
        prev_close=parse_decimal(raw.get(b"prev_close")),
        volume=parse_decimal(raw.get(b"volume")),
        volume_day=day.decode() if day else None,
    )


def _queue_reads(pipe: Any, symbols: Sequence[str]) -> None:
    for symbol in symbols:
        pipe.hgetall(price_key(symbol))


def _parse_reads(symbols: Sequence[str], results: Sequence[Any]) -> dict[str, CachedPrice]:
    """Only symbols with something cached appear in the answer."""
    prices = {}
    for symbol, raw in zip(symbols, results, strict=True):
        cached = _parse(symbol, raw)
        if cached is not None:
            prices[symbol] = cached
    return prices


class PriceCache:
    """Reads and writes of the price cache from sync code (one pipelined round trip each)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self._client = client or redis_client()
        self._write = self._client.register_script(_WRITE_BATCH)

    def get(self, symbols: Iterable[str]) -> dict[str, CachedPrice]:
        """Cached prices by symbol; symbols with nothing cached are left out."""
        symbols = list(symbols)
        pipe = self._client.pipeline(transaction=False)
        _queue_reads(pipe, symbols)
        return _parse_reads(symbols, pipe.execute())

    def write_batch(
        self,
        quotes: Mapping[str, dict[str, str]],
        trades: Mapping[str, dict[str, str]],
        volumes: Mapping[str, tuple[str, Decimal]],
    ) -> int:
        """Write one batch (fields from :func:`quote_fields` / :func:`trade_fields`, and each
        symbol's (New York day, traded size) to add) with its ``clera:changes`` entry, in one
        atomic command. Returns the number of symbols written."""
        changed = sorted(quotes.keys() | trades.keys())
        if not changed:
            return 0
        none: dict[str, str] = {}
        rows = []
        for symbol in changed:
            volume = volumes.get(symbol)
            rows.append(
                [
                    quotes.get(symbol, none),
                    trades.get(symbol, none),
                    *((volume[0], number_text(volume[1])) if volume else ("", "")),
                ]
            )
        self._write(
            keys=[CHANGES_STREAM, *map(price_key, changed)],
            args=[
                settings.PRICE_TTL,
                orjson.dumps(rows),
                CHANGES_MAXLEN,
                ",".join(changed),
            ],
        )
        return len(changed)

    def set_prev_close(self, closes: Mapping[str, Decimal]) -> None:
        """Record each symbol's previous close (symbol collection's ``lastday_price``)."""
        if not closes:
            return
        ttl = settings.PRICE_TTL
        pipe = self._client.pipeline(transaction=False)
        for symbol, close in closes.items():
            pipe.hset(price_key(symbol), "prev_close", number_text(close))
            pipe.expire(price_key(symbol), ttl)
        pipe.execute()


class AsyncPriceCache:
    """:meth:`PriceCache.get` for async code (the calculator): same keys, same parsing."""

    def __init__(self, client: redis.asyncio.Redis | None = None) -> None:
        self._client = client or async_redis_client()

    async def get(self, symbols: Iterable[str]) -> dict[str, CachedPrice]:
        symbols = list(symbols)
        pipe = self._client.pipeline(transaction=False)
        _queue_reads(pipe, symbols)
        return _parse_reads(symbols, await pipe.execute())
