"""The efficient frontier of the current holdings, with the current portfolio placed on it.

Long-only, fully invested portfolios of the measured holdings (cash and options apart; the
returns window and its exclusions are :mod:`portfolio.risk`'s), from annualised mean returns
and the sample covariance, each question solved by PyPortfolioOpt's ``EfficientFrontier``:
``frontier_points`` points of least volatility for returns evenly spaced from the
minimum-volatility portfolio's to the best holding's (all in it); the minimum-volatility and
maximum-Sharpe portfolios; the current portfolio (the measured holdings' weights rescaled to add
up to 1); the highest return reachable at the current volatility and the least volatility
reaching the current return, None when out of reach. Sharpe = (return − risk_free_rate) /
volatility, all annual. Fewer than two measured holdings: no curve, explained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier
from pypfopt.exceptions import OptimizationError

from .risk import (
    Closes,
    Conventions,
    Excluded,
    Holding,
    annual_covariance,
    measured_returns,
    portfolio_volatility,
)

#: The frontier is a set of portfolios of long holdings that spend everything.
LONG_ONLY = (0.0, 1.0)
#: An interior-point solver: cvxpy's default for these problems (OSQP, first-order) can stop
#: short ("inaccurate") on holdings that move almost together; Clarabel solves them to 1e-8.
SOLVER = "CLARABEL"


@dataclass(frozen=True)
class FrontierPoint:
    volatility: float
    expected_return: float


@dataclass(frozen=True)
class Allocation:
    """A portfolio of the measured holdings: its annualised figures and weights."""

    volatility: float
    expected_return: float
    sharpe: float | None  # None when the volatility is 0
    weights: tuple[tuple[str, float], ...] = field(default=())


@dataclass(frozen=True)
class Frontier:
    conventions: Conventions
    window_start: date | None
    window_end: date | None
    symbols: tuple[str, ...]
    points: tuple[FrontierPoint, ...]  # from minimum volatility to maximum return
    current: Allocation | None
    min_volatility: Allocation | None
    max_sharpe: Allocation | None  # None when no holding beats the risk-free rate
    return_at_current_volatility: float | None
    volatility_at_current_return: float | None
    excluded: tuple[Excluded, ...]
    explanation: str


def frontier(
    holdings: Sequence[Holding], closes: Closes, conventions: Conventions | None = None
) -> Frontier:
    """The efficient frontier of the current holdings with the current portfolio on it."""
    conventions = conventions or Conventions()
    aligned, excluded = measured_returns(holdings, closes, conventions)
    returns = aligned.returns
    symbols = tuple(returns.columns)
    ppy = conventions.periods_per_year
    expected = returns.mean() * ppy
    covariance = annual_covariance(returns, ppy)
    values = pd.Series({h.symbol: float(h.market_value) for h in holdings}, dtype=float)
    invested = float(values.reindex(list(symbols)).sum()) if symbols else 0.0
    current = None
    if invested > 0:
        current = _allocation(
            values[list(symbols)] / invested,
            expected,
            covariance,
            float(conventions.risk_free_rate),
        )
    answer = dict(
        conventions=conventions,
        window_start=aligned.start,
        window_end=aligned.end,
        symbols=symbols,
        current=current,
        excluded=excluded,
    )
    if len(symbols) < 2:
        return Frontier(
            **answer,
            points=(),
            min_volatility=None,
            max_sharpe=None,
            return_at_current_volatility=None,
            volatility_at_current_return=None,
            explanation=_frontier_explanation(len(symbols), current),
        )
    efficient = EfficientSet(expected, covariance, float(conventions.risk_free_rate))
    return Frontier(
        **answer,
        points=efficient.curve(conventions.frontier_points),
        min_volatility=efficient.min_volatility,
        max_sharpe=efficient.max_sharpe,
        return_at_current_volatility=(
            None if current is None else efficient.return_at_volatility(current.volatility)
        ),
        volatility_at_current_return=(
            None if current is None else efficient.volatility_at_return(current.expected_return)
        ),
        explanation=_frontier_explanation(len(symbols), current),
    )


class EfficientSet:
    """The long-only, fully invested portfolios of some assets, from their annualised expected
    returns and covariance (PyPortfolioOpt's ``EfficientFrontier`` solves each question)."""

    def __init__(self, expected: pd.Series, covariance: pd.DataFrame, risk_free_rate: float):
        self.expected = expected
        self.covariance = covariance
        self.risk_free_rate = risk_free_rate

    @cached_property
    def min_volatility(self) -> Allocation:
        optimizer = self._optimizer()
        optimizer.min_volatility()
        return self._result(optimizer)

    @cached_property
    def max_sharpe(self) -> Allocation | None:
        """None when no asset's expected return beats the risk-free rate."""
        if self.expected.max() <= self.risk_free_rate:
            return None
        optimizer = self._optimizer()
        optimizer.max_sharpe(risk_free_rate=self.risk_free_rate)
        return self._result(optimizer)

    def curve(self, points: int) -> tuple[FrontierPoint, ...]:
        """``points`` least-volatility portfolios for returns evenly spaced from the
        minimum-volatility portfolio's to the highest asset's (all in that asset)."""
        lowest = self.min_volatility
        bottom = FrontierPoint(lowest.volatility, lowest.expected_return)
        best = self.expected.idxmax()
        top = FrontierPoint(
            float(np.sqrt(self.covariance.loc[best, best])), float(self.expected[best])
        )
        if top.expected_return <= bottom.expected_return:
            return (bottom,)
        targets = np.linspace(bottom.expected_return, top.expected_return, points)[1:-1]
        optimizer = self._optimizer()
        middle = []
        for target in targets:
            optimizer.efficient_return(float(target))
            middle.append(self._point(optimizer))
        return (bottom, *middle, top)

    def return_at_volatility(self, volatility: float) -> float | None:
        """The highest return at most ``volatility`` reaches; None below the least volatility."""
        point = self._efficient(EfficientFrontier.efficient_risk, volatility)
        return None if point is None else point.expected_return

    def volatility_at_return(self, target: float) -> float | None:
        """The least volatility earning at least ``target``; None above the highest return."""
        point = self._efficient(EfficientFrontier.efficient_return, target)
        return None if point is None else point.volatility

    def _efficient(
        self, question: Callable[[EfficientFrontier, float], object], target: float
    ) -> FrontierPoint | None:
        """The portfolio ``question`` (``efficient_risk`` or ``efficient_return``) picks for
        ``target``; None when the frontier does not reach it (the solver refuses)."""
        optimizer = self._optimizer()
        try:
            question(optimizer, float(target))
        except (ValueError, OptimizationError):
            return None
        return self._point(optimizer)

    def _optimizer(self) -> EfficientFrontier:
        return EfficientFrontier(
            self.expected, self.covariance, weight_bounds=LONG_ONLY, solver=SOLVER
        )

    def _result(self, optimizer: EfficientFrontier) -> Allocation:
        weights = pd.Series(optimizer.weights, index=self.expected.index)
        return _allocation(weights, self.expected, self.covariance, self.risk_free_rate)

    def _point(self, optimizer: EfficientFrontier) -> FrontierPoint:
        allocation = self._result(optimizer)
        return FrontierPoint(allocation.volatility, allocation.expected_return)


def _allocation(
    weights: pd.Series, expected: pd.Series, covariance: pd.DataFrame, risk_free_rate: float
) -> Allocation:
    """A portfolio's annualised return w·μ, volatility √(wᵀΣw) and Sharpe ratio."""
    w = weights.values
    expected_return = float(w @ expected.values)
    volatility = portfolio_volatility(w, covariance.values)
    return Allocation(
        volatility=volatility,
        expected_return=expected_return,
        sharpe=(expected_return - risk_free_rate) / volatility if volatility > 0 else None,
        weights=tuple((symbol, float(weight)) for symbol, weight in weights.items()),
    )


def _frontier_explanation(measured: int, current: Allocation | None) -> str:
    if measured < 2:
        return (
            "An efficient frontier needs at least two holdings with enough daily prices "
            f"(options and cash apart); {'one is' if measured == 1 else 'none is'} measured."
        )
    shorts = (
        ""
        if current is None or min(w for _, w in current.weights) >= 0
        else (
            " Your shorts put the current portfolio outside these long-only mixes, so it can lie "
            "beyond the curve."
        )
    )
    return (
        "Each point is the least volatile mix of your current holdings for its expected "
        "return, estimated from their daily prices over the window." + shorts
    )
