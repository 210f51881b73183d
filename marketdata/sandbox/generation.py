"""Generating the sandbox's accounts from a seed: every shape a real book has, consistently.

:func:`build_world` makes ``accounts`` accounts — the first one of each shape in
:data:`SHAPES` order, the rest drawn by :data:`SHAPE_WEIGHTS` — and a :class:`Builder` writes
each one's past as ledger entries through :class:`.world.World`, in time order, so every
derived figure (cash never below zero, positions, last_equity, history) follows from the
ledger. The same seed gives the same world.

Some accounts traded earlier today, after the previous close, as at Alpaca a position's day
then starts from its entry price: every ``fractional`` account opened a new position today
and every ``diversified`` one added to a holding (when its cash allowed). Those are the last
draws of an account, so everything else is as it was without them.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from .accounts import CENT, ZERO, Account, AchRelationship, Transfer, new_uuid
from .calendar import NEW_YORK
from .market import Asset, Market
from .world import World

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

    def buy_today(self, asset: Asset, budget: Decimal, fractional: bool) -> None:
        """Buy about ``budget`` of ``asset`` earlier in its current session, at the price
        then; nothing when the session has barely begun or the cash is not there."""
        session = self.market.calendar(asset.symbol).current_or_previous(self.now)
        end = min(self.now, session.close) - timedelta(seconds=10)
        start = max(session.open, self.world.previous_close_time())
        if end <= start:
            return
        at = start + (end - start) * self.rng.uniform(0.1, 0.9)
        price = self.market.price_at(asset.symbol, at)
        qty = self.qty_for(asset, budget, fractional, price)
        if qty * price * asset.multiplier > self.account.cash:
            return
        order = self.world.new_order(self.account, asset, "buy", qty, at, status="new")
        filled = at + timedelta(seconds=self.rng.uniform(0.2, 4))
        self.world.apply_fill(self.account, order, qty, price, filled)

    def qty_for(
        self, asset: Asset, budget: Decimal, fractional: bool, price: Decimal | None = None
    ) -> Decimal:
        if price is None:
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
                    description = f"Cash dividend {asset.symbol}"
                    self.world.book(self.account, "DIV", at, amount, description, asset, qty)
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
            self.world.book(self.account, "FEE", at, -amount, "ACH return fee (sandbox)")

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
        id=new_uuid(rng),
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
    if shape == "fractional":
        held = set(account.holdings)
        new = rng.choice([s for s in stocks[:60] if s.fractionable and s.symbol not in held])
        builder.buy_today(new, account.cash * Decimal("0.4"), True)
    elif shape == "diversified" and account.holdings:
        added = account.holdings[rng.choice(sorted(account.holdings))].asset
        builder.buy_today(added, account.cash * Decimal("0.5"), False)
    account.transfers.sort(key=lambda t: t.created_at)
    return account
