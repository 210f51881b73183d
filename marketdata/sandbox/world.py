"""The sandbox's brokerage world: accounts, their ledgers, and the rules that keep them consistent.

Every account is built from a ledger of dated activities — deposits, withdrawals, fills,
dividends, fees — and everything else is derived from it: positions and average cost are the
fills replayed, cash is every amount summed, orders and transfers are the ledger's sources,
and portfolio history values the ledger at historical prices. Live fills and transfers append
to the same ledger through :meth:`World.apply_fill` and :meth:`World.apply_transfer`, so the
invariants hold at every instant:

* a position's market value is quantity × current price (× 100 for an option contract);
* equity = cash + long market value − |short market value|;
* last_equity is the equity at the previous session's close;
* history ends at the current equity and carries every deposit and withdrawal as cash flow.
"""

from __future__ import annotations

import bisect
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from .calendar import NEW_YORK
from .market import Asset, Market

ZERO = Decimal(0)
CENT = Decimal("0.01")
RATIO = Decimal("1E-10")

#: Every shape a real book has; the first ``len(SHAPES)`` accounts take one each, in this order.
SHAPES = (
    "empty",
    "cash_only",
    "one_stock",
    "diversified",
    "etf_heavy",
    "bonds",
    "crypto",
    "short",
    "fractional",
    "option",
)
#: How often each shape appears among the remaining accounts of a large world.
SHAPE_WEIGHTS = (3, 6, 8, 35, 15, 5, 10, 3, 12, 3)

#: Activity types that move cash in or out of the account: the history's cash flow.
CASHFLOW_TYPES = ("CSD", "CSW")


@dataclass(slots=True)
class Holding:
    """A position: signed quantity (negative when short) and average entry price."""

    asset: Asset
    qty: Decimal
    avg_entry_price: Decimal

    @property
    def side(self) -> str:
        return "short" if self.qty < 0 else "long"


@dataclass(slots=True)
class Order:
    id: uuid.UUID
    client_order_id: str
    account_id: uuid.UUID
    asset: Asset
    side: str  # buy | sell
    order_type: str  # market | limit
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    status: str
    created_at: datetime
    submitted_at: datetime
    updated_at: datetime
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None

    OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled", "held"})

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


@dataclass(slots=True)
class Activity:
    """One ledger entry; ``net_amount`` is its effect on cash (fills included)."""

    id: str
    account_id: uuid.UUID
    activity_type: str  # FILL | CSD | CSW | DIV | FEE
    at: datetime
    net_amount: Decimal
    asset: Asset | None = None
    side: str | None = None  # buy | sell for fills
    qty: Decimal | None = None
    price: Decimal | None = None
    order: Order | None = None
    leaves_qty: Decimal | None = None
    cum_qty: Decimal | None = None
    description: str = ""

    @property
    def qty_delta(self) -> Decimal:
        if self.activity_type != "FILL" or self.qty is None:
            return ZERO
        return self.qty if self.side == "buy" else -self.qty


@dataclass(slots=True)
class AchRelationship:
    id: uuid.UUID
    account_id: uuid.UUID
    owner_name: str
    bank_account_type: str
    bank_account_number: str
    bank_routing_number: str
    nickname: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Transfer:
    id: uuid.UUID
    account_id: uuid.UUID
    relationship_id: uuid.UUID | None
    amount: Decimal
    direction: str  # INCOMING | OUTGOING
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    reason: str | None = None


@dataclass(slots=True)
class Account:
    id: uuid.UUID
    account_number: str
    shape: str
    owner: str
    created_at: datetime
    multiplier: int = 1  # 2 for the margin account that holds a short
    cash: Decimal = ZERO
    last_equity: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)
    activities: list[Activity] = field(default_factory=list)  # chronological
    orders: list[Order] = field(default_factory=list)  # chronological by submission
    transfers: list[Transfer] = field(default_factory=list)
    relationships: list[AchRelationship] = field(default_factory=list)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class World:
    """All accounts and the market they trade in."""

    def __init__(self, market: Market, seed: int) -> None:
        self.market = market
        self.seed = seed
        self.rng = random.Random(f"{seed}:ids")
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, tuple[Account, Order]] = {}

    # -- identifiers ------------------------------------------------------------------------
    def new_id(self) -> uuid.UUID:
        return _uuid(self.rng)

    def new_activity_id(self, at: datetime) -> str:
        """Alpaca's activity id: UTC time to the millisecond, '::', a uuid; sorts by time."""
        utc = at.astimezone(UTC)
        return f"{utc:%Y%m%d%H%M%S}{utc.microsecond // 1000:03d}::{self.new_id()}"

    # -- valuation ----------------------------------------------------------------------------
    def market_value(self, holding: Holding) -> Decimal:
        return holding.qty * self.market.last_price(holding.asset.symbol) * holding.asset.multiplier

    def long_short(self, account: Account) -> tuple[Decimal, Decimal]:
        """Long market value (≥ 0) and short market value (≤ 0, as Alpaca reports it)."""
        long = short = ZERO
        for holding in account.holdings.values():
            value = self.market_value(holding)
            if value >= 0:
                long += value
            else:
                short += value
        return long, short

    def equity(self, account: Account) -> Decimal:
        long, short = self.long_short(account)
        return account.cash + long + short

    def prev_close_equity(self, account: Account) -> Decimal:
        """Equity at the previous close for the holdings and cash as they stood then."""
        cutoff = self.previous_close_time()
        cash = account.cash
        qty: dict[str, Decimal] = {s: h.qty for s, h in account.holdings.items()}
        for activity in reversed(account.activities):
            if activity.at <= cutoff:
                break
            cash -= activity.net_amount
            if activity.asset is not None and activity.qty_delta:
                qty[activity.asset.symbol] = (
                    qty.get(activity.asset.symbol, ZERO) - activity.qty_delta
                )
        total = cash
        for symbol, amount in qty.items():
            asset = self.market.assets[symbol]
            total += amount * self.market.prev_close(symbol) * asset.multiplier
        return total

    def previous_close_time(self) -> datetime:
        calendar = self.market.stock_calendar
        session = calendar.current_or_previous(datetime.now(UTC))
        return calendar.previous(session).close

    def equity_at(self, account: Account, moments: list[datetime], daily: bool) -> list[Decimal]:
        """Equity at each moment (ascending), replaying the ledger at historical prices.

        ``daily`` values each point at its session's close, as a 1D history does; the last
        point of any series at or after the newest activity is the live equity.
        """
        out: list[Decimal] = []
        cash = ZERO
        qty: dict[str, Decimal] = {}
        activities = account.activities
        index = 0
        for moment in moments:
            cutoff = moment
            if daily:
                cutoff = datetime.combine(
                    moment.astimezone(NEW_YORK).date(), time(23, 59, 59), NEW_YORK
                )
            while index < len(activities) and activities[index].at <= cutoff:
                activity = activities[index]
                cash += activity.net_amount
                if activity.asset is not None and activity.qty_delta:
                    symbol = activity.asset.symbol
                    qty[symbol] = qty.get(symbol, ZERO) + activity.qty_delta
                index += 1
            total = cash
            for symbol, amount in qty.items():
                if not amount:
                    continue
                if daily:
                    price = self.market.close_on(symbol, moment.astimezone(NEW_YORK).date())
                else:
                    price = self.market.price_at(symbol, moment)
                total += amount * price * self.market.assets[symbol].multiplier
            out.append(total)
        return out

    # -- ledger writes -----------------------------------------------------------------------
    def record(self, account: Account, activity: Activity) -> Activity:
        """Append an activity and apply it to cash and holdings."""
        account.cash += activity.net_amount
        if activity.activity_type == "FILL" and activity.asset is not None:
            self._apply_position(account, activity.asset, activity.qty_delta, activity.price)
        position = bisect.bisect_right([a.at for a in account.activities], activity.at)
        account.activities.insert(position, activity)
        return activity

    def _apply_position(
        self, account: Account, asset: Asset, delta: Decimal, price: Decimal
    ) -> None:
        holding = account.holdings.get(asset.symbol)
        if holding is None:
            account.holdings[asset.symbol] = Holding(asset, delta, price)
            return
        new_qty = holding.qty + delta
        if new_qty == 0:
            del account.holdings[asset.symbol]
            return
        if holding.qty == 0 or (holding.qty > 0) == (delta > 0):
            # Adding to the position: the entry price becomes the quantity-weighted average.
            total = holding.qty * holding.avg_entry_price + delta * price
            holding.avg_entry_price = (total / new_qty).quantize(Decimal("1E-6"))
        elif (new_qty > 0) != (holding.qty > 0):
            # Crossed through zero: what is left was opened at this fill's price.
            holding.avg_entry_price = price
        holding.qty = new_qty

    def apply_fill(
        self, account: Account, order: Order, qty: Decimal, price: Decimal, at: datetime
    ) -> Activity:
        """Fill ``qty`` of ``order`` at ``price``: cash, position, order and a FILL activity."""
        asset = order.asset
        # Cash settles in cents; the position keeps the exact quantity and price.
        notional = (qty * price * asset.multiplier).quantize(CENT, ROUND_HALF_EVEN)
        net = -notional if order.side == "buy" else notional
        previous = order.filled_qty
        order.filled_qty = previous + qty
        order.filled_avg_price = (
            ((order.filled_avg_price or ZERO) * previous + price * qty) / order.filled_qty
        ).quantize(Decimal("1E-6"))
        order.status = "filled" if order.filled_qty >= order.qty else "partially_filled"
        order.updated_at = at
        if order.status == "filled":
            order.filled_at = at
        activity = Activity(
            id=self.new_activity_id(at),
            account_id=account.id,
            activity_type="FILL",
            at=at,
            net_amount=net,
            asset=asset,
            side=order.side,
            qty=qty,
            price=price,
            order=order,
            leaves_qty=order.qty - order.filled_qty,
            cum_qty=order.filled_qty,
        )
        return self.record(account, activity)

    def apply_transfer(self, account: Account, transfer: Transfer, at: datetime) -> Activity:
        """Complete a transfer: the cash moves and the ledger gets its CSD or CSW."""
        transfer.status = "COMPLETE"
        transfer.updated_at = at
        incoming = transfer.direction == "INCOMING"
        activity = Activity(
            id=self.new_activity_id(at),
            account_id=account.id,
            activity_type="CSD" if incoming else "CSW",
            at=at,
            net_amount=transfer.amount if incoming else -transfer.amount,
            description=f"ACH transfer {transfer.id}",
        )
        return self.record(account, activity)

    def new_order(
        self,
        account: Account,
        asset: Asset,
        side: str,
        qty: Decimal,
        at: datetime,
        order_type: str = "market",
        limit_price: Decimal | None = None,
        time_in_force: str = "day",
        status: str = "accepted",
        client_order_id: str | None = None,
    ) -> Order:
        order_id = self.new_id()
        order = Order(
            id=order_id,
            client_order_id=client_order_id or str(self.new_id()),
            account_id=account.id,
            asset=asset,
            side=side,
            order_type=order_type,
            time_in_force=time_in_force,
            qty=qty,
            limit_price=limit_price,
            status=status,
            created_at=at,
            submitted_at=at,
            updated_at=at,
        )
        account.orders.append(order)
        self.orders[str(order_id)] = (account, order)
        return order

    def roll_day(self) -> None:
        """A new session began: every account's last_equity becomes its equity at the close."""
        for account in self.accounts.values():
            account.last_equity = self.prev_close_equity(account)


# -- generation -------------------------------------------------------------------------------
FIRST_NAMES = ("Maya", "Jordan", "Alex", "Sam", "Priya", "Diego", "Lena", "Noah", "Aisha", "Kai")
LAST_NAMES = ("Rivera", "Chen", "Patel", "Okafor", "Kowalski", "Nguyen", "Smith", "Haddad")


def _round_up(amount: Decimal, step: int) -> Decimal:
    units = int((amount / step).to_integral_value(rounding="ROUND_CEILING"))
    return Decimal(max(1, units) * step)


class Builder:
    """Builds one account's history so that every derived figure is consistent."""

    def __init__(self, world: World, account: Account, rng: random.Random, now: datetime) -> None:
        self.world = world
        self.market = world.market
        self.account = account
        self.rng = rng
        self.now = now
        self.cutoff = world.previous_close_time() - timedelta(minutes=30)
        self.relationship: AchRelationship | None = None
        self.planned: list[tuple[datetime, Asset, str, Decimal]] = []

    def moment(self, after: datetime | None = None) -> datetime:
        start = after or self.account.created_at + timedelta(days=1)
        if start >= self.cutoff:
            return self.cutoff
        span = (self.cutoff - start).total_seconds()
        return start + timedelta(seconds=self.rng.uniform(0, span))

    def trading_moment(self, asset: Asset, after: datetime | None = None) -> datetime:
        """A moment inside a session of the asset's calendar, before the cutoff."""
        for _ in range(20):
            moment = self.moment(after)
            session = self.market.calendar(asset.symbol).current_or_previous(moment)
            if session.open <= moment < session.close:
                return moment
            candidate = session.open + (session.close - session.open) * self.rng.uniform(0.05, 0.95)
            if candidate < self.cutoff and (after is None or candidate > after):
                return candidate
        return self.moment(after)

    def ensure_relationship(self) -> AchRelationship:
        if self.relationship is None:
            at = self.account.created_at + timedelta(minutes=5)
            self.relationship = AchRelationship(
                id=self.world.new_id(),
                account_id=self.account.id,
                owner_name=self.account.owner,
                bank_account_type=self.rng.choice(("CHECKING", "SAVINGS")),
                bank_account_number=f"{self.rng.randrange(10**8, 10**9)}",
                bank_routing_number="121000358",
                nickname="Bank of Sandbox",
                status="APPROVED",
                created_at=at,
                updated_at=at,
            )
            self.account.relationships.append(self.relationship)
        return self.relationship

    def transfer(self, amount: Decimal, direction: str, at: datetime) -> None:
        relationship = self.ensure_relationship()
        transfer = Transfer(
            id=self.world.new_id(),
            account_id=self.account.id,
            relationship_id=relationship.id,
            amount=amount.quantize(CENT),
            direction=direction,
            status="QUEUED",
            created_at=at,
            updated_at=at,
        )
        self.account.transfers.append(transfer)
        self.world.apply_transfer(self.account, transfer, at)

    def plan(self, asset: Asset, side: str, qty: Decimal, at: datetime) -> None:
        """Queue a past fill; :meth:`execute` replays the queue in time order."""
        self.planned.append((at, asset, side, qty))

    def execute(self) -> None:
        """Fill every planned order in time order, depositing just before a buy cash can't cover.

        Replaying in time order is what keeps cash non-negative at every point of the ledger,
        so history never shows a cash account below zero.
        """
        last = self.account.created_at + timedelta(minutes=10)
        for at, asset, side, qty in sorted(self.planned, key=lambda item: item[0]):
            price = self.market.close_on(asset.symbol, at.astimezone(NEW_YORK).date())
            cost = (qty * price * asset.multiplier).quantize(CENT, ROUND_HALF_EVEN)
            if side == "buy" and self.account.cash < cost:
                shortfall = cost - self.account.cash + cost * Decimal("0.05")
                deposit_at = max(last, at - timedelta(days=2))
                self.transfer(_round_up(shortfall, 100), "INCOMING", min(deposit_at, at))
            order_type = self.rng.choice(("market", "market", "limit"))
            order = self.world.new_order(
                self.account,
                asset,
                side,
                qty,
                at,
                order_type=order_type,
                limit_price=price if order_type == "limit" else None,
                status="new",
            )
            last = at + timedelta(seconds=self.rng.uniform(0.2, 4))
            self.world.apply_fill(self.account, order, qty, price, last)
        self.planned.clear()

    def qty_for(self, asset: Asset, budget: Decimal, fractional: bool) -> Decimal:
        price = self.market.close_on(asset.symbol, self.cutoff.astimezone(NEW_YORK).date())
        raw = budget / (price * asset.multiplier)
        if asset.is_crypto:
            return max(Decimal("0.0001"), raw.quantize(Decimal("0.0001"), rounding=ROUND_DOWN))
        if fractional and asset.fractionable:
            return max(Decimal("0.001"), raw.quantize(Decimal("0.000000001"), rounding=ROUND_DOWN))
        return max(Decimal(1), raw.to_integral_value(rounding=ROUND_DOWN))

    def buy_over_time(self, asset: Asset, qty: Decimal, lots: int, fractional: bool) -> None:
        """Accumulate ``qty`` over up to ``lots`` fills, sometimes trimming with a sale."""
        unit = Decimal("0.000000001") if fractional else Decimal(1)
        if lots > 1 and qty >= lots * unit * 100:
            step = (qty / lots).quantize(unit, ROUND_DOWN)
        else:
            step, lots = qty, 1
        bought = ZERO
        moments = sorted(self.trading_moment(asset) for _ in range(lots))
        for i, at in enumerate(moments):
            lot = qty - bought if i == lots - 1 else step
            if lot <= 0:
                continue
            extra = ZERO
            if i == 0 and lots > 1 and self.rng.random() < 0.3 and not asset.is_crypto:
                extra = step if step >= 1 else ZERO
            self.plan(asset, "buy", lot + extra, at)
            bought += lot
            if extra:
                self.plan(asset, "sell", extra, self.trading_moment(asset, at))

    def dividends(self) -> None:
        """Quarterly dividends on stocks and funds held for a while (bond funds pay monthly)."""
        for holding in list(self.account.holdings.values()):
            asset = holding.asset
            if asset.asset_class != "us_equity" or holding.qty <= 0:
                continue
            first = next(a.at for a in self.account.activities if a.asset is asset)
            every = 30 if asset.category == "etf_bond" else 91
            rate = Decimal("0.003") if asset.category == "etf_bond" else Decimal("0.004")
            at = first + timedelta(days=every)
            while at < self.cutoff:
                qty = self.qty_held(asset.symbol, at)
                amount = (qty * self.market.close_on(asset.symbol, at.date()) * rate).quantize(CENT)
                if amount > 0:
                    self.world.record(
                        self.account,
                        Activity(
                            id=self.world.new_activity_id(at),
                            account_id=self.account.id,
                            activity_type="DIV",
                            at=at,
                            net_amount=amount,
                            asset=asset,
                            qty=qty,
                            description=f"Cash dividend {asset.symbol}",
                        ),
                    )
                at += timedelta(days=every)

    def qty_held(self, symbol: str, at: datetime) -> Decimal:
        return sum(
            (
                a.qty_delta
                for a in self.account.activities
                if a.asset and a.asset.symbol == symbol and a.at <= at
            ),
            ZERO,
        )

    def headroom(self, at: datetime) -> Decimal:
        """The least cash the account holds at any point from ``at`` on: what can leave then."""
        before = sum((a.net_amount for a in self.account.activities if a.at < at), ZERO)
        lowest = running = before
        for activity in self.account.activities:
            if activity.at >= at:
                running += activity.net_amount
                lowest = min(lowest, running)
        return lowest

    def fee(self) -> None:
        """An occasional ACH return fee, charged only when the cash was there to pay it."""
        at = self.moment()
        amount = Decimal("1.00")
        if self.account.activities and self.headroom(at) >= amount:
            self.world.record(
                self.account,
                Activity(
                    id=self.world.new_activity_id(at),
                    account_id=self.account.id,
                    activity_type="FEE",
                    at=at,
                    net_amount=-amount,
                    description="ACH return fee (sandbox)",
                ),
            )

    def extra_orders(self) -> None:
        """Orders that did not fill: a canceled one and one open limit order far from the market."""
        held = [
            h.asset
            for h in self.account.holdings.values()
            if h.qty > 0 and not h.asset.multiplier > 1
        ]
        if not held:
            return
        asset = self.rng.choice(held)
        at = self.trading_moment(asset)
        price = self.market.close_on(asset.symbol, at.astimezone(NEW_YORK).date())
        canceled = self.world.new_order(
            self.account,
            asset,
            "buy",
            Decimal(1),
            at,
            "limit",
            (price * Decimal("0.9")).quantize(CENT),
            "day",
            "canceled",
        )
        canceled.canceled_at = canceled.updated_at = at + timedelta(
            minutes=self.rng.randint(1, 120)
        )
        asset = self.rng.choice(held)
        at = self.cutoff - timedelta(hours=self.rng.randint(1, 48))
        last = self.market.last_price(asset.symbol)
        limit = (last * Decimal("0.7")).quantize(Decimal(10) ** -asset.scale)
        if limit > 0:
            self.world.new_order(
                self.account, asset, "buy", Decimal(1), at, "limit", limit, "gtc", "new"
            )


def _assets_by_category(market: Market) -> dict[str, list[Asset]]:
    out: dict[str, list[Asset]] = {}
    for asset in market.assets.values():
        out.setdefault(asset.category, []).append(asset)
    return out


def build_world(market: Market, accounts: int, seed: int, now: datetime) -> World:
    """Generate ``accounts`` accounts of every shape from ``seed``."""
    world = World(market, seed)
    categories = _assets_by_category(market)
    shape_rng = random.Random(f"{seed}:shapes")
    for index in range(accounts):
        if index < len(SHAPES):
            shape = SHAPES[index]
        else:
            shape = shape_rng.choices(SHAPES, weights=SHAPE_WEIGHTS)[0]
        rng = random.Random(f"{seed}:account:{index}")
        _build_account(world, categories, shape, index, rng, now)
    for account in world.accounts.values():
        account.orders.sort(key=lambda o: o.submitted_at)
        account.last_equity = world.prev_close_equity(account)
    return world


def _build_account(
    world: World,
    categories: dict[str, list[Asset]],
    shape: str,
    index: int,
    rng: random.Random,
    now: datetime,
) -> Account:
    if shape == "empty":
        created = now - timedelta(hours=rng.uniform(1, 30))
    else:
        created = now - timedelta(days=rng.uniform(45, 1500))
    account = Account(
        id=_uuid(rng),
        account_number=f"9{rng.randrange(10**8, 10**9)}",
        shape=shape,
        owner=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        created_at=created.replace(microsecond=0),
        multiplier=2 if shape == "short" else 1,
    )
    world.accounts[str(account.id)] = account
    if shape == "empty":
        return account
    builder = Builder(world, account, rng, now)
    size = Decimal(str(round(rng.lognormvariate(9.6, 1.0), 2)))  # median ≈ $15k
    size = min(max(size, Decimal(500)), Decimal(900_000))
    stocks = categories.get("stock", [])
    picks: list[tuple[Asset, Decimal]] = []
    fractional = shape == "fractional"
    if shape == "cash_only":
        builder.transfer(_round_up(size, 100), "INCOMING", builder.moment())
    elif shape == "one_stock":
        picks = [(rng.choice(stocks[:40]), size)]
    elif shape == "diversified":
        sectors: dict[str, list[Asset]] = {}
        for stock in stocks:
            sectors.setdefault(stock.sector, []).append(stock)
        chosen: list[Asset] = []
        for names in sectors.values():
            chosen += rng.sample(names, min(len(names), rng.randint(1, 3)))
        chosen = rng.sample(chosen, min(len(chosen), rng.randint(12, 25)))
        chosen += rng.sample(categories["etf_broad"], 1)
        picks = [
            (asset, size * Decimal(str(rng.uniform(0.5, 1.5))) / len(chosen)) for asset in chosen
        ]
    elif shape == "etf_heavy":
        funds = rng.sample(categories["etf_broad"], min(3, len(categories["etf_broad"])))
        funds += rng.sample(categories["etf_sector"], 2) + rng.sample(categories["etf_bond"], 1)
        picks = [
            (asset, size * Decimal(str(rng.uniform(0.6, 1.4))) / (len(funds) + 1))
            for asset in funds
        ]
        picks.append((rng.choice(stocks[:30]), size / (len(funds) + 1) / 2))
    elif shape == "bonds":
        funds = rng.sample(categories["etf_bond"], min(4, len(categories["etf_bond"])))
        picks = [(asset, size / len(funds)) for asset in funds]
    elif shape == "crypto":
        coins = [
            c for c in categories["crypto"] if c.category == "crypto" and "USDT" not in c.symbol
        ]
        coins = rng.sample(coins, min(len(coins), rng.randint(2, 4)))
        picks = [(asset, size / len(coins)) for asset in coins]
    elif shape == "short":
        longs = rng.sample(stocks[:60], 4)
        picks = [(asset, size / 5) for asset in longs]
    elif shape == "fractional":
        chosen = rng.sample([s for s in stocks[:60] if s.fractionable], 5)
        picks = [(asset, Decimal(str(rng.uniform(40, 400)))) for asset in chosen]
    elif shape == "option":
        longs = rng.sample(stocks[:40], 3)
        picks = [(asset, size / 4) for asset in longs]
    for asset, budget in picks:
        qty = builder.qty_for(asset, budget, fractional or asset.is_crypto)
        builder.buy_over_time(asset, qty, rng.randint(1, 3), fractional or asset.is_crypto)
    if shape == "short":
        held = {asset.symbol for asset, _ in picks}
        target = rng.choice([s for s in stocks[:60] if s.shortable and s.symbol not in held])
        qty = builder.qty_for(target, size / 6, False)
        builder.plan(target, "sell", qty, builder.trading_moment(target))
    if shape == "option":
        options = categories.get("option", [])
        if options:
            contract = rng.choice(options)
            builder.plan(
                contract, "buy", Decimal(rng.randint(1, 3)), builder.trading_moment(contract)
            )
    builder.execute()
    if shape not in ("cash_only", "crypto"):
        builder.dividends()
    if rng.random() < 0.15:
        builder.fee()
    # A cash buffer, as retail accounts keep one; sometimes a past withdrawal as well.
    buffer = (size * Decimal(str(rng.uniform(0.01, 0.08)))).quantize(CENT, ROUND_HALF_EVEN)
    if shape != "cash_only" and buffer > 0:
        builder.transfer(_round_up(buffer, 50), "INCOMING", builder.moment())
    withdraw_at = builder.cutoff - timedelta(hours=1)
    if rng.random() < 0.3 and builder.headroom(withdraw_at) > 1000:
        builder.transfer(
            _round_up(builder.headroom(withdraw_at) / 4, 50) - 50, "OUTGOING", withdraw_at
        )
    builder.extra_orders()
    account.transfers.sort(key=lambda t: t.created_at)
    return account
