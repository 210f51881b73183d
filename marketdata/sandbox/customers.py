"""Simulated customers: a steady trickle of small market orders so the sandbox never sits still.

Across the world, ``config.orders_per_minute`` orders are spread evenly over the exchange's
ticks. Each grows or trims a position an account already holds — never closing or flipping
it, never buying anything new — so every account keeps its shape forever. Orders go through
:meth:`.exchange.Exchange.submit_order` like anyone's; one the exchange refuses is dropped.
Accounts with nothing to trade (``empty``, ``cash_only``) are left alone.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:
    from .exchange import Exchange

logger = logging.getLogger(__name__)

#: Shapes simulated customers never trade for: they hold nothing to trade in.
PASSIVE_SHAPES = frozenset({"empty", "cash_only"})
CRYPTO_QUANTUM = Decimal("0.0001")
FRACTIONAL_QUANTUM = Decimal("0.001")


class Customers:
    """The world's simulated customers, trading through one exchange."""

    def __init__(self, exchange: Exchange, rng: random.Random, orders_per_minute: float) -> None:
        self.exchange = exchange
        self.market = exchange.market
        self.orders_per_minute = orders_per_minute
        #: customer_orders, for the exchange's stats.
        self.counts: Counter[str] = Counter()
        self._rng = rng
        self._traders = [
            a
            for a in exchange.world.accounts.values()
            if a.shape not in PASSIVE_SHAPES and a.holdings
        ]
        self._orders_due = 0.0
        self._last_tick: datetime | None = None

    def trade(self, now: datetime) -> None:
        """Submit the orders due since the last tick, spread evenly over the ticks."""
        if self._last_tick is not None:
            elapsed = (now - self._last_tick).total_seconds()
            rate = self.orders_per_minute / 60
            self._orders_due = min(self._orders_due + rate * elapsed, rate + 1)
        while self._orders_due >= 1:
            self._orders_due -= 1
            self._order(now)
        self._last_tick = now

    def _order(self, now: datetime) -> None:
        """A small market order that grows or trims (never closes) a position the account holds."""
        if not self._traders:
            return
        account = self._rng.choice(self._traders)
        holdings = [
            h
            for h in account.holdings.values()
            if h.asset.multiplier == 1 and self.market.is_open(h.asset.symbol, now)
        ]
        if not holdings:
            return
        holding = self._rng.choice(holdings)
        asset = holding.asset
        if asset.is_crypto:
            quantum = CRYPTO_QUANTUM
        elif account.shape == "fractional" and asset.fractionable:
            quantum = FRACTIONAL_QUANTUM
        else:
            quantum = Decimal(1)
        grows = self._rng.random() < 0.5
        opening_side = "buy" if holding.qty > 0 else "sell"
        closing_side = "sell" if holding.qty > 0 else "buy"
        share = Decimal(str(self._rng.uniform(0.02, 0.2)))
        exchange = self.exchange
        if grows:
            budget = exchange.buying_power(account, asset.asset_class == "us_equity") * share
            qty = (budget / exchange.market_buy_price(asset.symbol)).quantize(quantum, ROUND_DOWN)
            side = opening_side
        else:
            available = abs(holding.qty) - exchange.pending_qty(account, asset.symbol, closing_side)
            qty = (available * share).quantize(quantum, ROUND_DOWN)
            side = closing_side
            if qty >= available:
                return
        if qty <= 0:
            return
        try:
            exchange.submit_order(
                account, asset, side, qty, "market", "gtc" if asset.is_crypto else "day", None, None
            )
            self.counts["customer_orders"] += 1
        except ApiError as error:
            logger.debug("customer order for %s refused: %s", account.id, error.message)
