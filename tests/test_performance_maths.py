"""The performance maths (portfolio/performance.py): empyrical's published reference cases, a
textbook money- and time-weighted return, the history chart's own figures, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.types import PortfolioHistory
from portfolio.history import HistoryPlan, net_steps, summarize_history
from portfolio.performance import (
    NO_MONEY,
    Drawdown,
    drawdown,
    money_weighted_rate,
    performance,
    return_statistics,
)
from portfolio.risk import Conventions

NEW_YORK = ZoneInfo("America/New_York")
PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOLERANCE = 1e-6
CENT = Decimal("0.01")
NO_RISK_FREE = Conventions(risk_free_rate=Decimal(0))

# empyrical-reloaded's fixtures (tests/conftest.py, input_data): daily returns from 2000-01-30.
DAYS = pd.date_range("2000-1-30", periods=9, freq="D")
MIXED = pd.Series(np.array([np.nan, 1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0]) / 100, DAYS)
POSITIVE = pd.Series(np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) / 100, DAYS)
NEGATIVE = pd.Series(np.array([0.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0]) / 100, DAYS)
ALL_NEGATIVE = pd.Series(
    np.array([-2.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0]) / 100, DAYS
)
UDU = pd.Series(np.array([10, -10, 10]) / 100, DAYS[:3])


def history(
    days: list[date], equity: list[str | None], deposits: list[str] | None = None
) -> PortfolioHistory:
    """A daily history as Alpaca sends it: each point at 00:00 New York of its day."""
    return PortfolioHistory(
        timestamps=tuple(datetime.combine(day, datetime.min.time(), NEW_YORK) for day in days),
        equity=tuple(None if value is None else Decimal(value) for value in equity),
        profit_loss=(None,) * len(days),
        profit_loss_pct=(None,) * len(days),
        base_value=None,
        timeframe="1D",
        cashflow={"CSD": tuple(Decimal(value) for value in deposits or ["0"] * len(days))},
    )


def closes(symbol: str, days: list[date], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({symbol: values}, index=pd.DatetimeIndex(days))


# --- empyrical's reference values (tests/test_stats.py) ---------------------------------------


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        (MIXED, -0.1),
        (POSITIVE, 0.0),
        (NEGATIVE, -0.36590730),
        (ALL_NEGATIVE, -0.378589157),
        (UDU, -0.10),
    ],
)
def test_max_drawdown_is_empyricals_reference(returns: pd.Series, expected: float) -> None:
    # test_max_drawdown
    assert return_statistics(returns, None).max_drawdown.depth == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [(MIXED, 1.7238613961706866), (POSITIVE, 52.915026221291804), (NEGATIVE, -24.406808633910085)],
)
def test_sharpe_is_empyricals_reference(returns: pd.Series, expected: float) -> None:
    # test_sharpe_ratio, risk_free = 0
    assert return_statistics(returns, None, NO_RISK_FREE).sharpe == pytest.approx(
        expected, abs=TOLERANCE
    )


@pytest.mark.parametrize(
    ("returns", "expected"), [(MIXED, 2.605531251673693), (NEGATIVE, -13.532743075043401)]
)
def test_sortino_is_empyricals_reference(returns: pd.Series, expected: float) -> None:
    # test_sortino, required_return = 0
    assert return_statistics(returns, None, NO_RISK_FREE).sortino == pytest.approx(
        expected, abs=TOLERANCE
    )


def test_volatility_alpha_and_beta_are_empyricals_references() -> None:
    # test_annual_volatility (mixed_returns, daily) and test_alpha_beta (mixed_returns against
    # negative_returns[1:])
    statistics = return_statistics(MIXED, NEGATIVE[1:], NO_RISK_FREE)
    assert statistics.volatility == pytest.approx(0.9136465399704637, abs=TOLERANCE)
    assert statistics.alpha == pytest.approx(-0.9997853834885004, abs=TOLERANCE)
    assert statistics.beta == pytest.approx(-0.71296296296296313, abs=TOLERANCE)
    assert return_statistics(MIXED, MIXED, NO_RISK_FREE).beta == pytest.approx(1.0)


def test_the_drawdown_has_its_days() -> None:
    assert drawdown(MIXED) == Drawdown(
        pytest.approx(-0.1), peak=date(2000, 2, 6), trough=date(2000, 2, 7), recovered=None
    )
    # From the start (which counts as a high) straight down.
    assert drawdown(ALL_NEGATIVE) == Drawdown(
        pytest.approx(-0.378589157), peak=None, trough=date(2000, 2, 7), recovered=None
    )
    recovering = pd.Series([0.1, -0.5, 0.5, 0.5, 0.1], DAYS[:5])
    assert drawdown(recovering) == Drawdown(
        pytest.approx(-0.5),
        peak=date(2000, 1, 30),
        trough=date(2000, 1, 31),
        recovered=date(2000, 2, 2),
    )
    assert drawdown(POSITIVE) == Drawdown(0.0, None, None, None)
    assert drawdown(pd.Series([np.nan], DAYS[:1])) is None


def test_the_risk_free_rate_is_the_annual_rate_over_the_days_of_a_year() -> None:
    conventions = Conventions(risk_free_rate=Decimal("0.04"))
    statistics = return_statistics(MIXED, None, conventions)
    returns = MIXED.dropna()
    expected = (returns.mean() * 252 - 0.04) / (returns.std(ddof=1) * np.sqrt(252))
    assert statistics.sharpe == pytest.approx(expected)


# --- textbook money- and time-weighted returns --------------------------------------------------


def test_the_cfa_two_share_example() -> None:
    """CFA Program curriculum, Level I, Quantitative Methods, "Rates and Returns": buy a share at
    $200; a year later receive a $5 dividend and buy another at $225 (paying in $220 more); a
    year after that receive $10 of dividends and sell both at $235. Money-weighted return
    9.39 %, time-weighted return 10.76 % a year (15 % then 6.67 %, rounded before chaining;
    10.75 % unrounded)."""
    days = [date(2021, 1, 4), date(2022, 1, 4), date(2023, 1, 4)]
    data = history(days, ["200", "450", "480"], ["0", "220", "0"])
    answer = performance(data, closes("SPY", days, [100.0, 110.0, 121.0]))
    mwr = (-220 + np.sqrt(220**2 + 4 * 200 * 480)) / (2 * 200) - 1  # 200x² + 220x − 480 = 0
    assert answer.annualized_money_weighted_return == pytest.approx(mwr, abs=TOLERANCE)
    assert round(answer.annualized_money_weighted_return, 4) == 0.0939
    assert answer.money_weighted_return == pytest.approx((1 + mwr) ** 2 - 1, abs=TOLERANCE)
    assert answer.time_weighted_return == pytest.approx(1.15 * 480 / 450 - 1, abs=TOLERANCE)
    assert answer.annualized_time_weighted_return == pytest.approx(
        np.sqrt(1.15 * 480 / 450) - 1, abs=TOLERANCE
    )
    # The curriculum rounds year two to 6.67 % first: √(1.15 × 1.0667) − 1 = 10.76 %.
    assert answer.annualized_time_weighted_return == pytest.approx(0.1076, abs=1e-4)
    assert (answer.start, answer.end) == (days[0], days[-1])
    assert answer.benchmark_return == pytest.approx(0.21)
    assert answer.excess_return == pytest.approx(1.15 * 480 / 450 - 1 - 0.21)


def test_the_history_charts_example_and_its_own_time_weighted_return() -> None:
    """docs/analytics.md: $1,000 grows 10 %, $10,000 arrives on a flat day, then +10 %."""
    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)]
    data = history(days, ["1000", "1100", "11100", "12210"], ["0", "0", "10000", "0"])
    answer = performance(data, closes("SPY", days, [500.0, 505.0, 500.0, 510.0]))
    assert answer.time_weighted_return == pytest.approx(0.21)
    chart = summarize_history(data, HistoryPlan("1M", {}))
    assert f"{answer.time_weighted_return * 100:.2f}" == chart["time_weighted_return"]
    # The $10,000 arrived just before a +10 % day: weighted by money, the period beats 21 %.
    flows = {days[0]: -1000.0, days[2]: -10000.0, days[3]: 12210.0}
    rate = answer.annualized_money_weighted_return
    assert npv(rate, flows) == pytest.approx(0, abs=1e-6)
    assert answer.money_weighted_return > answer.time_weighted_return


def npv(rate: float, flows: dict[date, float]) -> float:
    start = min(flows)
    return sum(amount / (1 + rate) ** ((day - start).days / 365) for day, amount in flows.items())


def test_a_withdrawal_is_money_received() -> None:
    days = [date(2025, 1, 2), date(2025, 7, 2), date(2026, 1, 2)]
    data = history(days, ["1000", "600", "660"], ["0", "-500", "0"])
    steps = [step for step in net_steps(data) if step is not None]
    rate = money_weighted_rate(steps)
    assert npv(rate, {days[0]: -1000.0, days[1]: 500.0, days[2]: 660.0}) == pytest.approx(
        0, abs=1e-6
    )


# --- edge cases ----------------------------------------------------------------------------------


def test_no_money_no_return() -> None:
    days = [date(2026, 3, 2), date(2026, 3, 3)]
    for data in (history([], []), history(days, ["0", "0"])):
        answer = performance(data, closes("SPY", days, [1.0, 2.0]))
        assert answer.time_weighted_return is None and answer.money_weighted_return is None
        assert answer.start is None and answer.statistics.max_drawdown is None
        assert answer.explanation == NO_MONEY


def test_an_account_funded_mid_period_starts_at_its_first_money() -> None:
    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)]
    data = history(days, ["0", "5000", "5500", "5775"], ["0", "5000", "0", "0"])
    answer = performance(data, closes("SPY", days, [1.0, 1.0, 1.0, 1.0]))
    assert answer.start == days[1]
    assert answer.time_weighted_return == pytest.approx(0.155)
    assert answer.statistics.max_drawdown == Drawdown(0.0, None, None, None)


def test_without_the_benchmarks_prices_its_figures_are_none() -> None:
    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    answer = performance(history(days, ["100", "101", "99"]), {})
    assert answer.benchmark_return is None and answer.statistics.beta is None
    assert answer.time_weighted_return == pytest.approx(-0.01)
    assert "No daily prices for SPY" in answer.explanation


def test_the_benchmark_is_taken_on_or_before_each_day() -> None:
    """A crypto account's weekend points: the benchmark has no close, so it did not move."""
    days = [date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]  # Fri–Mon
    data = history(days, ["100", "102", "101", "103"])
    prices = closes(
        "SPY", [date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 9)], [9.0, 10.0, 11.0]
    )
    answer = performance(data, prices)
    assert answer.benchmark_return == pytest.approx(0.1)


def test_a_null_point_carries_its_flow_to_the_next() -> None:
    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    data = history(days, ["1000", None, "3300"], ["0", "2000", "0"])
    answer = performance(data, closes("SPY", days, [1.0, 1.0, 1.0]))
    assert answer.time_weighted_return == pytest.approx(0.3)  # (3300 − 2000) / 1000


# --- properties ----------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> PortfolioHistory:
    """Daily equity with random growth, and deposits or withdrawals that never empty it, on
    days one to three apart."""
    count = draw(st.integers(2, 40))
    gaps = draw(st.lists(st.integers(1, 3), min_size=count - 1, max_size=count - 1))
    days = [date(2025, 1, 6)]
    equity, flows = [Decimal("1000")], [Decimal(0)]
    for gap in gaps:
        grown = (equity[-1] * Decimal(repr(1 + draw(st.floats(-0.03, 0.03))))).quantize(CENT)
        flow = Decimal(draw(st.integers(-300, 2000)))
        flow = flow if grown + flow > 0 else Decimal(0)
        days.append(days[-1] + timedelta(days=gap))
        equity.append(grown + flow)
        flows.append(flow)
    return history(days, [str(value) for value in equity], [str(flow) for flow in flows])


@PROPERTIES
@given(data=histories())
def test_the_twr_is_the_charts_and_the_mwr_balances_the_money(data: PortfolioHistory) -> None:
    days = [moment.astimezone(NEW_YORK).date() for moment in data.timestamps]
    answer = performance(data, closes("SPY", days, list(np.linspace(100, 120, len(days)))))
    chart = summarize_history(data, HistoryPlan("MAX", {}))
    twr = answer.time_weighted_return * 100
    assert abs(twr - float(chart["time_weighted_return"])) <= 0.005 + 1e-9
    flows: dict[date, float] = {days[0]: -float(data.equity[0])}
    for day, amount in zip(days[1:], data.cashflow["CSD"][1:], strict=True):
        flows[day] = -float(amount)
    flows[days[-1]] += float(data.equity[-1])
    rate = answer.annualized_money_weighted_return
    assert rate is not None
    assert abs(npv(rate, flows)) <= 1e-6 * sum(abs(amount) for amount in flows.values())


@PROPERTIES
@given(
    start=st.decimals(min_value=1, max_value=10**6, places=2),
    ratio=st.floats(0.2, 5.0),
    span=st.integers(30, 1500),
)
def test_without_flows_money_and_time_weighted_returns_agree(
    start: Decimal, ratio: float, span: int
) -> None:
    days = [date(2023, 1, 2), date(2023, 1, 2) + timedelta(days=span)]
    end = (start * Decimal(repr(ratio))).quantize(Decimal("0.01"))
    answer = performance(history(days, [str(start), str(end)]), closes("SPY", days, [1.0, 1.0]))
    assert answer.money_weighted_return == pytest.approx(answer.time_weighted_return, rel=1e-6)
    assert answer.annualized_money_weighted_return == pytest.approx(
        answer.annualized_time_weighted_return, rel=1e-6
    )


def test_points_are_dated_by_their_new_york_day() -> None:
    moment = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # 00:00 New York, March 3
    data = PortfolioHistory(
        timestamps=(moment, moment + timedelta(days=1)),
        equity=(Decimal(100), Decimal(110)),
        profit_loss=(None, None),
        profit_loss_pct=(None, None),
        base_value=None,
        timeframe="1D",
        cashflow={},
    )
    answer = performance(data, closes("SPY", [date(2026, 3, 3), date(2026, 3, 4)], [1.0, 1.1]))
    assert (answer.start, answer.end) == (date(2026, 3, 3), date(2026, 3, 4))
    assert answer.excess_return == pytest.approx(0.0)
