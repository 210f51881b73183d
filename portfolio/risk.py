"""The risk of the current holdings, measured from their price history: the returns window
shared by every risk view, correlation, and the decomposition of the portfolio's volatility
(the efficient frontier is :mod:`portfolio.frontier`).

Pure functions on numpy/pandas: no Django, Redis or HTTP. The selectors
fetch the closes and the holdings, the presenters format these floats as strings. Every answer
carries the :class:`Conventions` it used and the dates of its window. ``docs/analytics.md``
works an example of each figure.

**Returns.** Daily simple returns of adjusted closes, rₜ = Pₜ / Pₜ₋₁ − 1, over the trailing
``window_days`` returns of the benchmark's trading days (the calendar). Crypto, which trades
every day, is sampled on that stock calendar: its close of each stock trading day, so a
weekend's move is part of Monday's return. A symbol without a close on a calendar day has no
return that day nor the next. The statistics use the **common dates**, the days on which every
measured holding and the benchmark have a return. A holding with fewer than
``min_history_days`` returns (or whose joining would leave fewer common days) is listed apart
as ``short_history`` with its count, never dropped silently; options are listed apart as
``option`` (their price history does not describe the position's risk).

**Annualisation.** Mean × ``periods_per_year``; volatility × √``periods_per_year``; the sample
covariance (ddof = 1) × ``periods_per_year``.

**Weights.** wᵢ = vᵢ / E, with vᵢ a holding's signed market value (a short is negative) and
E = cash + Σ vⱼ over every holding, options included: the account's equity. Cash is an asset of
zero volatility, so it has a weight (cash / E) but adds nothing to the risk; a holding listed
apart keeps its weight in the weight warnings and adds nothing to the volatility. With E ≤ 0
weights do not exist: the holdings' own volatilities, betas and correlations are still given.

**Decomposition.** σ = √(wᵀΣw) over the measured holdings; a holding's contribution
cᵢ = wᵢ(Σw)ᵢ / σ (the contributions add up to σ) and its risk share cᵢ / σ (the shares add up
to 1; a hedge's is negative). Beta against the benchmark is cov(rᵢ, r_b) / var(r_b) on the
common dates. Correlation is Pearson's, None where a series does not move.

**Warnings.** ``holding_weight``: |wᵢ| over ``max_weight``; ``sector_weight``: a sector's net
weight Σ wᵢ (its holdings, options included) over ``max_sector_weight`` in absolute value, for
holdings whose sector is known (a broad fund's ``sector`` is None: it is not one sector);
``risk_concentration``: a risk share over twice the holding's share of the money measured,
|wᵢ| / Σ|wⱼ| (cash apart, so that cash does not make every holding look concentrated).

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd

OPTION = "option"
SHORT_HISTORY = "short_history"
HOLDING_WEIGHT = "holding_weight"
SECTOR_WEIGHT = "sector_weight"
RISK_CONCENTRATION = "risk_concentration"


@dataclass(frozen=True)
class Conventions:
    """What the figures assume; each is an ``ANALYTICS_*`` setting with this default."""

    window_days: int = 252
    risk_free_rate: Decimal = Decimal("0.04")
    benchmark: str = "SPY"
    periods_per_year: int = 252
    max_weight: Decimal = Decimal("0.20")
    max_sector_weight: Decimal = Decimal("0.40")
    min_history_days: int = 60
    frontier_points: int = 30


class SupportsCloses(Protocol):
    """A symbol's adjusted daily closes in date order (``marketdata.market_history``)."""

    days: Sequence[date]
    closes: Sequence[Decimal]


#: Closes by symbol, or a frame of them (index: dates, columns: symbols).
Closes = pd.DataFrame | Mapping[str, SupportsCloses]


class MissingBenchmark(LookupError):
    """The benchmark, which is the calendar and the reference for beta, has no closes."""


@dataclass(frozen=True)
class Holding:
    """One position as the analytics see it: one record per symbol."""

    symbol: str
    market_value: Decimal  # signed: a short is negative
    sector: str | None  # None when not one sector (a broad fund, a bond fund, unclassified)
    is_option: bool = False


@dataclass(frozen=True)
class Excluded:
    """A holding left out of the statistics, and why."""

    symbol: str
    reason: str  # OPTION or SHORT_HISTORY
    days: int | None  # returns in the window (SHORT_HISTORY), else None


@dataclass(frozen=True)
class AlignedReturns:
    """The measured holdings' daily returns and the benchmark's, on their common dates."""

    returns: pd.DataFrame  # columns: the measured symbols, in the holdings' order
    benchmark: pd.Series
    excluded: tuple[Excluded, ...]

    @property
    def start(self) -> date | None:
        return self.returns.index[0].date() if len(self.returns) else None

    @property
    def end(self) -> date | None:
        return self.returns.index[-1].date() if len(self.returns) else None


@dataclass(frozen=True)
class HoldingRisk:
    symbol: str
    sector: str | None
    market_value: Decimal
    weight: float | None  # None when the equity is zero or less
    volatility: float  # annualised
    beta: float | None  # None when the benchmark did not move
    contribution: float | None  # to σ, in its units; None without weights
    risk_share: float | None  # contribution / σ; None when σ is 0 or undefined


@dataclass(frozen=True)
class RiskWarning:
    kind: str  # HOLDING_WEIGHT, SECTOR_WEIGHT or RISK_CONCENTRATION
    subject: str  # the symbol or the sector
    value: float  # the weight or the risk share
    limit: float


@dataclass(frozen=True)
class Correlation:
    symbols: tuple[str, ...]
    matrix: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class RiskReport:
    conventions: Conventions
    window_start: date | None  # the first and last day of the common returns
    window_end: date | None
    equity: Decimal  # cash + Σ market values: the weights' denominator
    volatility: float | None  # σ, annualised; None when it does not exist
    holdings: tuple[HoldingRisk, ...]  # the measured ones, in the order given
    cash: Decimal
    cash_weight: float | None
    correlation: Correlation
    excluded: tuple[Excluded, ...]
    warnings: tuple[RiskWarning, ...]
    explanation: str


def closes_frame(closes: Closes) -> pd.DataFrame:
    """Closes as floats in a frame: index the dates (ascending), columns the symbols."""
    if isinstance(closes, pd.DataFrame):
        frame = closes.copy()
    else:
        frame = pd.DataFrame(
            {
                symbol: pd.Series(
                    [float(close) for close in series.closes],
                    index=pd.DatetimeIndex(list(series.days)),
                    dtype=float,
                )
                for symbol, series in closes.items()
            }
        )
    frame.index = pd.DatetimeIndex(frame.index).as_unit("ns")  # one resolution, whatever came
    return frame.sort_index().astype(float)


def returns_frame(closes: Closes, calendar_symbol: str, window_days: int) -> pd.DataFrame:
    """Daily simple returns over the trailing ``window_days`` days of ``calendar_symbol``'s
    trading days: every symbol sampled on that calendar, NaN where a symbol has no close on
    the day or the one before. Raises :class:`MissingBenchmark` without calendar closes."""
    prices = closes_frame(closes)
    if calendar_symbol not in prices or not prices[calendar_symbol].notna().any():
        raise MissingBenchmark(f"no daily closes for the benchmark {calendar_symbol}")
    calendar = prices[calendar_symbol].dropna().index[-(window_days + 1) :]
    sampled = prices.reindex(calendar)
    return (sampled / sampled.shift(1) - 1).iloc[1:]


def aligned_returns(
    closes: Closes, symbols: Sequence[str], conventions: Conventions
) -> AlignedReturns:
    """The returns of ``symbols`` on their common dates with the benchmark's: the holdings
    with the longest histories first, each kept while at least ``min_history_days`` common
    days remain, the others listed apart as ``short_history``."""
    if not symbols:
        empty = pd.DataFrame(index=pd.DatetimeIndex([]), dtype=float)
        return AlignedReturns(empty, pd.Series(dtype=float), ())
    window = returns_frame(closes, conventions.benchmark, conventions.window_days)
    window = window.reindex(columns=list(dict.fromkeys([*symbols, conventions.benchmark])))
    days = window.count()
    common = window[conventions.benchmark].notna()
    kept: set[str] = set()
    excluded = []
    for symbol in sorted(symbols, key=lambda s: (-days[s], s)):
        joint = common & window[symbol].notna()
        if joint.sum() >= conventions.min_history_days:
            common = joint
            kept.add(symbol)
        else:
            excluded.append(Excluded(symbol, SHORT_HISTORY, int(days[symbol])))
    rows = window.loc[common]
    ordered = [symbol for symbol in symbols if symbol in kept]
    return AlignedReturns(rows[ordered], rows[conventions.benchmark], tuple(excluded))


def risk_report(
    holdings: Sequence[Holding],
    cash: Decimal,
    closes: Closes,
    conventions: Conventions | None = None,
) -> RiskReport:
    """Volatility, its decomposition, correlation and warnings of the current holdings."""
    conventions = conventions or Conventions()
    equity = cash + sum((h.market_value for h in holdings), Decimal(0))
    aligned, excluded = measured_returns(holdings, closes, conventions)
    measured = [h for h in holdings if h.symbol in aligned.returns.columns]
    returns = aligned.returns
    ppy = conventions.periods_per_year
    covariance = annual_covariance(returns, ppy)
    volatilities = returns.std(ddof=1) * np.sqrt(ppy)
    betas = _betas(returns, aligned.benchmark)
    measurable = equity > 0 and (measured or not holdings)  # cash alone is measured: 0
    weights = (
        pd.Series({h.symbol: float(h.market_value / equity) for h in measured}, dtype=float)
        if measurable
        else None
    )
    sigma, contributions = _decomposition(weights, covariance)
    rows = tuple(
        HoldingRisk(
            symbol=h.symbol,
            sector=h.sector,
            market_value=h.market_value,
            weight=None if weights is None else float(weights[h.symbol]),
            volatility=float(volatilities[h.symbol]),
            beta=betas[h.symbol],
            contribution=None if contributions is None else float(contributions[h.symbol]),
            risk_share=(
                None
                if contributions is None or not sigma
                else float(contributions[h.symbol] / sigma)
            ),
        )
        for h in measured
    )
    return RiskReport(
        conventions=conventions,
        window_start=aligned.start,
        window_end=aligned.end,
        equity=equity,
        volatility=sigma,
        holdings=rows,
        cash=cash,
        cash_weight=None if equity <= 0 else float(cash / equity),
        correlation=_correlation(returns),
        excluded=excluded,
        warnings=_warnings(holdings, equity, rows, conventions),
        explanation=_risk_explanation(holdings, cash, equity, rows, excluded),
    )


def measured_returns(
    holdings: Sequence[Holding], closes: Closes, conventions: Conventions
) -> tuple[AlignedReturns, tuple[Excluded, ...]]:
    """The non-option holdings' aligned returns, and every holding left out (options, then
    short histories)."""
    options = tuple(Excluded(h.symbol, OPTION, None) for h in holdings if h.is_option)
    aligned = aligned_returns(closes, [h.symbol for h in holdings if not h.is_option], conventions)
    return aligned, options + aligned.excluded


def annual_covariance(returns: pd.DataFrame, ppy: int) -> pd.DataFrame:
    """The sample covariance (ddof = 1) of daily returns, annualised."""
    return returns.cov(ddof=1) * ppy


def _betas(returns: pd.DataFrame, benchmark: pd.Series) -> dict[str, float | None]:
    variance = benchmark.var(ddof=1)
    if not variance > 0:
        return {symbol: None for symbol in returns.columns}
    return {
        symbol: float(returns[symbol].cov(benchmark, ddof=1) / variance)
        for symbol in returns.columns
    }


def _decomposition(
    weights: pd.Series | None, covariance: pd.DataFrame
) -> tuple[float | None, pd.Series | None]:
    """σ = √(wᵀΣw) and each contribution wᵢ(Σw)ᵢ / σ (zero when σ is 0)."""
    if weights is None:
        return None, None
    sigma = portfolio_volatility(weights.values, covariance.values)
    marginal = covariance.values @ weights.values
    parts = weights.values * marginal / sigma if sigma else np.zeros(len(weights))
    return sigma, pd.Series(parts, index=weights.index)


def portfolio_volatility(weights: np.ndarray, covariance: np.ndarray) -> float:
    """√(wᵀΣw), with a rounding error's negative variance taken as zero."""
    variance = float(weights @ covariance @ weights) if len(weights) else 0.0
    return float(np.sqrt(max(variance, 0.0)))


def _correlation(returns: pd.DataFrame) -> Correlation:
    matrix = returns.corr(method="pearson")
    return Correlation(
        symbols=tuple(returns.columns),
        matrix=tuple(
            tuple(None if np.isnan(value) else float(value) for value in row)
            for row in matrix.values
        ),
    )


def _warnings(
    holdings: Sequence[Holding],
    equity: Decimal,
    rows: Sequence[HoldingRisk],
    conventions: Conventions,
) -> tuple[RiskWarning, ...]:
    if equity <= 0:
        return ()
    found = []
    limit = float(conventions.max_weight)
    for h in holdings:
        weight = float(h.market_value / equity)
        if abs(weight) > limit:
            found.append(RiskWarning(HOLDING_WEIGHT, h.symbol, weight, limit))
    sectors: dict[str, Decimal] = {}
    for h in holdings:
        if h.sector is not None:
            sectors[h.sector] = sectors.get(h.sector, Decimal(0)) + h.market_value
    limit = float(conventions.max_sector_weight)
    for sector, value in sectors.items():
        weight = float(value / equity)
        if abs(weight) > limit:
            found.append(RiskWarning(SECTOR_WEIGHT, sector, weight, limit))
    gross = sum(abs(row.weight) for row in rows if row.weight is not None)
    for row in rows:
        if row.risk_share is not None and row.weight is not None and gross > 0:
            limit = 2 * abs(row.weight) / gross
            if row.risk_share > limit:
                found.append(RiskWarning(RISK_CONCENTRATION, row.symbol, row.risk_share, limit))
    return tuple(found)


def _risk_explanation(
    holdings: Sequence[Holding],
    cash: Decimal,
    equity: Decimal,
    rows: Sequence[HoldingRisk],
    excluded: Sequence[Excluded],
) -> str:
    if not holdings and cash == 0:
        return "Nothing to measure yet: your account holds no money and no investments."
    if equity <= 0:
        return (
            "Your equity is zero or less, so your holdings have no weights and the portfolio "
            "no volatility; each holding's own volatility, beta and correlations are shown."
        )
    if not holdings:
        return (
            "All your money is in cash, which does not swing with the market, so your "
            "portfolio's volatility is 0 %."
        )
    if not rows:
        return (
            "None of your holdings can be measured yet (options are left out, and a holding "
            "needs enough daily prices), so there is no volatility to show."
        )
    left_out = " Holdings listed apart are left out of it." if excluded else ""
    if len(rows) == 1:
        return (
            f"With one holding measured, all of your portfolio's volatility comes from "
            f"{rows[0].symbol}; cash adds none.{left_out}"
        )
    return (
        "Volatility is how much your portfolio's value typically swings in a year; each "
        "holding's risk share is the part of that swing it causes, and the shares add up to "
        f"100 %.{left_out}"
    )
