"""What /ws/stream says about symbols: which ones it knows, and seed 003's ``price_update``.

**Known symbols.** A symbol may be subscribed when it is *tracked* (some account in the book
holds it, so the quote consumer streams it: ``clera:symbols``) or when it is in the
classification table's universe (``portfolio/data/classification.csv`` plus CLASSIFICATION_CSV:
the S&P 500, the widely held ETFs and the crypto pairs). Anything else is refused with an
``unknown_symbols`` error naming it. A known symbol that nobody holds is accepted, but it has a
price only if the cache still has one; the subscribe answer lists such symbols under
``not_streaming`` so a client knows to poll REST for them. Symbols are matched
case-insensitively; a crypto pair may come with or without its slash (``BTCUSD`` is
``BTC/USD``, as the stream names it).

**price_update.** Amounts are decimal strings per :mod:`portfolio.money` (prices as quoted,
sizes and volume exact, ``change_percent`` in percent units to two places). ``price`` is
:func:`portfolio.pricing.streamed_price` — the last trade if fresh, else a fresh quote's
midpoint — the very price the portfolio values a holding at; when neither is fresh it is the
last one seen and ``price_source`` says ``"last"``. ``change`` and ``change_percent`` are
against the previous close; ``timestamp`` is when that price was set (exchange time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marketdata import book
from marketdata.price_cache import CachedPrice, canonical_symbol
from portfolio import money
from portfolio.classification import TABLE_CATEGORIES, classify
from portfolio.pricing import streamed_price

from .protocol import timestamp
from .redis_loop import loop_client

_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,31}")


def normalize(symbol: str) -> str | None:
    """The symbol as the stream names it, or None when it cannot be a symbol at all."""
    text = symbol.strip().upper()
    if not _SYMBOL.fullmatch(text):
        return None
    if "/" not in text and classify(text).category == "crypto":
        return canonical_symbol(text, "crypto")
    return text


@dataclass(frozen=True, slots=True)
class Resolved:
    """A subscription request sorted out: ``known`` symbols as the stream names them (in the
    order asked), ``unknown`` ones as they were sent, and the known ones nobody holds."""

    known: tuple[str, ...]
    unknown: tuple[str, ...]
    not_streaming: tuple[str, ...]


def in_universe(symbol: str) -> bool:
    return classify(symbol).category in TABLE_CATEGORIES


async def resolve(requested: Iterable[str]) -> Resolved:
    """Apply the known-symbol rule (module docstring) to a subscription request."""
    named = {raw: normalize(raw) for raw in requested}
    candidates = list(dict.fromkeys(s for s in named.values() if s is not None))
    streamed = await book.tracked_among(loop_client(), candidates)
    known = tuple(s for s in candidates if s in streamed or in_universe(s))
    return Resolved(
        known=known,
        unknown=tuple(raw for raw, s in named.items() if s is None or s not in known),
        not_streaming=tuple(s for s in known if s not in streamed),
    )


def price_update(cached: CachedPrice, now: datetime) -> dict[str, Any] | None:
    """Seed 003's ``price_update`` for a cached symbol; None when it has no price at all."""
    priced = streamed_price(cached, now)
    if priced is None:
        return None
    price, source, at = priced
    close = cached.prev_close
    change = None if close is None else price - close
    return {
        "type": "price_update",
        "symbol": cached.symbol,
        "price": money.price(price),
        "price_source": source,
        "bid": _price(cached.bid),
        "ask": _price(cached.ask),
        "bid_size": _quantity(cached.bid_size),
        "ask_size": _quantity(cached.ask_size),
        "volume": _quantity(cached.volume),
        "prev_close": _price(close),
        "change": _price(change),
        "change_percent": None if change is None else money.percent(
            money.ratio_percent(change, close)
        ),
        "timestamp": None if at is None else timestamp(at),
    }  # fmt: skip


def _price(value: Any) -> str | None:
    return None if value is None else money.price(value)


def _quantity(value: Any) -> str | None:
    return None if value is None else money.quantity(value)
