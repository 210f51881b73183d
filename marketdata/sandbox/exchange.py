"""The sandbox's exchange: orders fill over time, transfers settle, customers keep trading.

Everything that changes an account after the world is built goes through here, and every
change is published on the Broker event streams (:mod:`.events`):

* Orders are checked the way Alpaca rejects them (:class:`ExchangeError`), accepted at once,
  acknowledged as ``new`` a moment later, then filled through :meth:`World.apply_fill` at the
  market's last price: market orders 0.5–3 s after acknowledgement (larger ones sometimes in
  two parts), limit orders once the last price crosses the limit. A market order for a
  closed market (``--calendar nyse``) is accepted and queued until the next open, as Alpaca
  queues it; day orders still open at their session's close expire. Under the default
  always-open calendar nothing expires.
* ACH relationships are QUEUED, then APPROVED; transfers go QUEUED → SENT_TO_CLEARING →
  COMPLETE over a couple of seconds, and only at COMPLETE does cash move
  (:meth:`World.apply_transfer`).
* Simulated customers trade at ``config.orders_per_minute`` across the world: small market
  orders in symbols an account already holds, never closing or flipping a position, never
  buying anything new, so every account keeps its shape forever.

Orders are ``market`` or ``limit``. Day and gtc orders rest; an ioc or fok limit order fills
at once if it is marketable when acknowledged and is canceled otherwise (market orders always
fill completely); opg and cls count as day orders (the sandbox holds no auctions). Buying
power is the trade account's — cash × multiplier, or cash alone for crypto and options, which
are not marginable — less what open buy orders reserve; a market buy is costed at the last
price plus a 2% collar. Short sales need a margin account and a shortable asset; a sell may
not take a long position below zero.

All of it runs on one background loop ticking every ``TICK_SECONDS``: due actions sit in a
heap, resting limit orders in per-symbol heaps keyed by integer price units, so a tick costs
a few heap peeks however many accounts the world holds.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from .calendar import AlwaysOpen
from .events import funding_update, trade_update
from .world import CENT, ZERO, Account, AchRelationship, Order, Transfer

if TYPE_CHECKING:
    from .events import EventLog
    from .market import Asset
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
RELATIONSHIP_APPROVAL_DELAY = (0.2, 0.6)
TRANSFER_STEP_DELAY = {"QUEUED": (0.3, 0.8), "SENT_TO_CLEARING": (0.5, 1.2)}
PENDING_TRANSFER = frozenset({"QUEUED", "SENT_TO_CLEARING"})
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
#: Shapes simulated customers never trade for: they hold nothing to trade in.
PASSIVE_SHAPES = frozenset({"empty", "cash_only"})
CRYPTO_QUANTUM = Decimal("0.0001")
FRACTIONAL_QUANTUM = Decimal("0.001")
FILL_QUANTUM = Decimal("1E-9")


class ExchangeError(Exception):
    """A rejection as Alpaca answers it: HTTP status, Alpaca error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> ExchangeError:
    return ExchangeError(422, 40010001, message)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass(order=True)
class _Task:
    due: datetime
    seq: int
    action: Callable[[datetime], None] = field(compare=False)


class Exchange:
    """Order matching, funding settlement and simulated customer activity for one world."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.market = sandbox.market
        self._rng = random.Random(f"{sandbox.config.seed}:exchange")
        self._seq = itertools.count()
        self._tasks: list[_Task] = []
        self._open: dict[str, tuple[Account, Order]] = {}
        # Resting limit orders per symbol: (−units, seq, id) for buys, (units, seq, id) for sells.
        self._bids: dict[str, list[tuple[int, int, str]]] = {}
        self._offers: dict[str, list[tuple[int, int, str]]] = {}
        self._expiries: list[tuple[datetime, int, str]] = []
        self._traders = [
            a for a in self.world.accounts.values() if a.shape not in PASSIVE_SHAPES and a.holdings
        ]
        self._customer_orders_due = 0.0
        self._last_tick: datetime | None = None
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
        self._check_order(account, asset, side, qty, order_type, time_in_force, limit_price)
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
        self._after(now, ACK_DELAY, partial(self._acknowledge, account, order))
        return order

    def cancel_order(self, account: Account, order: Order) -> None:
        """Cancel what is left of an open order."""
        if not order.is_open:
            raise ExchangeError(422, 42210000, "order is not cancelable")
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

    def _cost(self, asset: Asset, qty: Decimal, limit_price: Decimal | None) -> Decimal:
        price = limit_price or self.market.last_price(asset.symbol) * MARKET_BUY_COLLAR
        return qty * price * asset.multiplier

    def _pending_qty(self, account: Account, symbol: str, side: str) -> Decimal:
        return sum(
            (
                o.qty - o.filled_qty
                for o in account.orders
                if o.is_open and o.side == side and o.asset.symbol == symbol
            ),
            ZERO,
        )

    def _check_order(
        self,
        account: Account,
        asset: Asset,
        side: str,
        qty: Decimal,
        order_type: str,
        time_in_force: str,
        limit_price: Decimal | None,
    ) -> None:
        if side not in ("buy", "sell"):
            raise _invalid(f"invalid side {side!r}")
        if order_type not in ORDER_TYPES:
            raise _invalid(f"order type {order_type!r} is not supported by the sandbox")
        if time_in_force not in TIME_IN_FORCE:
            raise _invalid(f"invalid time_in_force {time_in_force!r}")
        if order_type == "limit" and (limit_price is None or limit_price <= 0):
            raise _invalid("limit orders need a positive limit_price")
        if qty <= 0:
            raise _invalid("qty must be > 0")
        if qty != qty.to_integral_value() and not asset.fractionable:
            raise _invalid(f"asset {asset.symbol} is not fractionable")
        marginable = asset.asset_class == "us_equity"
        if side == "buy":
            if self._cost(asset, qty, limit_price) > self.buying_power(account, marginable):
                raise ExchangeError(403, 40310000, "insufficient buying power")
            return
        holding = account.holdings.get(asset.symbol)
        held = holding.qty if holding else ZERO
        if held > 0:
            available = held - self._pending_qty(account, asset.symbol, "sell")
            if qty > available:
                raise ExchangeError(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {_plain(qty)}, "
                    f"available: {_plain(max(available, ZERO))})",
                )
        elif not (asset.shortable and account.multiplier > 1):
            raise ExchangeError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {_plain(qty)}, available: 0)",
            )
        elif self._cost(asset, qty, limit_price) > self.buying_power(account, marginable):
            raise ExchangeError(403, 40310000, "insufficient buying power")

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
            self._after(order.updated_at, MARKET_FILL_DELAY, partial(self._fill_market, order_id))
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
            self._after(opens, MARKET_FILL_DELAY, partial(self._fill_market, order_id))
            return
        remaining = order.qty - order.filled_qty
        part = self._first_part(order, remaining)
        if part:
            self._fill(account, order, part, now)
            self._after(now, SECOND_FILL_DELAY, partial(self._fill_market, order_id))
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
        self._publish_trade(event, order, now, price, qty, holding.qty if holding else ZERO)

    def _publish_trade(
        self,
        event: str,
        order: Order,
        now: datetime,
        price: Decimal | None = None,
        qty: Decimal | None = None,
        position_qty: Decimal | None = None,
    ) -> None:
        execution_id = str(self.world.new_id())
        self.events.publish(
            "trades", trade_update(event, order, now, execution_id, price, qty, position_qty)
        )

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

    # -- funding -------------------------------------------------------------------------
    def create_relationship(
        self,
        account: Account,
        owner_name: str,
        bank_account_type: str,
        bank_account_number: str,
        bank_routing_number: str,
        nickname: str | None,
    ) -> AchRelationship:
        """Link a bank account: QUEUED now, APPROVED a moment later."""
        if bank_account_type not in ("CHECKING", "SAVINGS"):
            raise _invalid("bank_account_type must be CHECKING or SAVINGS")
        now = datetime.now(UTC)
        relationship = AchRelationship(
            id=self.world.new_id(),
            account_id=account.id,
            owner_name=owner_name,
            bank_account_type=bank_account_type,
            bank_account_number=bank_account_number,
            bank_routing_number=bank_routing_number,
            nickname=nickname or "",
            status="QUEUED",
            created_at=now,
            updated_at=now,
        )
        account.relationships.append(relationship)
        self._publish_funding(relationship, "", now)
        self._after(now, RELATIONSHIP_APPROVAL_DELAY, partial(self._approve, relationship))
        return relationship

    def _approve(self, relationship: AchRelationship, now: datetime) -> None:
        if relationship.status == "QUEUED":
            relationship.status = "APPROVED"
            relationship.updated_at = now
            self._publish_funding(relationship, "QUEUED", now)

    def submit_transfer(
        self, account: Account, relationship_id: UUID | None, amount: Decimal, direction: str
    ) -> Transfer:
        """Start an ACH transfer over an approved relationship (the first one when None)."""
        if direction not in ("INCOMING", "OUTGOING"):
            raise _invalid("direction must be INCOMING or OUTGOING")
        if amount <= 0 or amount != amount.quantize(CENT):
            raise _invalid("amount must be a positive amount in dollars and cents")
        relationship = self._approved_relationship(account, relationship_id)
        if direction == "OUTGOING" and amount > self.withdrawable(account):
            raise ExchangeError(403, 40310000, "insufficient cash available for withdrawal")
        now = datetime.now(UTC)
        transfer = Transfer(
            id=self.world.new_id(),
            account_id=account.id,
            relationship_id=relationship.id,
            amount=amount,
            direction=direction,
            status="QUEUED",
            created_at=now,
            updated_at=now,
        )
        account.transfers.append(transfer)
        self._counts["transfers_submitted"] += 1
        self._publish_funding(transfer, "", now)
        self._after(now, TRANSFER_STEP_DELAY["QUEUED"], partial(self._advance, account, transfer))
        return transfer

    def cancel_transfer(self, account: Account, transfer: Transfer) -> None:
        """Cancel a transfer that has not yet been sent to clearing."""
        if transfer.status != "QUEUED":
            raise ExchangeError(422, 42210000, "transfer is not cancelable")
        now = datetime.now(UTC)
        transfer.status = "CANCELED"
        transfer.updated_at = now
        self._publish_funding(transfer, "QUEUED", now)

    def withdrawable(self, account: Account) -> Decimal:
        """Cash not already promised to withdrawals in flight."""
        pending = sum(
            (
                t.amount
                for t in account.transfers
                if t.direction == "OUTGOING" and t.status in PENDING_TRANSFER
            ),
            ZERO,
        )
        return max(account.cash - pending, ZERO)

    def _approved_relationship(
        self, account: Account, relationship_id: UUID | None
    ) -> AchRelationship:
        if relationship_id is None:
            for relationship in account.relationships:
                if relationship.status == "APPROVED":
                    return relationship
            raise _invalid("the account has no approved ACH relationship")
        for relationship in account.relationships:
            if str(relationship.id) == str(relationship_id):
                if relationship.status != "APPROVED":
                    raise _invalid(f"ACH relationship is {relationship.status}, not APPROVED")
                return relationship
        raise ExchangeError(404, 40410000, "relationship not found")

    def _advance(self, account: Account, transfer: Transfer, now: datetime) -> None:
        """QUEUED → SENT_TO_CLEARING → COMPLETE (cash moves), or REJECTED if cash ran short."""
        status = transfer.status
        if status == "QUEUED":
            transfer.status = "SENT_TO_CLEARING"
            transfer.updated_at = now
            step = TRANSFER_STEP_DELAY[transfer.status]
            self._after(now, step, partial(self._advance, account, transfer))
        elif status == "SENT_TO_CLEARING":
            if transfer.direction == "OUTGOING" and account.cash < transfer.amount:
                transfer.status = "REJECTED"
                transfer.reason = "insufficient funds"
                transfer.updated_at = now
                self._counts["transfers_rejected"] += 1
            else:
                self.world.apply_transfer(account, transfer, now)
                self._counts["transfers_completed"] += 1
        else:
            return  # canceled meanwhile
        self._publish_funding(transfer, status, now)

    def _publish_funding(
        self, entity: Transfer | AchRelationship, status_from: str, now: datetime
    ) -> None:
        kind = "Transfer" if isinstance(entity, Transfer) else "BankRelationship"
        self.events.publish(
            "funding",
            funding_update(
                kind, str(entity.id), str(entity.account_id), status_from, entity.status
            ),
        )

    # -- simulated customers ---------------------------------------------------------------
    def _trade_for_customers(self, now: datetime) -> None:
        """Submit ``orders_per_minute`` customer orders, spread evenly over the ticks."""
        if self._last_tick is not None:
            elapsed = (now - self._last_tick).total_seconds()
            rate = self.sandbox.config.orders_per_minute / 60
            self._customer_orders_due = min(self._customer_orders_due + rate * elapsed, rate + 1)
        while self._customer_orders_due >= 1:
            self._customer_orders_due -= 1
            self._customer_order(now)

    def _customer_order(self, now: datetime) -> None:
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
        if grows:
            budget = self.buying_power(account, asset.asset_class == "us_equity") * share
            qty = (budget / (self.market.last_price(asset.symbol) * MARKET_BUY_COLLAR)).quantize(
                quantum, ROUND_DOWN
            )
            side = opening_side
        else:
            available = abs(holding.qty) - self._pending_qty(account, asset.symbol, closing_side)
            qty = (available * share).quantize(quantum, ROUND_DOWN)
            side = closing_side
            if qty >= available:
                return
        if qty <= 0:
            return
        try:
            self.submit_order(
                account, asset, side, qty, "market", "gtc" if asset.is_crypto else "day", None, None
            )
            self._counts["customer_orders"] += 1
        except ExchangeError as error:
            logger.debug("customer order for %s refused: %s", account.id, error.message)

    # -- the loop ------------------------------------------------------------------------
    def _after(
        self, start: datetime, delay: tuple[float, float], action: Callable[[datetime], None]
    ) -> None:
        due = start + timedelta(seconds=self._rng.uniform(*delay))
        heapq.heappush(self._tasks, _Task(due, next(self._seq), action))

    def tick(self, now: datetime) -> None:
        """Do everything due by ``now``: acknowledge, fill, expire, settle, trade for customers.

        :meth:`run` calls it with the wall clock; a test may call it with a later moment to see
        what a calendar's open or close does.
        """
        while self._tasks and self._tasks[0].due <= now:
            task = heapq.heappop(self._tasks)
            try:
                task.action(now)
            except Exception:
                logger.exception("exchange action %r failed", task.action)
        self._cross_limits(now)
        self._expire(now)
        self._trade_for_customers(now)
        self._last_tick = now

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
            | {
                "open_orders": len(self._open),
                "scheduled": len(self._tasks),
                "busy_seconds": round(self._busy_seconds, 4),
            }
        )
