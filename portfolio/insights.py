"""The risk views and the statistics investors compare: the bodies of ``/api/portfolio/risk``,
``/frontier``, ``/performance`` and the history chart's benchmark line.

Reads only. An account's holdings are valued as every other answer values them
(:func:`portfolio.selectors.valued_holdings`); daily closes come through the gateway
(:func:`marketdata.market_history.daily_closes`, cached per symbol and day); the maths is
:mod:`portfolio.risk` and :mod:`portfolio.performance`, with the conventions of the
``ANALYTICS_*`` settings, which every answer states. Figures go out as strings: percentages
and ratios per :mod:`portfolio.money`, days as ``YYYY-MM-DD``.

The maths (``risk``, ``frontier``, ``performance``) is imported on first use: pandas, cvxpy
and empyrical take seconds and ~80 MB to load, which the processes that never answer these
(the calculator, the consumers, Celery) should not pay. A web process loads them in the
background as it starts (:func:`preload`, from ``clera.asgi``), so its first risk view does
not wait for them.

Each answer is cached per account for ``ANALYTICS_CACHE_TTL`` seconds (daily statistics: the
warm answer is a cache read); the cache fails open (:mod:`portfolio.cache`).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings

from marketdata.market_history import DailyCloses, daily_closes, last_completed_day
from marketdata.moments import parse
from marketdata.price_cache import canonical_symbol

from . import cache, money, selectors
from .classification import classify
from .errors import InvalidParameter
from .history import NEW_YORK

if TYPE_CHECKING:
    from .frontier import Allocation
    from .risk import Conventions, Excluded, Holding

#: History periods the statistics answer: daily points only (1D and 1W are intraday).
PERFORMANCE_PERIODS = ("1M", "3M", "6M", "YTD", "1Y", "MAX")
#: Calendar days fetched before a first day, so a close on or before it is there (holidays).
_LOOKBACK = timedelta(days=10)
#: Trading days per calendar day, low (holidays): how far back a window of closes reaches.
_TRADING_DAYS_PER_CALENDAR_DAY = 0.66
#: Categories that are not one sector (their look-through spreads over many).
_NOT_ONE_SECTOR = frozenset({"etf_broad", "etf_bond"})
_DISCLAIMER = (
    "Past returns do not predict future ones: the frontier is drawn from the last year's "
    "prices of what you hold, not from forecasts, and is not advice."
)
_EXCLUDED_MESSAGES = {
    "option": "{symbol} is an option: its price history does not describe the position's risk.",
    "short_history": "{symbol} has {days} days of price history in the window, fewer than the "
    "{minimum} the statistics need.",
}
_WARNING_MESSAGES = {
    "holding_weight": "{subject} is {value} % of your portfolio, over the {limit} % limit.",
    "sector_weight": "{subject} is {value} % of your portfolio, over the {limit} % limit for "
    "one sector.",
    "risk_concentration": "{subject} carries {value} % of your portfolio's risk, over "
    "{limit} %: twice its share of what is invested.",
}


def with_benchmark(body: dict, symbol: str) -> dict:
    """The history body with ``symbol``'s daily closes as a series beside the equity: rebased
    to the account's first value, the benchmark's return over the chart and the account's
    excess return (its time-weighted return less the benchmark's, in percentage points).

    Each point takes the benchmark's close of its New York day, or of the last trading day
    before it, so an intraday chart's line steps once a day. Raises ``InvalidParameter`` when
    the broker has no daily prices for ``symbol``.
    """
    days = [parse(moment).astimezone(NEW_YORK).date() for moment in body["timestamps"]]
    equity = [None if value is None else Decimal(value) for value in body["equity"]]
    first = next((i for i, value in enumerate(equity) if value is not None), None)
    series: dict = {"symbol": symbol, "values": [None] * len(days), "return": None}
    if first is not None:
        closes = daily_closes([symbol], days[first] - _LOOKBACK, days[-1]).get(symbol)
        if closes is None or not closes.days:
            raise _no_benchmark(symbol)
        on_day = [_close_on(closes, day) for day in days]
        base = on_day[first]
        if base is not None and base > 0:
            last = max(i for i, close in enumerate(on_day) if close is not None)
            series["values"] = [
                None if i < first or close is None else money.money(equity[first] * close / base)
                for i, close in enumerate(on_day)
            ]
            series["return"] = money.share_percent(on_day[last] / base - 1)
    excess = None
    if series["return"] is not None and body.get("time_weighted_return") is not None:
        excess = money.percent(Decimal(body["time_weighted_return"]) - Decimal(series["return"]))
    return {**body, "benchmark": {**series, "excess_return": excess}}


def _close_on(closes: DailyCloses, day: date) -> Decimal | None:
    """The close of ``day``, or of the last day before it that has one."""
    index = bisect_right(closes.days, day) - 1
    return closes.closes[index] if index >= 0 else None


def conventions_json(window: tuple[date, date] | None, benchmark: str) -> dict:
    """What every answer says it assumed."""
    return {
        "window_days": settings.ANALYTICS_WINDOW_DAYS,
        "window_start": None if window is None else window[0].isoformat(),
        "window_end": None if window is None else window[1].isoformat(),
        "annualization": 252,
        "risk_free_rate": money.share_percent(settings.ANALYTICS_RISK_FREE_RATE),
        "benchmark": benchmark,
    }


def preload(then: Callable[[], None]) -> None:
    """Import the maths on a thread of its own, now (see the module docstring), then call
    ``then``."""
    threading.Thread(
        target=_import_maths, args=(then,), name="insights-preload", daemon=True
    ).start()


def _import_maths(then: Callable[[], None]) -> None:
    from . import frontier, performance  # noqa: F401

    then()


def conventions() -> Conventions:
    """The ``ANALYTICS_*`` settings as the maths takes them."""
    from .risk import Conventions

    return Conventions(
        window_days=settings.ANALYTICS_WINDOW_DAYS,
        risk_free_rate=settings.ANALYTICS_RISK_FREE_RATE,
        benchmark=settings.ANALYTICS_BENCHMARK,
        max_weight=settings.ANALYTICS_MAX_WEIGHT,
        max_sector_weight=settings.ANALYTICS_MAX_SECTOR_WEIGHT,
        min_history_days=settings.ANALYTICS_MIN_HISTORY_DAYS,
        frontier_points=settings.ANALYTICS_FRONTIER_POINTS,
    )


def account_risk(account_id: str) -> dict:
    """The risk endpoint's body: volatility and its decomposition, correlation, warnings."""
    return _cached(f"risk:{account_id}", lambda: _risk_body(account_id))


def account_frontier(account_id: str) -> dict:
    """The frontier endpoint's body: the efficient frontier of the current holdings."""
    return _cached(f"frontier:{account_id}", lambda: _frontier_body(account_id))


def account_performance(account_id: str, period: str, benchmark: str | None = None) -> dict:
    """The performance endpoint's body: a period's statistics against a benchmark."""
    symbol = benchmark or settings.ANALYTICS_BENCHMARK
    return _cached(
        f"performance:{account_id}:{period}:{symbol}",
        lambda: _performance_body(account_id, period, symbol),
    )


def _cached(key: str, compute: Callable[[], dict]) -> dict:
    full_key = f"api:insights:{key}"
    body = cache.get(full_key)
    if body is None:
        body = compute()
        cache.set(full_key, body, settings.ANALYTICS_CACHE_TTL)
    return body


def _holdings(account_id: str) -> tuple[Decimal, list[Holding]]:
    """The account's holdings as the maths takes them, with its cash."""
    from .risk import Holding

    _, valuation, valued = selectors.valued_holdings(account_id)
    holdings = []
    for item in valued:
        asset_class = item.asset.asset_class if item.asset else ""
        classification = classify(item.held.symbol)
        one_sector = (
            classification.category not in _NOT_ONE_SECTOR
            and classification.sector != "Unclassified"
        )
        holdings.append(
            Holding(
                symbol=canonical_symbol(item.held.symbol, asset_class),
                market_value=item.value.market_value,
                sector=classification.sector if one_sector else None,
                is_option=asset_class == "us_option" or item.held.multiplier != 1,
            )
        )
    return valuation.cash, holdings


def _window_closes(symbols: Sequence[str], rules: Conventions) -> dict[str, DailyCloses]:
    """The daily closes a window of ``rules.window_days`` returns needs, benchmark included."""
    end = last_completed_day()
    start = end - timedelta(days=int(rules.window_days / _TRADING_DAYS_PER_CALENDAR_DAY) + 10)
    return daily_closes([*symbols, rules.benchmark], start, end)


def _measured(account_id: str, analyse: Callable) -> tuple[Any, dict]:
    """``analyse(holdings, cash, closes, conventions)`` over the account's holdings and the
    window's closes, and the header every risk view's answer starts with."""
    from .risk import MissingBenchmark

    rules = conventions()
    cash, holdings = _holdings(account_id)
    closes = _window_closes([h.symbol for h in holdings if not h.is_option], rules)
    try:
        result = analyse(holdings, cash, closes, rules)
    except MissingBenchmark:
        raise _no_benchmark(rules.benchmark) from None
    end = result.window_end
    header = {
        "account_id": account_id,
        "as_of": _day(end),
        "conventions": conventions_json(
            None if end is None else (result.window_start, end), rules.benchmark
        ),
    }
    return result, header


def _risk_body(account_id: str) -> dict:
    from .risk import risk_report

    report, header = _measured(account_id, risk_report)
    rules = report.conventions
    return {
        **header,
        "volatility": money.share_percent(report.volatility),
        "holdings": [
            {
                "symbol": row.symbol,
                "sector": row.sector or "",
                "market_value": money.money(row.market_value),
                "weight": money.share_percent(row.weight),
                "volatility": money.share_percent(row.volatility),
                "beta": money.ratio(row.beta),
                "contribution": money.share_percent(row.contribution),
                "risk_share": money.share_percent(row.risk_share),
            }
            for row in report.holdings
        ],
        "cash": {
            "market_value": money.money(report.cash),
            "weight": money.share_percent(report.cash_weight),
        },
        "excluded": _excluded_json(report.excluded, rules),
        "correlation": {
            "symbols": list(report.correlation.symbols),
            "matrix": [[money.ratio(v) for v in row] for row in report.correlation.matrix],
        },
        "warnings": [
            {
                "kind": warning.kind,
                "subject": warning.subject,
                "value": money.share_percent(warning.value),
                "limit": money.share_percent(warning.limit),
                "message": _WARNING_MESSAGES[warning.kind].format(
                    subject=warning.subject,
                    value=money.share_percent(warning.value),
                    limit=money.share_percent(warning.limit),
                ),
            }
            for warning in report.warnings
        ],
        "explanation": report.explanation,
    }


def _frontier_body(account_id: str) -> dict:
    from .frontier import frontier

    result, header = _measured(
        account_id, lambda holdings, _cash, closes, rules: frontier(holdings, closes, rules)
    )
    rules = result.conventions
    return {
        **header,
        "symbols": list(result.symbols),
        "points": [
            {
                "volatility": money.share_percent(point.volatility),
                "return": money.share_percent(point.expected_return),
            }
            for point in result.points
        ],
        "current": _allocation_json(result.current, weights=False),
        "min_volatility": _allocation_json(result.min_volatility),
        "max_sharpe": _allocation_json(result.max_sharpe),
        "improvement": {
            "return_at_current_volatility": money.share_percent(
                result.return_at_current_volatility
            ),
            "volatility_at_current_return": money.share_percent(
                result.volatility_at_current_return
            ),
        },
        "excluded": _excluded_json(result.excluded, rules),
        "disclaimer": _DISCLAIMER,
        "explanation": result.explanation,
    }


def _performance_body(account_id: str, period: str, symbol: str) -> dict:
    from .performance import MONEY_WEIGHTED_EXPLANATION, TIME_WEIGHTED_EXPLANATION, performance

    rules = replace(conventions(), benchmark=symbol)
    history = selectors.period_history(account_id, period)
    days = [moment.astimezone(NEW_YORK).date() for moment in history.timestamps]
    closes = daily_closes([symbol], days[0] - _LOOKBACK, days[-1]) if days else {}
    if days and symbol not in closes:
        raise _no_benchmark(symbol)
    result = performance(history, closes, rules)
    statistics = result.statistics
    drawdown = statistics.max_drawdown
    return {
        "account_id": account_id,
        "period": period,
        "start": _day(result.start),
        "end": _day(result.end),
        "conventions": conventions_json(
            None if result.start is None else (result.start, result.end), symbol
        ),
        "time_weighted_return": money.share_percent(result.time_weighted_return),
        "money_weighted_return": money.share_percent(result.money_weighted_return),
        "annualized": {
            "time_weighted_return": money.share_percent(result.annualized_time_weighted_return),
            "money_weighted_return": money.share_percent(result.annualized_money_weighted_return),
        },
        "volatility": money.share_percent(statistics.volatility),
        "max_drawdown": {
            "percent": None if drawdown is None else money.share_percent(drawdown.depth),
            "peak": _day(drawdown and drawdown.peak),
            "trough": _day(drawdown and drawdown.trough),
            "recovered": _day(drawdown and drawdown.recovered),
        },
        "sharpe": money.ratio(statistics.sharpe),
        "sortino": money.ratio(statistics.sortino),
        "beta": money.ratio(statistics.beta),
        "alpha": money.share_percent(statistics.alpha),
        "benchmark": {"symbol": symbol, "return": money.share_percent(result.benchmark_return)},
        "excess_return": money.share_percent(result.excess_return),
        "explanations": {
            "time_weighted_return": TIME_WEIGHTED_EXPLANATION,
            "money_weighted_return": MONEY_WEIGHTED_EXPLANATION,
        },
    }


def _allocation_json(allocation: Allocation | None, weights: bool = True) -> dict | None:
    if allocation is None:
        return None
    body = {
        "volatility": money.share_percent(allocation.volatility),
        "return": money.share_percent(allocation.expected_return),
        "sharpe": money.ratio(allocation.sharpe),
    }
    if weights:
        body["weights"] = [
            {"symbol": symbol, "weight": money.share_percent(weight)}
            for symbol, weight in allocation.weights
        ]
    return body


def _excluded_json(excluded: Sequence[Excluded], rules: Conventions) -> list[dict]:
    return [
        {
            "symbol": item.symbol,
            "reason": item.reason,
            "days": item.days,
            "message": _EXCLUDED_MESSAGES[item.reason].format(
                symbol=item.symbol, days=item.days, minimum=rules.min_history_days
            ),
        }
        for item in excluded
    ]


def _no_benchmark(symbol: str) -> InvalidParameter:
    return InvalidParameter(f"benchmark: the broker has no daily prices for {symbol!r}.")


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
