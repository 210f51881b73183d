"""The one valuation function and the one JSON representation of amounts."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portfolio import money
from portfolio.presenters import valuation_json
from portfolio.valuation import AccountInputs, HoldingInput, value_account

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
amounts = st.decimals(min_value=-10_000, max_value=10_000, places=4)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=5_000, places=4)


def test_formulas_on_a_mixed_book() -> None:
    inputs = AccountInputs(
        account_id="a",
        cash=Decimal("1000.00"),
        last_equity=Decimal("5000.00"),
        holdings=(
            HoldingInput("AAPL", Decimal(10), Decimal("190.10"), Decimal("150"), Decimal("188")),
            HoldingInput("TSLA", Decimal(-2), Decimal("250"), Decimal("260"), Decimal("255")),
            HoldingInput(
                "AAPL261218C00250000", Decimal(1), Decimal("3.15"), Decimal("2.00"),
                Decimal("3.00"), multiplier=100,
            ),
        ),
    )  # fmt: skip
    value = value_account(inputs, NOW)
    assert value.long_value == Decimal("1901.00") + Decimal("315.00")
    assert value.short_value == Decimal("-500")
    assert value.total_value == Decimal("1000.00") + Decimal("2216.00") - Decimal("500")
    assert value.today_return == value.total_value - Decimal("5000.00")
    assert value.today_return_percent == value.today_return / Decimal("5000.00") * 100
    short = value.holdings[1]
    assert short.market_value == Decimal(-500) and short.unrealized_pl == Decimal(20)
    assert short.day_change == Decimal(10)  # the price fell: a short gains
    option = value.holdings[2]
    assert option.day_change == Decimal("15.00") and option.cost_basis == Decimal("200.00")


def test_no_last_equity_means_no_percentage() -> None:
    value = value_account(AccountInputs("a", Decimal(0), Decimal(0), ()), NOW)
    body = valuation_json(value)
    assert body["today_return_percent"] is None
    assert body["total_value"] == "0.00" and body["holdings"] == []


@given(
    cash=amounts,
    last_equity=amounts,
    book=st.lists(st.tuples(amounts, prices, prices), max_size=12),
)
def test_total_is_cash_plus_market_values(cash, last_equity, book) -> None:
    holdings = tuple(
        HoldingInput(f"S{i}", qty, price, entry) for i, (qty, price, entry) in enumerate(book)
    )
    value = value_account(AccountInputs("a", cash, last_equity, holdings), NOW)
    assert value.total_value == cash + sum((q * p for q, p, _ in book), Decimal(0))
    assert value.positions_value == value.long_value + value.short_value
    assert value.today_return == value.total_value - last_equity
    body = valuation_json(value)
    assert Decimal(body["total_value"]) == value.total_value.quantize(Decimal("0.01"))
    assert all(isinstance(body[k], str) for k in ("total_value", "cash", "today_return"))


def test_amounts_are_plain_decimal_strings() -> None:
    assert money.money(Decimal("1E+3")) == "1000.00"
    assert money.money(Decimal("2.675")) == "2.68"  # half-even: a tie goes to the even cent
    assert money.money(Decimal("2.665")) == "2.66"
    assert money.price(Decimal("187.2")) == "187.20"
    assert money.price(Decimal("0.000025")) == "0.000025"
    assert money.quantity(Decimal("10.000000000")) == "10"
    assert money.quantity(Decimal("1E+1")) == "10"
    assert money.quantity(Decimal("0E-9")) == "0"
    assert money.percent(Decimal("-1.255")) == "-1.26"
    assert money.percent(None) is None


def test_day_change_runs_from_the_day_basis() -> None:
    """Opened today: from its entry; added to today: old shares from the close, new from
    their price; no basis: from the close, as before."""
    opened = HoldingInput(
        "NEW", Decimal(4), Decimal("121"), Decimal("120"), Decimal("100"), day_basis=Decimal(480)
    )
    added = HoldingInput(
        "ADD", Decimal(15), Decimal("121"), Decimal("108.33"), Decimal("105"),
        day_basis=Decimal(10 * 105 + 5 * 120),
    )  # fmt: skip
    short = HoldingInput(
        "SHT", Decimal(-5), Decimal("88"), Decimal("90"), Decimal("95"), day_basis=Decimal(-450)
    )
    held = HoldingInput("OLD", Decimal(10), Decimal("121"), Decimal("100"), Decimal("105"))
    inputs = AccountInputs("a", Decimal(0), Decimal(0), (opened, added, short, held))

    values = {h.symbol: h for h in value_account(inputs, NOW).holdings}

    assert values["NEW"].day_change == Decimal(4)  # 4 × (121 − 120), not 4 × (121 − 100)
    assert values["NEW"].day_change_percent == Decimal(1) / Decimal(120) * 100
    assert values["ADD"].day_change == 10 * 16 + 5 * 1
    assert values["SHT"].day_change == Decimal(10)  # shorted at 90 today, now 88
    assert values["SHT"].day_change_percent == Decimal(-2) / Decimal(90) * 100  # the price's
    assert values["OLD"].day_change == Decimal(160)
    assert values["OLD"].day_change_percent == Decimal(16) / Decimal(105) * 100


@given(
    closing=st.lists(st.tuples(amounts, prices, prices), max_size=6),
    bought=st.lists(st.tuples(st.integers(1, 500), prices, prices), max_size=6),
)
def test_holdings_day_changes_add_up_to_todays_return(closing, bought) -> None:
    """Cash the close had, spent on today's buys: today's return is exactly the sum of the
    holdings' day changes (what Alpaca's intraday P/L adds up to)."""
    cash_at_close = Decimal(10_000)
    spent = sum((Decimal(q) * entry for q, entry, _ in bought), Decimal(0))
    holdings = [
        HoldingInput(f"C{i}", qty, price, close, close)
        for i, (qty, price, close) in enumerate(closing)
    ]
    holdings += [
        HoldingInput(f"T{i}", Decimal(q), price, entry, None, day_basis=Decimal(q) * entry)
        for i, (q, entry, price) in enumerate(bought)
    ]
    last_equity = cash_at_close + sum((q * close for q, _, close in closing), Decimal(0))
    inputs = AccountInputs("a", cash_at_close - spent, last_equity, tuple(holdings))

    value = value_account(inputs, NOW)

    assert value.today_return == sum((h.day_change for h in value.holdings), Decimal(0))
