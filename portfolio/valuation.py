"""The one function that values an account: REST summary and real-time push both call it.

Inputs are whatever the caller has — the broker's positions and trade account on a cold REST
call, or the book's holdings, cash and streamed prices in the real-time calculator — reduced
to :class:`AccountInputs` by :mod:`portfolio.pricing`; :mod:`portfolio.presenters` gives the
result its wire form. The arithmetic is ``Decimal`` throughout:

* market value = qty × price × multiplier (100 for an option contract; qty is negative short);
* total value (equity) = cash + long market value + short market value (short is negative);
* today's return = total value − last_equity (Alpaca's equity at the previous close), and its
  percentage of last_equity (none when last_equity is zero);
* a holding's day change = market value − its day basis, and its percentage of the basis:
  the basis is what Alpaca measures the day from (:mod:`marketdata.types`, "Day basis") —
  qty × previous close × multiplier for shares held at the close, the entry cost for shares
  bought today (a position opened today changes from its entry price, as Alpaca's
  ``unrealized_intraday_pl`` does), both parts for a holding added to today. A holding
  without a known basis is measured from its previous close (none without one either); the
  percentage is the price's move against the basis per share, so a short's is the price's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from . import money

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class HoldingInput:
    """A position as the valuation needs it, priced by the caller."""

    symbol: str
    qty: Decimal
    price: Decimal
    avg_entry_price: Decimal
    lastday_price: Decimal | None = None
    #: What the day change is measured from (see the module docstring); None: previous close.
    day_basis: Decimal | None = None
    multiplier: int = 1
    price_source: str = "position"  # see portfolio/pricing.py: how fresh the price is
    price_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountInputs:
    account_id: str
    cash: Decimal
    last_equity: Decimal
    holdings: tuple[HoldingInput, ...]


@dataclass(frozen=True, slots=True)
class HoldingValue:
    symbol: str
    qty: Decimal
    price: Decimal
    market_value: Decimal
    cost_basis: Decimal
    unrealized_pl: Decimal
    unrealized_pl_percent: Decimal | None
    day_change: Decimal | None
    day_change_percent: Decimal | None
    weight_percent: Decimal | None
    price_source: str
    price_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccountValuation:
    account_id: str
    total_value: Decimal
    cash: Decimal
    positions_value: Decimal
    long_value: Decimal
    short_value: Decimal
    last_equity: Decimal
    today_return: Decimal
    today_return_percent: Decimal | None
    holdings: tuple[HoldingValue, ...]
    as_of: datetime
    oldest_price_at: datetime | None


def value_account(inputs: AccountInputs, as_of: datetime) -> AccountValuation:
    """Value an account from its inputs; see the module docstring for every formula."""
    long = short = ZERO
    priced: list[tuple[HoldingInput, Decimal, Decimal]] = []
    for holding in inputs.holdings:
        market_value = holding.qty * holding.price * holding.multiplier
        cost_basis = holding.qty * holding.avg_entry_price * holding.multiplier
        if market_value >= 0:
            long += market_value
        else:
            short += market_value
        priced.append((holding, market_value, cost_basis))
    total = inputs.cash + long + short
    values = []
    for holding, market_value, cost_basis in priced:
        unrealized = market_value - cost_basis
        basis = holding.day_basis
        if basis is None and holding.lastday_price is not None:
            basis = holding.qty * holding.lastday_price * holding.multiplier
        day_change = None if basis is None else market_value - basis
        day_change_percent = None if basis is None else money.ratio_percent(day_change, basis)
        values.append(
            HoldingValue(
                symbol=holding.symbol,
                qty=holding.qty,
                price=holding.price,
                market_value=market_value,
                cost_basis=cost_basis,
                unrealized_pl=unrealized,
                unrealized_pl_percent=money.ratio_percent(unrealized, abs(cost_basis)),
                day_change=day_change,
                day_change_percent=day_change_percent,
                weight_percent=money.ratio_percent(market_value, total) if total > 0 else None,
                price_source=holding.price_source,
                price_at=holding.price_at,
            )
        )
    stamps = [h.price_at for h in inputs.holdings if h.price_at is not None]
    return AccountValuation(
        account_id=inputs.account_id,
        total_value=total,
        cash=inputs.cash,
        positions_value=long + short,
        long_value=long,
        short_value=short,
        last_equity=inputs.last_equity,
        today_return=total - inputs.last_equity,
        today_return_percent=money.ratio_percent(total - inputs.last_equity, inputs.last_equity),
        holdings=tuple(values),
        as_of=as_of,
        oldest_price_at=min(stamps) if stamps else None,
    )
