"""The risk maths (portfolio/risk.py, portfolio/frontier.py): PyPortfolioOpt's published
reference results, the worked examples of docs/analytics.md, the edge cases, and properties
pinned with hypothesis."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypfopt import expected_returns, risk_models

from portfolio.frontier import EfficientSet, frontier
from portfolio.risk import (
    HOLDING_WEIGHT,
    OPTION,
    RISK_CONCENTRATION,
    SECTOR_WEIGHT,
    SHORT_HISTORY,
    Conventions,
    Excluded,
    Holding,
    MissingBenchmark,
    RiskWarning,
    aligned_returns,
    returns_frame,
    risk_report,
)

DATA = Path(__file__).resolve().parent / "data"
PROPERTIES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOLERANCE = 1e-6
#: The worked example of docs/analytics.md: annual mean returns, volatilities, correlations.
MEANS = {"AAA": 0.12, "BBB": 0.08, "SPY": 0.10}
VOLATILITIES = {"AAA": 0.30, "BBB": 0.20, "SPY": 0.16}
CORRELATIONS = {("AAA", "BBB"): 0.2, ("AAA", "SPY"): 0.8, ("BBB", "SPY"): 0.6}


def exact_closes(
    means: dict[str, float],
    volatilities: dict[str, float],
    correlations: dict[tuple[str, str], float],
    days: int = 252,
    seed: int = 7,
) -> pd.DataFrame:
    """Business-day closes whose daily returns have exactly the given annualised sample mean
    (× 252) and covariance (ddof = 1, × 252): random series, whitened, then coloured."""
    symbols = list(means)

    def correlation(a: str, b: str) -> float:
        return 1.0 if a == b else correlations.get((a, b), correlations.get((b, a), 0.0))

    sigma = np.array(
        [[volatilities[a] * volatilities[b] * correlation(a, b) for b in symbols] for a in symbols]
    )
    noise = np.random.default_rng(seed).standard_normal((days, len(symbols)))
    orthonormal, _ = np.linalg.qr(noise - noise.mean(axis=0))
    white = orthonormal * np.sqrt(days - 1)  # zero mean, identity sample covariance
    daily = white @ np.linalg.cholesky(sigma / 252).T + np.array(list(means.values())) / 252
    growth = np.vstack([np.ones(len(symbols)), np.cumprod(1 + daily, axis=0)])
    index = pd.bdate_range("2025-01-02", periods=days + 1)
    return pd.DataFrame(100 * growth, index=index, columns=symbols)


EXAMPLE = exact_closes(MEANS, VOLATILITIES, CORRELATIONS)
HOLDINGS = [
    Holding("AAA", Decimal("5000"), "Information Technology"),
    Holding("BBB", Decimal("3000"), "Utilities"),
    Holding("AAA261218C00250000", Decimal("400"), "Information Technology", is_option=True),
]


# --- PyPortfolioOpt's reference results -----------------------------------------------------


@pytest.fixture(scope="module")
def reference_set() -> EfficientSet:
    """PyPortfolioOpt's own test setup (tests/utilities_for_tests.py, setup_efficient_frontier):
    its sample prices, compounded mean historical returns, sample covariance, rf = 2 %."""
    prices = pd.read_csv(DATA / "pypfopt_stock_prices.csv", parse_dates=True, index_col="date")
    mu = expected_returns.mean_historical_return(prices)
    covariance = risk_models.sample_cov(prices)
    return EfficientSet(mu, covariance, risk_free_rate=0.02)


def figures(allocation) -> tuple[float, float, float]:
    return allocation.expected_return, allocation.volatility, allocation.sharpe


def test_min_volatility_is_pypfopts_reference(reference_set: EfficientSet) -> None:
    # tests/test_efficient_frontier.py::test_min_volatility
    expected = (0.15056821399482578, 0.15915084514118694, 0.8204054077060996)
    np.testing.assert_allclose(figures(reference_set.min_volatility), expected, atol=TOLERANCE)
    weights = [w for _, w in reference_set.min_volatility.weights]
    assert min(weights) >= -TOLERANCE and sum(weights) == pytest.approx(1)


def test_max_sharpe_is_pypfopts_reference(reference_set: EfficientSet) -> None:
    # tests/test_efficient_frontier.py::test_max_sharpe_long_only
    expected = (0.3047768672819914, 0.22165566922402932, 1.2847714127003216)
    np.testing.assert_allclose(figures(reference_set.max_sharpe), expected, atol=TOLERANCE)


def test_the_improvement_figures_are_pypfopts_efficient_risk_and_return(
    reference_set: EfficientSet,
) -> None:
    # tests/test_efficient_frontier.py::test_efficient_risk and ::test_efficient_return
    assert reference_set.return_at_volatility(0.19) == pytest.approx(0.2552422849133517, abs=1e-6)
    assert reference_set.volatility_at_return(0.25) == pytest.approx(
        0.18723269942026335, abs=TOLERANCE
    )
    assert reference_set.return_at_volatility(0.10) is None  # below the least volatility
    assert reference_set.volatility_at_return(float(reference_set.expected.max()) + 0.01) is None


def test_the_curve_runs_from_min_volatility_to_the_best_asset(reference_set: EfficientSet) -> None:
    points = reference_set.curve(12)
    assert len(points) == 12
    lowest = reference_set.min_volatility
    assert (points[0].volatility, points[0].expected_return) == (
        lowest.volatility,
        lowest.expected_return,
    )
    assert points[-1].expected_return == pytest.approx(reference_set.expected.max())
    returns = [p.expected_return for p in points]
    volatilities = [p.volatility for p in points]
    assert returns == sorted(returns)
    assert all(b >= a - TOLERANCE for a, b in zip(volatilities, volatilities[1:], strict=False))


# --- the worked example (docs/analytics.md) --------------------------------------------------


def test_the_example_closes_have_the_stated_moments() -> None:
    returns = returns_frame(EXAMPLE, "SPY", 252)
    assert len(returns) == 252
    np.testing.assert_allclose(returns.mean() * 252, list(MEANS.values()), atol=1e-12)
    np.testing.assert_allclose(returns.std() * np.sqrt(252), list(VOLATILITIES.values()))
    assert returns["AAA"].corr(returns["BBB"]) == pytest.approx(0.2)


def test_the_decomposition_worked_example() -> None:
    report = risk_report(HOLDINGS, Decimal("1600"), EXAMPLE)
    assert report.equity == Decimal("10000")
    assert report.cash_weight == pytest.approx(0.16)
    assert report.volatility == pytest.approx(np.sqrt(0.0297))  # 17.23 %
    aaa, bbb = report.holdings
    assert (aaa.weight, bbb.weight) == (0.5, 0.3)
    assert (aaa.volatility, bbb.volatility) == (pytest.approx(0.30), pytest.approx(0.20))
    assert (aaa.beta, bbb.beta) == (pytest.approx(1.5), pytest.approx(0.75))
    assert aaa.contribution == pytest.approx(0.0243 / np.sqrt(0.0297))
    assert (aaa.risk_share, bbb.risk_share) == (pytest.approx(9 / 11), pytest.approx(2 / 11))
    assert aaa.contribution + bbb.contribution == pytest.approx(report.volatility)
    assert report.correlation.symbols == ("AAA", "BBB")
    np.testing.assert_allclose(report.correlation.matrix, [[1, 0.2], [0.2, 1]])
    assert report.excluded == (Excluded("AAA261218C00250000", OPTION, None),)
    assert report.warnings == (
        RiskWarning(HOLDING_WEIGHT, "AAA", 0.5, 0.2),
        RiskWarning(HOLDING_WEIGHT, "BBB", 0.3, 0.2),
        RiskWarning(SECTOR_WEIGHT, "Information Technology", 0.54, 0.4),
    )
    assert (report.window_start, report.window_end) == (
        EXAMPLE.index[1].date(),
        EXAMPLE.index[-1].date(),
    )


def test_the_frontier_worked_example() -> None:
    answer = frontier(HOLDINGS, EXAMPLE, Conventions(frontier_points=5))
    assert answer.symbols == ("AAA", "BBB")
    lowest = answer.min_volatility
    assert lowest.volatility == pytest.approx(np.sqrt(0.003456 / 0.106), abs=TOLERANCE)
    assert dict(lowest.weights)["AAA"] == pytest.approx(0.028 / 0.106, abs=TOLERANCE)
    best = answer.max_sharpe
    assert dict(best.weights)["AAA"] == pytest.approx(34 / 67, abs=TOLERANCE)
    assert best.expected_return == pytest.approx(6.72 / 67, abs=TOLERANCE)
    assert best.sharpe == pytest.approx((6.72 / 67 - 0.04) / np.sqrt(174.528 / 4489), abs=1e-5)
    current = answer.current
    assert dict(current.weights) == {"AAA": 0.625, "BBB": 0.375}
    assert (current.expected_return, current.volatility) == (
        pytest.approx(0.105),
        pytest.approx(np.sqrt(0.04640625)),
    )
    # With two holdings, every long mix above the minimum-volatility one is on the curve.
    assert answer.return_at_current_volatility == pytest.approx(0.105, abs=TOLERANCE)
    assert answer.volatility_at_current_return == pytest.approx(current.volatility, abs=TOLERANCE)
    assert len(answer.points) == 5
    assert answer.points[-1].expected_return == pytest.approx(0.12)
    assert answer.points[-1].volatility == pytest.approx(0.30)
    assert answer.excluded == (Excluded("AAA261218C00250000", OPTION, None),)


# --- edge cases ------------------------------------------------------------------------------


def test_an_empty_account_is_a_valid_explained_answer() -> None:
    report = risk_report([], Decimal(0), {})
    assert report.volatility is None and report.holdings == () and report.warnings == ()
    assert report.correlation.symbols == () and report.window_start is None
    assert "no money and no investments" in report.explanation
    empty = frontier([], {})
    assert empty.points == () and empty.current is None and "at least two" in empty.explanation


def test_cash_only_has_zero_volatility() -> None:
    report = risk_report([], Decimal("2500"), {})
    assert report.volatility == 0.0 and report.cash_weight == 1.0
    assert "cash" in report.explanation


def test_one_holding_carries_all_the_risk() -> None:
    holdings = [Holding("AAA", Decimal("8000"), None)]
    report = risk_report(holdings, Decimal("2000"), EXAMPLE)
    (only,) = report.holdings
    assert report.volatility == pytest.approx(0.8 * 0.30)
    assert only.risk_share == pytest.approx(1.0)
    assert report.correlation.matrix == ((1.0,),)
    assert "AAA" in report.explanation
    answer = frontier(holdings, EXAMPLE)
    assert answer.points == () and answer.min_volatility is None
    assert answer.current.volatility == pytest.approx(0.30)
    assert "one is measured" in answer.explanation


def test_no_weights_when_the_equity_is_not_positive() -> None:
    holdings = [Holding("AAA", Decimal("-5000"), None), Holding("BBB", Decimal("1000"), None)]
    report = risk_report(holdings, Decimal("2000"), EXAMPLE)
    assert report.equity == Decimal("-2000") and report.volatility is None
    assert all(h.weight is None and h.risk_share is None for h in report.holdings)
    assert [h.beta for h in report.holdings] == [pytest.approx(1.5), pytest.approx(0.75)]
    assert report.warnings == () and "zero or less" in report.explanation


def test_a_short_hedge_has_a_negative_risk_share_and_shares_still_add_up() -> None:
    holdings = [Holding("AAA", Decimal("6000"), None), Holding("SPY", Decimal("-3000"), None)]
    report = risk_report(holdings, Decimal("7000"), EXAMPLE)
    shares = {h.symbol: h.risk_share for h in report.holdings}
    assert shares["SPY"] < 0 < shares["AAA"]
    assert sum(shares.values()) == pytest.approx(1.0)
    answer = frontier(holdings, EXAMPLE)
    assert "shorts" in answer.explanation


def test_a_holding_with_little_history_is_listed_apart_with_its_days() -> None:
    closes = EXAMPLE.copy()
    closes.loc[: closes.index[-41], "BBB"] = np.nan  # 40 closes: 39 returns
    report = risk_report(HOLDINGS[:2], Decimal(0), closes)
    assert [h.symbol for h in report.holdings] == ["AAA"]
    assert report.excluded == (Excluded("BBB", SHORT_HISTORY, 39),)
    unknown = risk_report([Holding("ZZZ", Decimal(100), None)], Decimal(0), EXAMPLE)
    assert unknown.excluded == (Excluded("ZZZ", SHORT_HISTORY, 0),)
    assert unknown.volatility is None and "None of your holdings" in unknown.explanation


def test_risk_concentration_compares_the_share_with_the_money_analysed() -> None:
    closes = exact_closes(
        {"AAA": 0.1, "BBB": 0.05, "CCC": 0.05, "SPY": 0.08},
        {"AAA": 0.60, "BBB": 0.05, "CCC": 0.05, "SPY": 0.16},
        {("AAA", "SPY"): 0.5, ("BBB", "SPY"): 0.2, ("CCC", "SPY"): 0.2},
    )
    holdings = [Holding(symbol, Decimal(1000), None) for symbol in ("AAA", "BBB", "CCC")]
    report = risk_report(holdings, Decimal(7000), closes, Conventions(max_weight=Decimal(1)))
    (warning,) = report.warnings
    assert (warning.kind, warning.subject) == (RISK_CONCENTRATION, "AAA")
    assert warning.limit == pytest.approx(2 / 3)  # twice a third of the money analysed
    assert warning.value == pytest.approx(0.36 / (0.36 + 2 * 0.0025))


def test_a_missing_benchmark_is_an_error_not_a_guess() -> None:
    with pytest.raises(MissingBenchmark):
        risk_report(HOLDINGS, Decimal(0), EXAMPLE.drop(columns="SPY"))


def test_no_max_sharpe_when_nothing_beats_the_risk_free_rate() -> None:
    answer = frontier(HOLDINGS, EXAMPLE, Conventions(risk_free_rate=Decimal("0.2")))
    assert answer.max_sharpe is None and answer.min_volatility is not None


def test_closes_can_come_as_days_and_decimal_closes() -> None:
    class Series:
        def __init__(self, column: pd.Series) -> None:
            self.days = tuple(day.date() for day in column.index)
            self.closes = tuple(Decimal(repr(value)) for value in column)

    mapping = {symbol: Series(EXAMPLE[symbol]) for symbol in EXAMPLE}
    pd.testing.assert_frame_equal(
        returns_frame(mapping, "SPY", 100), returns_frame(EXAMPLE, "SPY", 100), check_freq=False
    )


# --- properties ------------------------------------------------------------------------------


@st.composite
def markets(draw: st.DrawFn, size: int = 4) -> pd.DataFrame:
    """Random closes for SPY and ``size`` holdings over 120 business days."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    drift = rng.uniform(-0.001, 0.002, size + 1)
    scale = rng.uniform(0.005, 0.03, size + 1)
    factor = rng.standard_normal((120, 1))
    daily = drift + scale * (0.6 * factor + 0.8 * rng.standard_normal((120, size + 1)))
    growth = np.vstack([np.ones(size + 1), np.cumprod(1 + daily, axis=0)])
    columns = ["SPY", *(f"S{i}" for i in range(size))]
    return pd.DataFrame(
        growth * 50, index=pd.bdate_range("2026-01-05", periods=121), columns=columns
    )


values = st.decimals(min_value=-5000, max_value=20000, places=2)
SMALL = Conventions(min_history_days=60, frontier_points=5)


@PROPERTIES
@given(market=markets(), held=st.lists(values, min_size=4, max_size=4), cash=values)
def test_risk_shares_add_up_to_one(
    market: pd.DataFrame, held: list[Decimal], cash: Decimal
) -> None:
    holdings = [Holding(f"S{i}", value, None) for i, value in enumerate(held)]
    report = risk_report(holdings, cash, market, SMALL)
    if report.volatility:
        assert sum(h.risk_share for h in report.holdings) == pytest.approx(1.0)
        assert sum(h.contribution for h in report.holdings) == pytest.approx(report.volatility)
        weights = np.array([h.weight for h in report.holdings])
        returns = market.pct_change().iloc[1:][[h.symbol for h in report.holdings]]
        direct = np.sqrt(weights @ (returns.cov().to_numpy() * 252) @ weights)
        assert report.volatility == pytest.approx(direct)


@PROPERTIES
@given(
    market=markets(size=3),
    held=st.lists(st.decimals(min_value=1, max_value=20000, places=2), min_size=3, max_size=3),
)
def test_the_current_portfolio_lies_on_or_inside_the_frontier(
    market: pd.DataFrame, held: list[Decimal]
) -> None:
    holdings = [Holding(f"S{i}", value, None) for i, value in enumerate(held)]
    answer = frontier(holdings, market, SMALL)
    current = answer.current
    assert answer.return_at_current_volatility >= current.expected_return - TOLERANCE
    assert answer.volatility_at_current_return <= current.volatility + TOLERANCE
    assert answer.min_volatility.volatility <= current.volatility + TOLERANCE
    assert current.expected_return <= answer.points[-1].expected_return + TOLERANCE


@st.composite
def calendars(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """A stock calendar (SPY on business days), a coin every day, a stock with gaps."""
    stock_days = pd.bdate_range("2026-01-05", periods=draw(st.integers(5, 60)))
    every_day = pd.date_range(stock_days[0], stock_days[-1])
    spy = pd.Series(np.linspace(400, 450, len(stock_days)), index=stock_days)
    coin = pd.Series(np.linspace(90_000, 80_000, len(every_day)), index=every_day)
    missing = draw(st.sets(st.integers(0, len(stock_days) - 1), max_size=len(stock_days)))
    gappy = pd.Series(np.linspace(10, 20, len(stock_days)), index=stock_days).drop(
        stock_days[sorted(missing)]
    )
    frame = pd.DataFrame({"SPY": spy, "BTC/USD": coin, "GAP": gappy})
    return frame, draw(st.integers(1, 70))


@PROPERTIES
@given(calendar=calendars())
def test_returns_are_sampled_on_the_benchmark_calendar(calendar: tuple[pd.DataFrame, int]) -> None:
    closes, window = calendar
    returns = returns_frame(closes, "SPY", window)
    stock_days = closes["SPY"].dropna().index
    assert list(returns.index) == list(stock_days[-(window + 1) :][1:])
    for day, previous in zip(
        returns.index, stock_days[stock_days.get_indexer(returns.index) - 1], strict=True
    ):
        coin = closes["BTC/USD"]
        assert returns.at[day, "BTC/USD"] == pytest.approx(coin[day] / coin[previous] - 1)
        gap = closes["GAP"]
        if pd.isna(gap.get(day)) or pd.isna(gap.get(previous)):
            assert np.isnan(returns.at[day, "GAP"])
        else:
            assert returns.at[day, "GAP"] == pytest.approx(gap[day] / gap[previous] - 1)


@PROPERTIES
@given(calendar=calendars(), minimum=st.integers(1, 40))
def test_alignment_keeps_common_days_and_lists_the_rest(
    calendar: tuple[pd.DataFrame, int], minimum: int
) -> None:
    closes, window = calendar
    conventions = replace(SMALL, window_days=window, min_history_days=minimum)
    aligned = aligned_returns(closes, ["GAP", "BTC/USD"], conventions)
    kept = list(aligned.returns.columns)
    assert not aligned.returns.isna().any().any()
    if kept:
        assert len(aligned.returns) >= minimum
    assert sorted(kept + [e.symbol for e in aligned.excluded]) == ["BTC/USD", "GAP"]
    everything = returns_frame(closes, "SPY", window)
    for excluded in aligned.excluded:
        assert excluded.reason == SHORT_HISTORY
        assert excluded.days == everything[excluded.symbol].count()
    assert aligned.benchmark.index.equals(aligned.returns.index)
