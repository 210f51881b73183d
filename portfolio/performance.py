"""The statistics investors compare over a daily history: time- and money-weighted returns,
volatility, maximum drawdown, Sharpe, Sortino, and beta and alpha against a benchmark.

Pure functions on numpy/pandas, empyrical-reloaded (volatility, drawdown, Sharpe, Sortino,
alpha, beta) and pyxirr (XIRR): no Django, Redis or HTTP. Floats out; the presenters format
them. ``docs/analytics.md`` works an example of each.

**The steps.** A daily history's steps net of deposits and withdrawals are exactly those of the
history chart (:func:`portfolio.history.net_steps`): rₜ = (Eₜ − CFₜ) / Eₜ₋₁ − 1. The period
starts at the first point with money in the account (equity > 0) and ends at its last point;
each point's day is its New York date. A step from no equity has no return (left out).

**Time-weighted return (TWR)**: Π(1 + rₜ) − 1 over the period, the history chart's figure;
annualised (1 + TWR)^(365 / days) − 1, with ``days`` the calendar days of the period.

**Money-weighted return (MWR)**: the annual rate that makes the money in and out worth
nothing at the start (XIRR, actual/365 days, pyxirr). From the investor's side: the starting
equity is paid in (negative), each deposit is paid in (negative) and each withdrawal received
(positive) on its day, and the ending equity is received (positive) on the last day. The
period's MWR is that rate over the period: (1 + XIRR)^(days / 365) − 1.

**Risk statistics** on the daily returns, with ``periods_per_year`` days a year and the
risk-free rate per day rf_d = ``risk_free_rate`` / ``periods_per_year`` (simple, so that
Sharpe = (annual mean − rf) / annual volatility, the frontier's definition):

* volatility: sample standard deviation (ddof = 1) × √periods_per_year;
* maximum drawdown: the deepest fall of the growth index Π(1 + rₜ) from a previous high (the
  start counts as one), with the day of that high (peak), of the low (trough) and of the first
  return to the high (recovered, None if not yet);
* Sharpe: mean(r − rf_d) / std(r − rf_d) × √periods_per_year;
* Sortino: mean(r − rf_d) × periods_per_year / (√mean(min(r − rf_d, 0)²) × √periods_per_year);
* beta: cov(r − rf_d, b − rf_d) / var(b − rf_d) against the benchmark's returns b over the
  same steps (its close on or before each point's day); alpha: the mean daily excess return
  not explained by beta, compounded to a year, (1 + mean(r − rf_d − β(b − rf_d)))^ppy − 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import empyrical
import numpy as np
import pandas as pd
from pyxirr import xirr

from marketdata.types import PortfolioHistory

from .history import NEW_YORK, NetStep, net_steps
from .risk import Closes, Conventions, closes_frame

DAYS_PER_YEAR = 365

TIME_WEIGHTED_EXPLANATION = (
    "Time-weighted return: how your investments did, leaving out when and how much money you "
    "put in or took out, so it compares with the benchmark and with funds."
)
MONEY_WEIGHTED_EXPLANATION = (
    "Money-weighted return: the yearly interest rate your own deposits and withdrawals "
    "actually earned, so money added before a rise counts more than money added after it."
)
NO_MONEY = "No money was in the account over this period, so there is no return to measure."


@dataclass(frozen=True)
class Drawdown:
    depth: float  # the fall from the peak, as a (negative) ratio; 0.0 without a fall
    peak: date | None  # None without a fall, or when the start was the high
    trough: date | None
    recovered: date | None  # None while below the peak


@dataclass(frozen=True)
class ReturnStatistics:
    """Statistics of daily returns; None where too few returns define them."""

    volatility: float | None
    max_drawdown: Drawdown | None
    sharpe: float | None
    sortino: float | None
    beta: float | None
    alpha: float | None


@dataclass(frozen=True)
class Performance:
    conventions: Conventions
    start: date | None
    end: date | None
    time_weighted_return: float | None
    money_weighted_return: float | None
    annualized_time_weighted_return: float | None
    annualized_money_weighted_return: float | None
    benchmark_return: float | None  # over the same steps
    excess_return: float | None  # TWR − the benchmark's return
    statistics: ReturnStatistics
    explanation: str


def return_statistics(
    returns: pd.Series, benchmark: pd.Series | None, conventions: Conventions | None = None
) -> ReturnStatistics:
    """The risk statistics of daily ``returns`` (indexed by day; NaN: no return that day, as
    for the start) against ``benchmark``'s returns on the same days."""
    conventions = conventions or Conventions()
    ppy = conventions.periods_per_year
    rf = float(conventions.risk_free_rate) / ppy
    values = returns.astype(float)
    alpha = beta = None
    if benchmark is not None:
        alpha, beta = empyrical.alpha_beta(
            values, benchmark.reindex(values.index).astype(float), risk_free=rf, annualization=ppy
        )
    return ReturnStatistics(
        volatility=_finite(empyrical.annual_volatility(values, annualization=ppy)),
        max_drawdown=drawdown(values),
        sharpe=_finite(empyrical.sharpe_ratio(values, risk_free=rf, annualization=ppy)),
        sortino=_finite(empyrical.sortino_ratio(values, required_return=rf, annualization=ppy)),
        beta=_finite(beta),
        alpha=_finite(alpha),
    )


def drawdown(returns: pd.Series) -> Drawdown | None:
    """The maximum drawdown of daily ``returns`` and its days; None without returns."""
    if not returns.notna().any():
        return None
    growth = (1 + returns.fillna(0)).cumprod()
    high = growth.cummax().clip(lower=1.0)  # the start, at 1, is a high too
    depth = growth / high - 1
    if not depth.min() < 0:
        return Drawdown(0.0, None, None, None)
    trough = depth.idxmin()
    before = growth.loc[:trough]
    peak = before[::-1].idxmax() if before.max() >= 1.0 else None
    level = high.loc[trough]
    after = growth.loc[trough:]
    recovered = after.index[after >= level]
    return Drawdown(
        depth=float(empyrical.max_drawdown(returns)),
        peak=None if peak is None else _day(peak),
        trough=_day(trough),
        recovered=_day(recovered[0]) if len(recovered) else None,
    )


def performance(
    history: PortfolioHistory, closes: Closes, conventions: Conventions | None = None
) -> Performance:
    """The period's statistics of a daily history against ``conventions.benchmark``, whose
    closes ``closes`` holds (from on or before the history's first day); without them the
    benchmark's figures are None."""
    conventions = conventions or Conventions()
    steps = _period(history)
    if not steps:
        return Performance(
            conventions=conventions,
            start=None,
            end=None,
            time_weighted_return=None,
            money_weighted_return=None,
            annualized_time_weighted_return=None,
            annualized_money_weighted_return=None,
            benchmark_return=None,
            excess_return=None,
            statistics=return_statistics(pd.Series(dtype=float), None, conventions),
            explanation=NO_MONEY,
        )
    days = [_day(step.at) for step in steps]
    index = pd.DatetimeIndex(days)
    returns = pd.Series(
        [np.nan] + [np.nan if s.growth is None else float(s.growth) - 1 for s in steps[1:]],
        index=index,
    )
    benchmark = _benchmark_returns(closes, conventions.benchmark, index)
    span = (days[-1] - days[0]).days
    growth = [s.growth for s in steps[1:] if s.growth is not None]
    twr = float(math.prod(growth, start=Decimal(1)) - 1)
    rate = money_weighted_rate(steps)
    bench_return = None
    if benchmark is not None and benchmark.notna().any():
        bench_return = float((1 + benchmark.fillna(0)).prod() - 1)
    return Performance(
        conventions=conventions,
        start=days[0],
        end=days[-1],
        time_weighted_return=twr,
        money_weighted_return=(
            None if rate is None or not span else _compounded(rate, span / DAYS_PER_YEAR)
        ),
        annualized_time_weighted_return=_annualized(twr, span),
        annualized_money_weighted_return=rate,
        benchmark_return=bench_return,
        excess_return=None if bench_return is None else twr - bench_return,
        statistics=return_statistics(returns, benchmark, conventions),
        explanation=_explanation(span, benchmark, conventions),
    )


def money_weighted_rate(steps: Sequence[NetStep]) -> float | None:
    """XIRR of the steps' money from the investor's side (see the module docstring): the
    first step's equity paid in, each later flow paid in (deposit) or received (withdrawal),
    the last step's equity received. None when no rate balances them."""
    amounts: dict[date, float] = {}
    for i, step in enumerate(steps):
        paid = step.equity if i == 0 else step.flow
        day = _day(step.at)
        amounts[day] = amounts.get(day, 0.0) - float(paid)
    last = _day(steps[-1].at)
    amounts[last] = amounts.get(last, 0.0) + float(steps[-1].equity)
    if len(amounts) < 2:
        return None
    rate = xirr(list(amounts), list(amounts.values()), silent=True)
    return _finite(rate)


def _period(history: PortfolioHistory) -> list[NetStep]:
    """The non-null steps from the first with money in the account."""
    steps = [step for step in net_steps(history) if step is not None]
    first = next((i for i, step in enumerate(steps) if step.equity > 0), None)
    return [] if first is None else steps[first:]


def _benchmark_returns(closes: Closes, symbol: str, index: pd.DatetimeIndex) -> pd.Series | None:
    """The benchmark's return over each step: its close on or before the step's day over its
    close on or before the previous step's; NaN at the start."""
    prices = closes_frame(closes)
    if symbol not in prices:
        return None
    series = prices[symbol].dropna()
    on_day = series.reindex(series.index.union(index)).ffill().reindex(index)
    return on_day / on_day.shift(1) - 1


def _annualized(period_return: float, span: int) -> float | None:
    """The yearly rate of a period's return; None for a day, or one too large for a float."""
    if not span or period_return <= -1:
        return None
    return _compounded(period_return, DAYS_PER_YEAR / span)


def _compounded(rate: float, years: float) -> float | None:
    with np.errstate(over="ignore"):
        return _finite(np.power(1 + rate, years) - 1)


def _finite(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def _day(moment: object) -> date:
    """A point's New York day; a day stays itself."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(NEW_YORK)
    return stamp.date()


def _explanation(span: int, benchmark: pd.Series | None, conventions: Conventions) -> str:
    if benchmark is None:
        return (
            f"No daily prices for {conventions.benchmark}, so the comparison with it (beta, "
            "alpha, excess return) is not available."
        )
    if not span:
        return "One day of history: returns need at least two days."
    return (
        f"Measured net of deposits and withdrawals, against {conventions.benchmark} over the "
        "same days."
    )
