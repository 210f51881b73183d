"""An account's valuation kept current price by price: the real-time calculator's fast path.

:func:`portfolio.valuation.value_account` values an account from scratch in ``Decimal``; a
:class:`LiveAccount` holds the same figures as exact integers and, each time it is valued,
recomputes only the holdings whose price (or previous close) moved, then the totals and the
weights, and gives :func:`portfolio.presenters.valuation_json`'s wire form string for string
(``tests/test_live_valuation.py`` checks that over random books, price paths and day rolls).
A holding that did not change keeps the very dict it had, so a caller can tell what changed
since its last push by identity before comparing.

**Units.** Quantities are integers of 10**-9 (:data:`QTY_PLACES`: Alpaca's fractional shares
have up to nine places), prices of 10**-10 (:data:`PRICE_PLACES`: nine, and a quote's midpoint
one more), and amounts (cash, values, bases) of 10**-19 dollars (:data:`AMOUNT_PLACES`), so
qty × price is an amount, exactly. An input with more places than its unit raises ``ValueError``
when the account is built; the caller then values that account with ``value_account``.
Rounding is :mod:`portfolio.money`'s: half-even to the cent, percentages from the exact ratio.

The price rule is :func:`portfolio.pricing.valuation_price`'s, applied once per symbol and moment
(:func:`symbol_price`) and shared by every holder of the symbol; a caller may keep a
:class:`SymbolPrice` until its ``until`` (a holding valued at the very same object skips all
work).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings

from marketdata.book import CachedAccount, CachedHolding
from marketdata.moments import iso
from marketdata.price_cache import CachedPrice

from .money import (
    money_from_units,
    percent_from_units,
    price_from_units,
    quantity_from_units,
    to_units,
)
from .pricing import fresh_price

QTY_PLACES = 9
PRICE_PLACES = 10
AMOUNT_PLACES = QTY_PLACES + PRICE_PLACES


class SymbolPrice(NamedTuple):
    """What the price cache says about a symbol at one moment, in units: the streamed price
    that values it (None when neither trade nor quote is fresh: each holding then uses its
    position's price), its text, the previous close (None when not cached), the day's move
    against that close as a percentage (what every holder measured from the close shows), and
    ``until``: the last moment this stays the symbol's price (a trade or quote goes stale then;
    None: only a new write changes it). A tuple: made and compared thousands of times a pass."""

    price: int | None
    source: str
    at: datetime | None
    at_text: str | None
    prev_close: int | None
    price_text: str | None = None
    day_percent: str | None = None
    until: datetime | None = None


@functools.lru_cache(maxsize=8192)
def _price_units(value: Decimal) -> int:
    """A price in units, remembered: a symbol's previous close is the same all day."""
    return to_units(value, PRICE_PLACES)


def symbol_price(cached: CachedPrice | None, now: datetime) -> SymbolPrice:
    """The symbol's :class:`SymbolPrice` at ``now``. ValueError: a price with more places
    than :data:`PRICE_PLACES`."""
    prev_close = None
    if cached is not None and cached.prev_close is not None:
        prev_close = _price_units(cached.prev_close)
    fresh = fresh_price(cached, now)
    if fresh is None:
        return SymbolPrice(None, "position", None, None, prev_close)
    price, source, at = fresh
    units = to_units(price, PRICE_PLACES)
    moved = None if prev_close is None else percent_from_units(units - prev_close, prev_close)
    return SymbolPrice(
        price=units,
        source=source,
        at=at,
        at_text=iso(at),
        prev_close=prev_close,
        price_text=price_from_units(units, PRICE_PLACES),
        day_percent=moved,
        until=at + timedelta(seconds=settings.TRADE_FRESHNESS_SECONDS),
    )


_NO_PRICE = SymbolPrice(None, "position", None, None, None)


def _amount(value: Any) -> int | None:
    return None if value is None else to_units(value, AMOUNT_PLACES)


class _Holding:
    """One holding's exact state and its wire dict."""

    __slots__ = (
        "symbol", "qty", "multiplier", "position_price", "lastday", "day_basis", "cost",
        "qty_text", "cost_text", "position_text", "seen", "market_value", "at", "fields",
        "weight", "wire",
    )  # fmt: skip

    def __init__(self, holding: CachedHolding) -> None:
        self.symbol = holding.symbol
        self.qty = to_units(holding.qty, QTY_PLACES)
        self.multiplier = holding.multiplier
        self.position_price = to_units(holding.last_price, PRICE_PLACES)
        self.lastday = (
            None if holding.lastday_price is None else to_units(holding.lastday_price, PRICE_PLACES)
        )
        self.day_basis = _amount(holding.day_basis)
        self.cost = self.qty * to_units(holding.avg_entry_price, PRICE_PLACES) * self.multiplier
        self.qty_text = quantity_from_units(self.qty, QTY_PLACES)
        self.cost_text = money_from_units(self.cost, AMOUNT_PLACES)
        self.position_text = price_from_units(self.position_price, PRICE_PLACES)
        self.seen: SymbolPrice | None = None
        self.market_value = 0
        self.at: datetime | None = None
        self.fields: dict[str, Any] = {}
        self.weight: str | None = None
        self.wire: dict[str, Any] | None = None

    def reprice(self, quote: SymbolPrice) -> bool:
        """Value the holding at ``quote`` unless that is what it is valued at; True if it was."""
        if quote is self.seen:
            return False
        if quote == self.seen:
            self.seen = quote  # the same price read again: the next pass compares by identity
            return False
        self.seen = quote
        streamed = quote.price is not None
        price = quote.price if streamed else self.position_price
        market_value = self.qty * price * self.multiplier
        # The book measured the day from its own close; a newer close in the cache means the
        # day rolled since, and the day is measured from that close (portfolio.pricing).
        rolled = None not in (quote.prev_close, self.lastday) and quote.prev_close != self.lastday
        lastday = self.lastday if quote.prev_close is None else quote.prev_close
        basis = None if rolled else self.day_basis
        from_close = basis is None
        if from_close and lastday is not None:
            basis = self.qty * lastday * self.multiplier
        unrealized = market_value - self.cost
        if basis is None:
            day_change = day_percent = None
        else:
            day_change = money_from_units(market_value - basis, AMOUNT_PLACES)
            if from_close and streamed and quote.prev_close is not None and self.qty:
                day_percent = quote.day_percent  # the price's move: the same for every holder
            else:
                day_percent = percent_from_units(market_value - basis, basis)
        self.market_value = market_value
        self.at = quote.at
        self.fields = {
            "symbol": self.symbol,
            "qty": self.qty_text,
            "price": quote.price_text if streamed else self.position_text,
            "market_value": money_from_units(market_value, AMOUNT_PLACES),
            "cost_basis": self.cost_text,
            "unrealized_pl": money_from_units(unrealized, AMOUNT_PLACES),
            "unrealized_pl_percent": percent_from_units(unrealized, abs(self.cost)),
            "day_change": day_change,
            "day_change_percent": day_percent,
        }
        self.wire = None
        return True

    def weighed(self, weight: str | None) -> dict[str, Any]:
        """The wire dict with this weight: the same object as before unless something moved."""
        if self.wire is None or weight != self.weight:
            self.weight = weight
            self.wire = {
                **self.fields,
                "weight_percent": weight,
                "price_source": self.seen.source if self.seen else "position",
                "price_at": self.seen.at_text if self.seen else None,
            }
        return self.wire


class LiveAccount:
    """A ready book entry, valued incrementally; see the module docstring."""

    __slots__ = ("account_id", "revision", "symbols", "_cash", "_last_equity", "_holdings")

    def __init__(self, entry: CachedAccount) -> None:
        if not entry.ready:
            raise ValueError(f"account {entry.account_id} has no balances yet")
        self.account_id = entry.account_id
        self.revision = entry.revision
        self.symbols = entry.symbols
        self._cash = to_units(entry.cash, AMOUNT_PLACES)
        self._last_equity = to_units(entry.last_equity, AMOUNT_PLACES)
        self._holdings = [_Holding(holding) for holding in entry.holdings]

    def value(self, quotes: Mapping[str, SymbolPrice], as_of: str) -> dict[str, Any]:
        """The account's wire form (``valuation_json``, holdings included) at ``quotes``
        (:func:`symbol_price` of every symbol it holds at one moment; a missing symbol has
        nothing cached), as of the moment ``as_of`` (``moments.iso``)."""
        long = short = 0
        oldest: datetime | None = None
        oldest_text = None
        for holding in self._holdings:
            holding.reprice(quotes.get(holding.symbol, _NO_PRICE))
            if holding.market_value >= 0:
                long += holding.market_value
            else:
                short += holding.market_value
            if holding.at is not None and (oldest is None or holding.at < oldest):
                oldest, oldest_text = holding.at, holding.seen.at_text  # type: ignore[union-attr]
        total = self._cash + long + short
        today = total - self._last_equity
        return {
            "account_id": self.account_id,
            "total_value": money_from_units(total, AMOUNT_PLACES),
            "cash": money_from_units(self._cash, AMOUNT_PLACES),
            "positions_value": money_from_units(long + short, AMOUNT_PLACES),
            "long_value": money_from_units(long, AMOUNT_PLACES),
            "short_value": money_from_units(short, AMOUNT_PLACES),
            "last_equity": money_from_units(self._last_equity, AMOUNT_PLACES),
            "today_return": money_from_units(today, AMOUNT_PLACES),
            "today_return_percent": percent_from_units(today, self._last_equity),
            "as_of": as_of,
            "oldest_price_at": oldest_text,
            "holdings": [
                h.weighed(percent_from_units(h.market_value, total) if total > 0 else None)
                for h in self._holdings
            ],
        }
