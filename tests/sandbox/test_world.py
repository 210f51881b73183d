"""Property tests: the generated world is consistent for every account, whatever the seed."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.sandbox.assets import build_assets
from marketdata.sandbox.calendar import AlwaysOpen, NyseCalendar
from marketdata.sandbox.generation import SHAPES, build_world
from marketdata.sandbox.market import Market
from marketdata.sandbox.world import World

NOW = datetime.now(UTC)


def make_world(seed: int, calendar=None, accounts: int = len(SHAPES) + 4) -> World:
    market = Market(build_assets(60, seed), seed, calendar or AlwaysOpen(), NOW)
    return build_world(market, accounts, seed, NOW)


def replayed(account, until: datetime | None = None) -> tuple[Decimal, dict[str, Decimal]]:
    """Cash and quantities from the ledger, forwards (up to ``until`` if given)."""
    cash, qty = Decimal(0), {}
    for activity in account.activities:
        if until is not None and activity.at > until:
            break
        cash += activity.net_amount
        if activity.asset is not None and activity.qty_delta:
            symbol = activity.asset.symbol
            qty[symbol] = qty.get(symbol, Decimal(0)) + activity.qty_delta
    return cash, {s: q for s, q in qty.items() if q}


def check_ledger(world: World) -> None:
    for account in world.accounts.values():
        cash, qty = replayed(account)
        assert account.cash == cash, account.shape
        assert account.cash == account.cash.quantize(Decimal("0.01")), "cash settles in cents"
        assert {s: h.qty for s, h in account.holdings.items()} == qty, account.shape
        running = Decimal(0)
        times = [a.at for a in account.activities]
        assert times == sorted(times)
        for activity in account.activities:
            running += activity.net_amount
            assert running >= 0, f"{account.shape}: cash below zero at {activity.at}"
            assert account.created_at <= activity.at <= NOW
        assert len({a.id for a in account.activities}) == len(account.activities)


def check_orders_and_transfers(world: World) -> None:
    for account in world.accounts.values():
        fills: dict[str, Decimal] = {}
        for activity in account.activities:
            if activity.activity_type == "FILL":
                assert activity.order in account.orders
                key = str(activity.order.id)
                fills[key] = fills.get(key, Decimal(0)) + activity.qty
        for order in account.orders:
            assert fills.get(str(order.id), Decimal(0)) == order.filled_qty
            if order.status == "filled":
                assert order.filled_qty == order.qty
            else:
                assert order.filled_qty == 0
        flows = sum(
            (a.net_amount for a in account.activities if a.activity_type in ("CSD", "CSW")),
            Decimal(0),
        )
        completed = sum(
            (
                t.amount if t.direction == "INCOMING" else -t.amount
                for t in account.transfers
                if t.status == "COMPLETE"
            ),
            Decimal(0),
        )
        assert flows == completed, account.shape


def check_valuation(world: World) -> None:
    market = world.market
    for account in world.accounts.values():
        long = short = Decimal(0)
        for symbol, holding in account.holdings.items():
            value = holding.qty * market.last_price(symbol) * holding.asset.multiplier
            assert world.market_value(holding) == value
            assert holding.avg_entry_price > 0
            if value >= 0:
                long += value
            else:
                short += value
        assert world.equity(account) == account.cash + long + short
        cash, qty = replayed(account, until=world.previous_close_time())
        prev_close = cash + sum(
            (q * market.prev_close(s) * market.assets[s].multiplier for s, q in qty.items()),
            Decimal(0),
        )
        assert account.last_equity == prev_close == sum(world.last_balances(account))
        assert world.equity_at(account, [NOW], daily=False)[-1] == world.equity(account)


def check_shapes(world: World) -> None:
    by_shape = {}
    for account in world.accounts.values():
        by_shape.setdefault(account.shape, account)
    assert set(by_shape) == set(SHAPES)
    holdings = {shape: list(a.holdings.values()) for shape, a in by_shape.items()}
    assert not by_shape["empty"].activities and by_shape["empty"].cash == 0
    assert not holdings["cash_only"] and by_shape["cash_only"].cash > 0
    assert len(holdings["one_stock"]) == 1 and holdings["one_stock"][0].asset.category == "stock"
    assert len(holdings["diversified"]) >= 8
    assert len({h.asset.sector for h in holdings["diversified"]}) >= 5
    etf_value = sum(
        world.market_value(h) for h in holdings["etf_heavy"] if h.asset.category.startswith("etf")
    )
    assert etf_value > world.equity(by_shape["etf_heavy"]) / 2
    assert holdings["bonds"] and all(h.asset.category == "etf_bond" for h in holdings["bonds"])
    assert holdings["crypto"] and all(h.asset.is_crypto for h in holdings["crypto"])
    assert any(h.qty < 0 and h.side == "short" for h in holdings["short"])
    assert any(h.qty != h.qty.to_integral_value() for h in holdings["fractional"])
    options = [h for h in holdings["option"] if h.asset.asset_class == "us_option"]
    assert options and options[0].asset.multiplier == 100


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_every_account_is_consistent(seed: int) -> None:
    world = make_world(seed)
    check_ledger(world)
    check_orders_and_transfers(world)
    check_valuation(world)
    check_shapes(world)


def test_consistent_on_the_exchange_calendar() -> None:
    world = make_world(11, NyseCalendar())
    check_ledger(world)
    check_valuation(world)
    check_shapes(world)


def test_same_seed_same_world() -> None:
    first, second = make_world(5), make_world(5)
    assert list(first.accounts) == list(second.accounts)
    for key, account in first.accounts.items():
        other = second.accounts[key]
        assert (account.cash, account.shape) == (other.cash, other.shape)
        assert {s: h.qty for s, h in account.holdings.items()} == {
            s: h.qty for s, h in other.holdings.items()
        }


def test_some_accounts_opened_or_added_to_a_position_today() -> None:
    """Every fractional account opened a position today (its day starts from the entry), and
    diversified ones added to one (old shares from the close, new from their price)."""
    world = make_world(21, accounts=40)
    start = world.previous_close_time()
    opened = added = 0
    for account in world.accounts.values():
        bases = world.day_bases(account, world.day_starts(NOW))
        _, before_qty = replayed(account, until=start)
        for symbol, holding in account.holdings.items():
            fills = [a for a in account.activities if a.at > start and a.asset is holding.asset]
            if not fills:
                assert symbol not in bases
                continue
            assert all(f.side == "buy" for f in fills)  # the generator only buys today
            cost = sum((f.qty * f.price * holding.asset.multiplier for f in fills), Decimal(0))
            close = world.market.prev_close(symbol) * holding.asset.multiplier
            assert bases[symbol] == before_qty.get(symbol, Decimal(0)) * close + cost
            opened += symbol not in before_qty
            added += symbol in before_qty
        assert account.shape != "fractional" or set(account.holdings) - set(before_qty)
    assert opened and added


def test_live_fill_keeps_the_invariants() -> None:
    world = make_world(3)
    account = next(a for a in world.accounts.values() if a.shape == "diversified")
    holding = next(iter(account.holdings.values()))
    before_cash, before_qty = account.cash, holding.qty
    price = world.market.last_price(holding.asset.symbol)
    order = world.new_order(account, holding.asset, "buy", Decimal(2), NOW)
    world.apply_fill(account, order, Decimal(2), price, NOW)
    assert holding.qty == before_qty + 2
    assert account.cash == before_cash - (2 * price).quantize(Decimal("0.01"))
    assert order.status == "filled"
    cash, qty = replayed(account)
    assert cash == account.cash and qty[holding.asset.symbol] == holding.qty


@pytest.mark.parametrize("shape", ["bonds", "diversified", "crypto"])
def test_history_ends_at_current_equity(shape: str) -> None:
    world = make_world(9)
    account = next(a for a in world.accounts.values() if a.shape == shape)
    days = [
        s.open for s in world.market.stock_calendar.sessions(account.created_at.date(), NOW.date())
    ]
    series = world.equity_at(account, [*days, NOW], daily=True)
    assert series[-1] == world.equity(account)
    assert all(value >= 0 for value in series)
