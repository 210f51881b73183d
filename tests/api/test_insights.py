"""The risk views and statistics on the sandbox: every figure equals an independent numpy
recomputation from the daily bars the sandbox serves (fetched raw here, not through our
gateway) and the positions the answer itself reports (prices move between two reads)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import requests
from django.conf import settings
from scipy.optimize import brentq

from marketdata.market_history import last_completed_day

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
ANNUAL = 252


@pytest.fixture
def api(link, client_for, shape_account):
    """GET an API path as the owner of the first account of a shape; the JSON on 200."""
    clients = {}

    def get(shape: str, path: str) -> dict:
        if shape not in clients:
            clients[shape] = client_for(link(shape_account[shape]))
        response = clients[shape].get(path)
        assert response.status_code == 200, response.content
        return response.json()

    return get


@pytest.fixture(scope="session")
def closes(sandbox_url: str):
    """A symbol's daily closes from the sandbox's data API, as Alpaca serves them."""
    session = requests.Session()
    session.headers.update(
        {
            "APCA-API-KEY-ID": settings.SANDBOX_API_KEY,
            "APCA-API-SECRET-KEY": settings.SANDBOX_SECRET_KEY,
        }
    )
    found: dict[str, dict[date, float]] = {}

    def of(symbol: str) -> dict[date, float]:
        if symbol not in found:
            crypto = "/" in symbol
            path = "/v1beta3/crypto/us/bars" if crypto else "/v2/stocks/bars"
            end = last_completed_day()
            params = {
                "symbols": symbol,
                "timeframe": "1Day",
                "limit": 10000,
                "start": (end - timedelta(days=800)).isoformat(),
                "end": (end + timedelta(days=1)).isoformat(),
            }
            if not crypto:
                params["adjustment"] = "all"
            answer = session.get(sandbox_url + path, params=params, timeout=10).json()
            assert answer.get("next_page_token") is None
            zone = ZoneInfo("UTC") if crypto else NEW_YORK
            days = {bar_day(bar["t"], zone): bar["c"] for bar in answer["bars"].get(symbol, [])}
            found[symbol] = {day: close for day, close in days.items() if day <= end}
        return found[symbol]

    return of


def bar_day(stamp: str, zone: ZoneInfo) -> date:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(zone).date()


def window_returns(closes, symbols: list[str]) -> np.ndarray:
    """Daily simple returns of ``symbols`` over the benchmark's last 252 trading days on which
    every symbol has a close today and the day before (columns in ``symbols`` order)."""
    benchmark = closes(settings.ANALYTICS_BENCHMARK)
    calendar = sorted(benchmark)
    series = [closes(s) for s in symbols]
    rows = []
    for before, day in zip(calendar, calendar[1:], strict=False):
        if all(day in s and before in s for s in series):
            rows.append([s[day] / s[before] - 1 for s in series])
    return np.array(rows[-ANNUAL:])


def pct(value: str | None) -> float:
    assert value is not None
    return float(value) / 100


def test_risk_equals_a_numpy_recomputation_and_its_shares_add_up(api, closes) -> None:
    body = api("diversified", "/api/portfolio/risk")

    symbols = [h["symbol"] for h in body["holdings"]]
    assert len(symbols) >= 2
    benchmark = settings.ANALYTICS_BENCHMARK
    returns = window_returns(closes, [*symbols, benchmark])
    holdings, market = returns[:, :-1], returns[:, -1]
    equity = Decimal(body["cash"]["market_value"]) + sum(
        Decimal(h["market_value"]) for h in body["holdings"]
    )
    weights = np.array([float(Decimal(h["market_value"]) / equity) for h in body["holdings"]])
    covariance = np.cov(holdings, rowvar=False, ddof=1) * ANNUAL
    sigma = float(np.sqrt(weights @ covariance @ weights))
    contributions = weights * (covariance @ weights) / sigma

    assert pct(body["volatility"]) == pytest.approx(sigma, abs=0.0001)
    for row, weight, contribution, column in zip(
        body["holdings"], weights, contributions, holdings.T, strict=True
    ):
        assert pct(row["weight"]) == pytest.approx(weight, abs=0.0001)
        assert pct(row["volatility"]) == pytest.approx(
            column.std(ddof=1) * np.sqrt(ANNUAL), abs=1e-4
        )
        beta = np.cov(column, market, ddof=1)[0, 1] / market.var(ddof=1)
        assert float(row["beta"]) == pytest.approx(beta, abs=0.0001)
        assert pct(row["contribution"]) == pytest.approx(contribution, abs=0.0001)
    shares = sum(pct(row["risk_share"]) for row in body["holdings"])
    assert shares == pytest.approx(1, abs=0.0001 * len(symbols))
    correlation = np.corrcoef(holdings, rowvar=False)
    assert body["correlation"]["symbols"] == symbols
    for i, row in enumerate(body["correlation"]["matrix"]):
        for j, value in enumerate(row):
            assert float(value) == pytest.approx(correlation[i, j], abs=0.0001)
    conventions = body["conventions"]
    assert conventions["window_days"] == 252 and conventions["benchmark"] == benchmark
    assert conventions["risk_free_rate"] == "4.00"
    assert conventions["window_end"] == body["as_of"]


def test_weights_over_the_limit_are_warned_about(api) -> None:
    body = api("one_stock", "/api/portfolio/risk")

    [holding] = body["holdings"]
    assert pct(holding["risk_share"]) == pytest.approx(1)
    kinds = {(w["kind"], w["subject"]) for w in body["warnings"]}
    assert ("holding_weight", holding["symbol"]) in kinds
    warning = next(w for w in body["warnings"] if w["kind"] == "holding_weight")
    assert warning["limit"] == "20.00" and pct(warning["value"]) > 0.20
    assert holding["symbol"] in warning["message"] and "20.00 %" in warning["message"]
    assert body["correlation"]["matrix"] == [["1.0000"]]


@pytest.mark.parametrize("shape", ["empty", "cash_only"])
def test_nothing_invested_gets_an_explained_answer(api, shape) -> None:
    body = api(shape, "/api/portfolio/risk")
    assert body["holdings"] == [] and body["correlation"] == {"symbols": [], "matrix": []}
    assert body["explanation"]

    frontier = api(shape, "/api/portfolio/frontier")
    assert frontier["points"] == [] and frontier["max_sharpe"] is None
    assert frontier["explanation"] and frontier["disclaimer"]


def test_options_are_listed_apart_with_the_reason(api) -> None:
    body = api("option", "/api/portfolio/risk")

    options = [e for e in body["excluded"] if e["reason"] == "option"]
    assert options and all(e["message"] for e in options)
    assert not {e["symbol"] for e in options} & {h["symbol"] for h in body["holdings"]}


def test_the_frontier_holds_the_current_portfolio_and_its_marked_points_recompute(
    api, closes
) -> None:
    body = api("diversified", "/api/portfolio/frontier")

    symbols = body["symbols"]
    returns = window_returns(closes, symbols)
    mean = returns.mean(axis=0) * ANNUAL
    covariance = np.cov(returns, rowvar=False, ddof=1) * ANNUAL
    for name in ("min_volatility", "max_sharpe"):
        marked = body[name]
        weights = np.array([pct(w["weight"]) for w in marked["weights"]])
        assert [w["symbol"] for w in marked["weights"]] == symbols
        assert weights.sum() == pytest.approx(1, abs=0.0001 * len(symbols))
        assert (weights >= -0.00005).all()
        assert pct(marked["volatility"]) == pytest.approx(
            np.sqrt(weights @ covariance @ weights), abs=0.0002
        )
        assert pct(marked["return"]) == pytest.approx(weights @ mean, abs=0.0002)
    points = [(pct(p["volatility"]), pct(p["return"])) for p in body["points"]]
    assert 20 <= len(points) <= 40
    assert points == sorted(points)  # from minimum volatility to maximum return
    assert points[0][0] == pytest.approx(pct(body["min_volatility"]["volatility"]), abs=0.0002)
    current = body["current"]
    volatility, expected = pct(current["volatility"]), pct(current["return"])
    assert volatility >= points[0][0] - 0.0001  # nothing is less volatile than the minimum
    on_curve = np.interp(volatility, [v for v, _ in points], [r for _, r in points])
    assert expected <= on_curve + 0.0005  # on or inside the frontier
    improvement = body["improvement"]
    if improvement["return_at_current_volatility"] is not None:
        assert pct(improvement["return_at_current_volatility"]) >= expected - 0.0001
    assert "not predict" in body["disclaimer"]


def test_performance_recomputes_from_the_history_and_the_benchmark(
    api, raw, closes, shape_account, settings
) -> None:
    path = f"/trading/accounts/{shape_account['diversified']}/account/portfolio/history"
    params = {"period": "3M", "timeframe": "1D", "pnl_reset": "no_reset"}
    # The history's last point is the live equity, which moves whenever a price does: the
    # answer is checked against a history read unchanged just before and just after it, so
    # neither the answer nor its history may come from the cache (an earlier test's moment).
    settings.ANALYTICS_CACHE_TTL = 0
    settings.HISTORY_CACHE_TTL = 0
    for _ in range(10):
        history = raw(path, **params)
        body = api("diversified", "/api/portfolio/performance?period=3M&benchmark=SPY")
        if raw(path, **params) == history:
            break
    else:
        pytest.fail("the history moved around every one of ten answers")
    equity = history["equity"]
    assert all(equity)  # every point has money in it: the steps below line up with the days
    flows = [0.0] * len(equity)
    for kind, amounts in (history.get("cashflow") or {}).items():
        if kind.upper() in ("CSD", "CSW", "JNLC", "JNLS", "ACATC", "ACATS"):
            flows = [f + float(a) for f, a in zip(flows, amounts, strict=True)]
    steps = [
        (float(equity[i]) - flows[i]) / float(equity[i - 1]) - 1
        for i in range(1, len(equity))
        if equity[i] is not None and equity[i - 1] not in (None, 0)
    ]
    twr = float(np.prod([1 + r for r in steps]) - 1)
    assert pct(body["time_weighted_return"]) == pytest.approx(twr, abs=0.0001)
    assert pct(body["volatility"]) == pytest.approx(
        np.std(steps, ddof=1) * np.sqrt(ANNUAL), abs=0.0002
    )
    wealth = np.cumprod([1 + r for r in steps])
    drawdown = float(
        (wealth / np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:] - 1).min()
    )
    assert pct(body["max_drawdown"]["percent"]) == pytest.approx(min(drawdown, 0.0), abs=0.0001)
    days = [datetime.fromtimestamp(t, NEW_YORK).date() for t in history["timestamp"]]
    spy = closes("SPY")
    first = max(d for d in spy if d <= days[0])
    last = max(d for d in spy if d <= days[-1])
    assert pct(body["benchmark"]["return"]) == pytest.approx(spy[last] / spy[first] - 1, abs=0.0001)
    assert pct(body["excess_return"]) == pytest.approx(
        pct(body["time_weighted_return"]) - pct(body["benchmark"]["return"]), abs=0.0002
    )
    on_day = [spy[max(d for d in spy if d <= day)] for day in days]
    market = np.array([on_day[i] / on_day[i - 1] - 1 for i in range(1, len(days))])
    rf = 0.04 / ANNUAL
    mine, theirs = np.array(steps) - rf, market - rf
    assert float(body["sharpe"]) == pytest.approx(
        mine.mean() / mine.std(ddof=1) * np.sqrt(ANNUAL), abs=0.0002
    )
    downside = np.sqrt(np.mean(np.minimum(mine, 0) ** 2)) * np.sqrt(ANNUAL)
    assert float(body["sortino"]) == pytest.approx(mine.mean() * ANNUAL / downside, abs=0.0002)
    beta = np.cov(mine, theirs, ddof=1)[0, 1] / theirs.var(ddof=1)
    assert float(body["beta"]) == pytest.approx(beta, abs=0.0002)
    alpha = (1 + (mine - beta * theirs).mean()) ** ANNUAL - 1
    assert pct(body["alpha"]) == pytest.approx(alpha, abs=0.0002)
    # Money-weighted: the rate at which the investor's money in and out nets to zero.
    paid = [(days[0], -float(equity[0]))]
    paid += [(days[i], -flows[i]) for i in range(1, len(days)) if flows[i]]
    paid.append((days[-1], float(equity[-1])))
    flows_in_years = [(amount, (day - days[0]).days / 365) for day, amount in paid]
    rate = brentq(lambda r: sum(a / (1 + r) ** y for a, y in flows_in_years), -0.99, 100)
    span = (days[-1] - days[0]).days / 365
    assert pct(body["annualized"]["money_weighted_return"]) == pytest.approx(rate, abs=0.0001)
    assert pct(body["money_weighted_return"]) == pytest.approx((1 + rate) ** span - 1, abs=0.0001)
    assert (
        body["explanations"]["time_weighted_return"]
        and body["explanations"]["money_weighted_return"]
    )


def test_history_carries_the_benchmark_rebased_to_the_first_value(api, closes) -> None:
    body = api("diversified", "/api/portfolio/history?period=1M&benchmark=spy")

    series = body["benchmark"]
    assert series["symbol"] == "SPY" and len(series["values"]) == len(body["timestamps"])
    first = next(i for i, v in enumerate(body["equity"]) if v is not None)
    spy = closes("SPY")
    days = [
        datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(NEW_YORK).date()
        for t in body["timestamps"]
    ]
    base = spy[max(d for d in spy if d <= days[first])]
    for day, value in zip(days[first:], series["values"][first:], strict=True):
        close = spy[max(d for d in spy if d <= day)]
        expected = Decimal(body["equity"][first]) * Decimal(str(close)) / Decimal(str(base))
        assert Decimal(value) == pytest.approx(expected, abs=Decimal("0.01"))
    assert series["values"][first] == body["equity"][first]
    assert Decimal(series["excess_return"]) == Decimal(body["time_weighted_return"]) - Decimal(
        series["return"]
    )


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("performance?period=1D", "1M, 3M"),
        ("performance?benchmark=no%20such", "not a symbol"),
        ("performance?benchmark=ZZZZ", "no daily prices"),
        ("history?benchmark=ZZZZ", "no daily prices"),
    ],
)
def test_bad_periods_and_benchmarks_are_400(link, client_for, shape_account, query, says) -> None:
    response = client_for(link(shape_account["diversified"])).get(f"/api/portfolio/{query}")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert says in response.json()["error"]["message"]
