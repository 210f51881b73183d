"""The sandbox's exchange: orders are checked, acknowledged, filled over time or expire.

Every order placed after the world is built goes through here, and every change is published
on the Broker ``trades`` event stream (:mod:`.events`):

* Orders are checked the way Alpaca rejects them (:class:`.errors.ApiError`), accepted at once,
  acknowledged as ``new`` a moment later, then filled through :meth:`World.apply_fill` at the
  market's last price: market orders 0.5–3 s after acknowledgement (larger ones sometimes in
  two parts), limit orders once the last price crosses the limit. A market order for a
  closed market (``--calendar nyse``) is accepted and queued until the next open, as Alpaca
  queues it; day orders still open at their session's close expire. Under the default
  always-open calendar nothing expires.
* The exchange's loop also steps ACH funding (:mod:`.funding`) and lets the simulated
  customers trade (:mod:`.customers`); :meth:`Exchange.stats` counts all three.

Orders are ``market`` or ``limit``. Day and gtc orders rest; an ioc or fok limit order fills
at once if it is marketable when acknowledged and is canceled otherwise (market orders always
fill completely); opg and cls count as day orders (the sandbox holds no auctions). Buying
power is the trade account's — cash × multiplier, or cash alone for crypto and options, which
are not marginable — less what open buy orders reserve; a market buy is costed at the last
price plus a 2% collar. Short sales need a margin account and a shortable asset; a sell may
not take a long position below zero.

All of it runs on one background loop ticking every ``TICK_SECONDS``: due actions sit in a
heap (:mod:`.scheduler`), resting limit orders in per-symbol heaps keyed by integer price
units, so a tick costs a few heap peeks however many accounts the world holds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import TYPE_CHECKING

from .accounts import ZERO, Account, Order
from .calendar import AlwaysOpen
from .customers import Customers
from .errors import forbidden, invalid, not_cancelable
from .events import Execution, trade_update
from .funding import Funding
from .scheduler import Scheduler

if TYPE_CHECKING:
    from .assets import Asset
    from .events import EventLog
    from .server import Sandbox

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1
ACK_DELAY = (0.02, 0.1)  # accepted → new
MARKET_FILL_DELAY = (0.5, 3.0)
SECOND_FILL_DELAY = (0.3, 1.5)
#: A market order worth at least this much fills in two parts with PARTIAL_FILL_CHANCE.
PARTIAL_FILL_NOTIONAL = Decimal(1000)
PARTIAL_FILL_CHANCE = 0.35
MARKET_BUY_COLLAR = Decimal("1.02")
ORDER_TYPES = ("market", "limit")
TIME_IN_FORCE = ("day", "gtc", "ioc", "fok", "opg", "cls")
IMMEDIATE = frozenset({"ioc", "fok"})
#: Orders that live for one session (``--calendar nyse`` expires them at its close).
SESSION_ONLY = frozenset({"day", "opg", "cls"})
#: What :meth:`Exchange.stats` counts.
COUNTS = (
    "orders_submitted",
    "orders_filled",
    "orders_canceled",
    "orders_expired",
    "fills",
    "customer_orders",
    "transfers_submitted",
    "transfers_completed",
    "transfers_rejected",
)
FILL_QUANTUM = Decimal("1E-9")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


class Exchange:
    """Order matching for one world, and the loop that also runs its funding and customers."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.market = sandbox.market
        # One seeded stream for every delay, partial fill and customer choice.
        self._rng = random.Random(f"{sandbox.config.seed}:exchange")
        self._seq = itertools.count()
        self.scheduler = Scheduler(self._rng)
        self.funding = Funding(self)
        self._open: dict[str, tuple[Account, Order]] = {}
        # Resting limit orders per symbol: (−units, seq, id) for buys, (units, seq, id) for sells.
        self._bids: dict[str, list[tuple[int, int, str]]] = {}
        self._offers: dict[str, list[tuple[int, int, str]]] = {}
        self._expiries: list[tuple[datetime, int, str]] = []
        self.customers = Customers(self, self._rng, sandbox.config.orders_per_minute)
        self._counts: Counter[str] = Counter()
        self._busy_seconds = 0.0
        for account, order in self.world.orders.values():
            if order.is_open:
                self._work(account, order)

    @property
    def events(self) -> EventLog:
        # Looked up each time: tests swap in an EventLog with fast heartbeats before serving.
        return self.sandbox.events

    # -- orders --------------------------------------------------------------------------
    def submit_order(
        self,
        account: Account,
        asset: Asset,
        side: str,
        qty: Decimal,
        order_type: str,
        time_in_force: str,
        limit_price: Decimal | None,
        client_order_id: str | None,
    ) -> Order:
        """Check and accept an order; it is acknowledged and filled later by :meth:`run`."""
        if side not in ("buy", "sell"):
            raise invalid(f"invalid side {side!r}")
        if order_type not in ORDER_TYPES:
            raise invalid(f"order type {order_type!r} is not supported by the sandbox")
        if time_in_force not in TIME_IN_FORCE:
            raise invalid(f"invalid time_in_force {time_in_force!r}")
        if order_type == "limit" and (limit_price is None or limit_price <= 0):
            raise invalid("limit orders need a positive limit_price")
        if qty <= 0:
            raise invalid("qty must be > 0")
        if qty != qty.to_integral_value() and not asset.fractionable:
            raise invalid(f"asset {asset.symbol} is not fractionable")
        self._check_cover(account, asset, side, qty, limit_price)
        now = datetime.now(UTC)
        order = self.world.new_order(
            account,
            asset,
            side,
            qty,
            now,
            order_type,
            limit_price,
            time_in_force,
            "accepted",
            client_order_id,
        )
        self._open[str(order.id)] = (account, order)
        self._counts["orders_submitted"] += 1
        self.scheduler.after(now, ACK_DELAY, partial(self._acknowledge, account, order))
        return order

    def cancel_order(self, account: Account, order: Order) -> None:
        """Cancel what is left of an open order."""
        if not order.is_open:
            raise not_cancelable("order")
        self._cancel(order, datetime.now(UTC))

    def _cancel(self, order: Order, now: datetime) -> None:
        order.status = "canceled"
        order.canceled_at = order.updated_at = now
        self._open.pop(str(order.id), None)
        self._counts["orders_canceled"] += 1
        self._publish_trade("canceled", order, now)

    def buying_power(self, account: Account, marginable: bool = True) -> Decimal:
        """What a new order may spend: the trade account's buying power less open buys' reserve.

        Crypto and options are not marginable: for them the base is cash, not cash × multiplier.
        """
        power = account.cash * (account.multiplier if marginable else 1)
        for order in account.orders:
            if order.is_open and order.side == "buy":
                power -= self._cost(order.asset, order.qty - order.filled_qty, order.limit_price)
        return max(power, ZERO)

    def market_buy_price(self, symbol: str) -> Decimal:
        """What a market buy is costed at: the last price plus the collar."""
        return self.market.last_price(symbol) * MARKET_BUY_COLLAR

    def _cost(self, asset: Asset, qty: Decimal, limit_price: Decimal | None) -> Decimal:
        price = limit_price or self.market_buy_price(asset.symbol)
        return qty * price * asset.multiplier

    def pending_qty(self, account: Account, symbol: str, side: str) -> Decimal:
        """What the account's open orders on ``side`` still hold of ``symbol``."""
        return sum(
            (
                o.qty - o.filled_qty
                for o in account.orders
                if o.is_open and o.side == side and o.asset.symbol == symbol
            ),
            ZERO,
        )

    def _check_cover(
        self, account: Account, asset: Asset, side: str, qty: Decimal, limit_price: Decimal | None
    ) -> None:
        """A buy needs buying power; a sell, the quantity held or a short the account may take."""
        marginable = asset.asset_class == "us_equity"
        if side == "buy":
            if self._cost(asset, qty, limit_price) > self.buying_power(account, marginable):
                raise forbidden("insufficient buying power")
            return
        holding = account.holdings.get(asset.symbol)
        held = holding.qty if holding else ZERO
        if held > 0:
            available = held - self.pending_qty(account, asset.symbol, "sell")
            if qty > available:
                raise forbidden(
                    f"insufficient qty available for order (requested: {_plain(qty)}, "
                    f"available: {_plain(max(available, ZERO))})"
                )
        elif not (asset.shortable and account.multiplier > 1):
            raise forbidden(
                f"insufficient qty available for order (requested: {_plain(qty)}, available: 0)"
            )
        elif self._cost(asset, qty, limit_price) > self.buying_power(account, marginable):
            raise forbidden("insufficient buying power")

    def _acknowledge(self, account: Account, order: Order, now: datetime) -> None:
        if order.status != "accepted":
            return  # canceled before it was acknowledged
        order.status = "new"
        order.updated_at = now
        self._publish_trade("new", order, now)
        if order.order_type == "limit" and order.time_in_force in IMMEDIATE:
            if self._marketable(order, now):
                self._fill(account, order, order.qty, now)
            else:
                self._cancel(order, now)
            return
        self._work(account, order)

    def _marketable(self, order: Order, now: datetime) -> bool:
        symbol = order.asset.symbol
        last = self.market.last_price(symbol)
        crossed = last <= order.limit_price if order.side == "buy" else last >= order.limit_price
        return crossed and self.market.is_open(symbol, now)

    def _work(self, account: Account, order: Order) -> None:
        """Put an acknowledged open order where the loop will fill or expire it."""
        order_id = str(order.id)
        self._open[order_id] = (account, order)
        asset = order.asset
        if order.order_type == "market":
            self.scheduler.after(
                order.updated_at, MARKET_FILL_DELAY, partial(self._fill_market, order_id)
            )
        else:
            units = order.limit_price.scaleb(asset.scale)
            if order.side == "buy":
                entry = (-math.floor(units), next(self._seq), order_id)
                heapq.heappush(self._bids.setdefault(asset.symbol, []), entry)
            else:
                entry = (math.ceil(units), next(self._seq), order_id)
                heapq.heappush(self._offers.setdefault(asset.symbol, []), entry)
        calendar = self.market.calendar(asset.symbol)
        if order.time_in_force in SESSION_ONLY and not isinstance(calendar, AlwaysOpen):
            expires = calendar.next_close(order.submitted_at)
            heapq.heappush(self._expiries, (expires, next(self._seq), order_id))

    def _fill_market(self, order_id: str, now: datetime) -> None:
        entry = self._open.get(order_id)
        if entry is None:
            return
        account, order = entry
        symbol = order.asset.symbol
        if not self.market.is_open(symbol, now):
            opens = self.market.calendar(symbol).next_open(now)
            self.scheduler.after(opens, MARKET_FILL_DELAY, partial(self._fill_market, order_id))
            return
        remaining = order.qty - order.filled_qty
        part = self._first_part(order, remaining)
        if part:
            self._fill(account, order, part, now)
            self.scheduler.after(now, SECOND_FILL_DELAY, partial(self._fill_market, order_id))
        else:
            self._fill(account, order, remaining, now)

    def _first_part(self, order: Order, remaining: Decimal) -> Decimal | None:
        """Sometimes a larger, untouched order fills in two: the first part's quantity."""
        price = self.market.last_price(order.asset.symbol)
        if (
            order.filled_qty
            or remaining * price * order.asset.multiplier < PARTIAL_FILL_NOTIONAL
            or self._rng.random() >= PARTIAL_FILL_CHANCE
        ):
            return None
        quantum = Decimal(1) if remaining == remaining.to_integral_value() else FILL_QUANTUM
        part = (remaining * Decimal(str(self._rng.uniform(0.3, 0.7)))).quantize(quantum, ROUND_DOWN)
        return part if ZERO < part < remaining else None

    def _fill(self, account: Account, order: Order, qty: Decimal, now: datetime) -> None:
        price = self.market.last_price(order.asset.symbol)
        self.world.apply_fill(account, order, qty, price, now)
        self._counts["fills"] += 1
        if order.status == "filled":
            self._open.pop(str(order.id), None)
            self._counts["orders_filled"] += 1
        holding = account.holdings.get(order.asset.symbol)
        event = "fill" if order.status == "filled" else "partial_fill"
        fill = Execution(price, qty, holding.qty if holding else ZERO)
        self._publish_trade(event, order, now, fill)

    def _publish_trade(
        self, event: str, order: Order, now: datetime, fill: Execution | None = None
    ) -> None:
        execution_id = str(self.world.new_id())
        self.events.publish("trades", trade_update(event, order, now, execution_id, fill))

    def _cross_limits(self, now: datetime) -> None:
        """Fill resting limit orders the last price has reached (at that better-or-equal price)."""
        for book, sign in ((self._bids, -1), (self._offers, 1)):
            for symbol in list(book):
                heap = book[symbol]
                last = self.market.live[symbol].last
                while heap:
                    key, _, order_id = heap[0]
                    entry = self._open.get(order_id)
                    if entry is None:
                        heapq.heappop(heap)  # canceled, expired or filled meanwhile
                        continue
                    if sign * last < key or not self.market.is_open(symbol, now):
                        break
                    heapq.heappop(heap)
                    account, order = entry
                    self._fill(account, order, order.qty - order.filled_qty, now)
                if not heap:
                    del book[symbol]

    def _expire(self, now: datetime) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, _, order_id = heapq.heappop(self._expiries)
            entry = self._open.pop(order_id, None)
            if entry is None:
                continue
            order = entry[1]
            order.status = "expired"
            order.expired_at = order.updated_at = now
            self._counts["orders_expired"] += 1
            self._publish_trade("expired", order, now)

    # -- the loop ------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Do everything due by ``now``: acknowledge, fill, expire, settle, trade for customers.

        :meth:`run` calls it with the wall clock; a test may call it with a later moment to see
        what a calendar's open or close does.
        """
        self.scheduler.run_due(now)
        self._cross_limits(now)
        self._expire(now)
        self.customers.trade(now)

    async def run(self) -> None:
        """Tick for the life of the process; a failing tick is logged and the loop goes on."""
        while True:
            started = time.perf_counter()
            try:
                self.tick(datetime.now(UTC))
            except Exception:
                logger.exception("exchange tick failed")
            self._busy_seconds += time.perf_counter() - started
            await asyncio.sleep(TICK_SECONDS)

    def stats(self) -> dict:
        return (
            dict.fromkeys(COUNTS, 0)
            | self._counts
            | self.funding.counts
            | self.customers.counts
            | {
                "open_orders": len(self._open),
                "scheduled": len(self.scheduler),
                "busy_seconds": round(self._busy_seconds, 4),
            }
        )
