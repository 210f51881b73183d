"""Portfolio history: which Alpaca request answers a chart period, and the maths on its answer.

Planning (``plan_history``, ``plan_range``) turns a period or a date range into keyword
arguments for ``marketdata.broker.gateway().portfolio_history`` that Alpaca accepts:

* 1D → the last trading session in 5-minute bars; 1W → the last week in hourly bars. An
  account holding crypto trades around the clock, so it gets ``intraday_reporting=continuous``
  and a rolling 24 hours / 7 days instead of stock sessions;
* 1M, 3M, 6M, 1Y (Alpaca's ``1A``) → daily points; YTD → daily from January 1 (New York);
* MAX → daily from the account's creation (Alpaca has no MAX period);
* a range → daily, or hourly up to 7 days, 5-minute up to a day (Alpaca allows intraday
  timeframes for at most 30 days); it must start before it ends and before now, an end in the
  future means now, and a start before the account existed means its creation;
* ``pnl_reset=no_reset`` always: profit and loss accumulate over the whole chart.

Summarizing (``summarize_history``) reports gains **net of deposits and withdrawals**.
Alpaca's ``profit_loss`` (equity − base) and ``profit_loss_pct`` (equity / base − 1) count a
deposit as profit; ours do not. ``cashflow[type][i]`` is money that arrived after point
i − 1's valuation and is inside point i's equity, so with CFᵢ the external flows at point i:

* profit_loss at point i = Eᵢ − E₀ − (CF₁ + … + CFᵢ), E₀ the first non-null equity;
* each step's return rᵢ = (Eᵢ − CFᵢ) / Eᵢ₋₁ − 1, skipping steps that start with no equity
  (zero or less); the time-weighted return to point i is Π(1 + rⱼ) − 1, which is
  profit_loss_percent at point i and, at the last point, the period's return;
* a null equity point stays null and its flows carry over to the next point;
* external flows are the cash-flow types in ``EXTERNAL_FLOWS`` (deposits, withdrawals,
  journals, account transfers); dividends and fees are performance, not flows.

``net_steps`` gives each point's flow and step growth: the one definition both this summary
and the performance statistics (``portfolio.performance``) are built on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from marketdata.moments import iso
from marketdata.types import PortfolioHistory

from . import money

NEW_YORK = ZoneInfo("America/New_York")
ZERO = Decimal(0)
ONE = Decimal(1)

PERIODS = ("1D", "1W", "1M", "3M", "6M", "YTD", "1Y", "MAX")
#: Alpaca's period for each fixed-length choice, and the timeframe the chart uses.
FIXED_PERIODS = {
    "1D": ("1D", "5Min"),
    "1W": ("1W", "1H"),
    "1M": ("1M", "1D"),
    "3M": ("3M", "1D"),
    "6M": ("6M", "1D"),
    "1Y": ("1A", "1D"),
}
#: A crypto holder's short periods: rolling windows, since crypto never closes.
ROLLING = {"1D": timedelta(days=1), "1W": timedelta(weeks=1)}
DAILY = "1D"
#: Range timeframes: the finest whose span limit the range fits in.
RANGE_TIMEFRAMES = ((timedelta(days=1), "5Min"), (timedelta(days=7), "1H"))
CUSTOM = "custom"
NO_RESET = "no_reset"
#: Cash-flow activity types that move money into or out of the account from outside.
EXTERNAL_FLOWS = frozenset({"CSD", "CSW", "CSR", "JNLC", "JNLS", "ACATC", "ACATS"})


class InvalidPeriod(ValueError):
    """A period or range the history cannot answer; the message says what is valid."""


@dataclass(frozen=True)
class HistoryPlan:
    period_label: str
    params: dict


def plan_history(
    period: str, account_created_at: datetime, now: datetime, holds_crypto: bool
) -> HistoryPlan:
    """The Alpaca request for a chart period (one of ``PERIODS``, any case)."""
    label = period.strip().upper()
    if label not in PERIODS:
        raise InvalidPeriod(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    reporting = _reporting(holds_crypto)
    if holds_crypto and label in ROLLING:
        start = now - ROLLING[label]
        return _plan(label, start=start, timeframe=FIXED_PERIODS[label][1], reporting=reporting)
    if label in FIXED_PERIODS:
        alpaca_period, timeframe = FIXED_PERIODS[label]
        return _plan(label, period=alpaca_period, timeframe=timeframe, reporting=reporting)
    if label == "YTD":
        local = now.astimezone(NEW_YORK)
        start = datetime.combine(local.date().replace(month=1, day=1), time(0), NEW_YORK)
        start = max(start.astimezone(UTC), account_created_at)
    else:  # MAX
        start = account_created_at
    return _plan(label, start=min(start, now), timeframe=DAILY, reporting=reporting)


def plan_range(
    start: datetime,
    end: datetime,
    account_created_at: datetime,
    now: datetime,
    holds_crypto: bool,
) -> HistoryPlan:
    """The Alpaca request for a date range, validated (see the module docstring)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidPeriod("start and end must carry a time zone (e.g. 2025-01-02T00:00:00Z)")
    if start >= end:
        raise InvalidPeriod("start must be before end")
    if start >= now:
        raise InvalidPeriod("start must be in the past")
    if end <= account_created_at:
        raise InvalidPeriod(
            f"the account was opened at {iso(account_created_at)}; "
            "choose a range that ends after it"
        )
    start, end = max(start, account_created_at), min(end, now)
    span = end - start
    timeframe = next((tf for limit, tf in RANGE_TIMEFRAMES if span <= limit), DAILY)
    return _plan(
        CUSTOM, start=start, end=end, timeframe=timeframe, reporting=_reporting(holds_crypto)
    )


def summarize_history(
    history: PortfolioHistory, plan: HistoryPlan, all_time: PortfolioHistory | None = None
) -> dict:
    """The history endpoint's body: the series, the period's and all-time change net of flows."""
    performance = _performance(history)
    period = _change(performance)
    return {
        "period": plan.period_label,
        "timeframe": history.timeframe,
        "timestamps": [iso(moment) for moment in history.timestamps],
        "equity": [_money(value) for value in history.equity],
        "profit_loss": [_money(value) for value in performance.gains],
        "profit_loss_percent": [_percent(value) for value in performance.returns],
        "base_value": _money(performance.base),
        "period_change": period,
        "all_time_change": None if all_time is None else _change(_performance(all_time)),
        "time_weighted_return": period["percent"],
        "net_deposits": money.money(performance.deposited),
    }


def _plan(
    label: str,
    *,
    timeframe: str,
    reporting: str,
    period: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> HistoryPlan:
    return HistoryPlan(
        period_label=label,
        params={
            "period": period,
            "timeframe": timeframe,
            "start": start,
            "end": end,
            "intraday_reporting": reporting,
            "pnl_reset": NO_RESET,
        },
    )


def _reporting(holds_crypto: bool) -> str:
    return "continuous" if holds_crypto else "market_hours"


def _external_flows(history: PortfolioHistory) -> list[Decimal]:
    """Per point, the deposits less withdrawals booked since the previous point."""
    flows = [ZERO] * len(history.timestamps)
    for kind, amounts in history.cashflow.items():
        if kind.upper() in EXTERNAL_FLOWS:
            flows = [total + amount for total, amount in zip(flows, amounts, strict=True)]
    return flows


@dataclass(frozen=True)
class NetStep:
    """A non-null point of a history, net of external flows.

    ``flow`` is the external money booked since the previous non-null point (zero at the first
    one: what arrived before it is inside its equity, the base). ``growth`` is
    (Eᵢ − CFᵢ) / Eᵢ₋₁, one plus the step's return; None at the first point and after a point
    with no equity (zero or less), where a return does not exist.
    """

    at: datetime
    equity: Decimal
    flow: Decimal
    growth: Decimal | None


def net_steps(history: PortfolioHistory) -> tuple[NetStep | None, ...]:
    """Per point, the step net of flows (see the module docstring); None for a null point,
    whose flows carry over to the next non-null one."""
    steps: list[NetStep | None] = []
    previous: Decimal | None = None
    pending = ZERO
    points = zip(history.timestamps, history.equity, _external_flows(history), strict=True)
    for at, value, flow in points:
        if value is None:
            pending += flow
            steps.append(None)
            continue
        flow, pending = flow + pending, ZERO
        if previous is None:
            steps.append(NetStep(at, value, ZERO, None))
        else:
            growth = (value - flow) / previous if previous > 0 else None
            steps.append(NetStep(at, value, flow, growth))
        previous = value
    return tuple(steps)


@dataclass(frozen=True)
class _Performance:
    """Per point, the gain net of flows and the time-weighted return (a ratio) so far."""

    gains: list[Decimal | None]
    returns: list[Decimal | None]
    base: Decimal | None  # the first non-null equity
    deposited: Decimal  # external flows after the base, up to the last non-null point


def _performance(history: PortfolioHistory) -> _Performance:
    gains: list[Decimal | None] = []
    returns: list[Decimal | None] = []
    base = growth = None
    deposited = ZERO
    for step in net_steps(history):
        if step is None:
            gains.append(None)
            returns.append(None)
            continue
        if base is None:
            base = step.equity
        deposited += step.flow
        if step.growth is not None:
            growth *= step.growth
        if growth is None and step.equity > 0:
            growth = ONE
        gains.append(step.equity - base - deposited)
        returns.append(None if growth is None else growth - ONE)
    return _Performance(gains, returns, base, deposited)


def _change(performance: _Performance) -> dict:
    """At the last non-null point: the gain net of flows and the time-weighted return (%)."""
    gains, returns = performance.gains, performance.returns
    last = next((i for i in range(len(gains) - 1, -1, -1) if gains[i] is not None), None)
    if last is None:
        return {"amount": None, "percent": None}
    return {"amount": _money(gains[last]), "percent": _percent(returns[last])}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else money.money(value)


def _percent(ratio: Decimal | None) -> str | None:
    return None if ratio is None else money.percent(ratio * money.HUNDRED)
