"""Portfolio history: Alpaca's parameters and limits, and values that agree with the ledger.

Most tests call the shared sandbox through alpaca-py's BrokerClient. The reporting modes are
checked on an in-process world under the NYSE calendar, where sessions are not all day.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import requests
from alpaca.broker import BrokerClient
from alpaca.broker.requests import GetAccountActivitiesRequest
from alpaca.common.exceptions import APIError
from alpaca.trading.models import PortfolioHistory
from alpaca.trading.requests import GetPortfolioHistoryRequest
from django.conf import settings

from marketdata.sandbox.calendar import NEW_YORK
from marketdata.sandbox.errors import ApiError
from marketdata.sandbox.generation import SHAPES
from marketdata.sandbox.history import HistoryQuery, portfolio_history
from marketdata.sandbox.server import Sandbox, SandboxConfig

CENT = Decimal("0.01")
PERIODS = {"1D": "1Min", "1W": "15Min", "1M": "1D", "1A": "1D"}


@pytest.fixture(scope="session")
def shapes(sandbox_url: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for account in requests.get(f"{sandbox_url}/_sandbox/accounts", timeout=10).json()["accounts"]:
        found.setdefault(account["shape"], account["id"])
    return found


def history(broker: BrokerClient, account_id: str, **query) -> PortfolioHistory:
    return broker.get_portfolio_history_for_account(account_id, GetPortfolioHistoryRequest(**query))


def cents(value: float) -> Decimal:
    return Decimal(str(value))


def check_series(series: PortfolioHistory, created: datetime) -> None:
    """Aligned arrays, rising timestamps, nothing before creation or after now."""
    points = len(series.timestamp)
    assert len(series.equity) == len(series.profit_loss) == len(series.profit_loss_pct) == points
    assert series.timestamp == sorted(set(series.timestamp))
    assert all(len(amounts) == points for amounts in series.cashflow.values())
    if points:
        now = datetime.now(UTC).timestamp()
        assert series.timestamp[-1] <= now
        first = datetime.fromtimestamp(series.timestamp[0], NEW_YORK)
        if series.timeframe == "1D":
            assert first.date() >= created.astimezone(NEW_YORK).date()
        else:
            assert first >= created


def max_history(broker: BrokerClient, account_id: str) -> tuple[PortfolioHistory, datetime]:
    created = datetime.fromisoformat(broker.get_account_by_id(account_id).created_at)
    start = created.astimezone(NEW_YORK).date().isoformat()
    return history(broker, account_id, start=start, timeframe="1D"), created


@pytest.mark.parametrize("shape", SHAPES)
def test_every_period_for_every_shape(broker: BrokerClient, shapes: dict, shape: str) -> None:
    account_id = shapes[shape]
    everything, created = max_history(broker, account_id)
    check_series(everything, created)

    for period, timeframe in PERIODS.items():
        series = history(broker, account_id, period=period)
        assert series.timeframe == timeframe, period
        assert series.timestamp, period
        check_series(series, created)
    assert everything.timeframe == "1D"
    days = [datetime.fromtimestamp(t, NEW_YORK) for t in everything.timestamp]
    assert all(day.time() == time(0) for day in days)
    assert days[0].date() == created.astimezone(NEW_YORK).date()
    if shape == "empty":
        assert not any(everything.equity) and everything.base_value == 0
        assert set(everything.profit_loss_pct) == {None}
    else:
        assert any(everything.equity) and everything.base_value > 0


@pytest.mark.parametrize("shape", ["cash_only", "bonds"])
def test_last_point_is_the_live_equity(broker: BrokerClient, shapes: dict, shape: str) -> None:
    """Exact to the cent when the account's prices held still across the history request."""
    account_id = shapes[shape]
    for _ in range(20):
        before = broker.get_trade_account_by_id(account_id).equity
        series = {period: history(broker, account_id, period=period) for period in PERIODS}
        after = broker.get_trade_account_by_id(account_id).equity
        if before == after:
            break
    else:
        pytest.fail("the account's value never held still for three requests")
    for period, result in series.items():
        assert cents(result.equity[-1]) == Decimal(before).quantize(CENT), period


def test_intraday_day_is_measured_against_the_last_close(
    broker: BrokerClient, shapes: dict
) -> None:
    account_id = shapes["bonds"]
    trade = broker.get_trade_account_by_id(account_id)
    series = broker.get_portfolio_history_for_account(
        account_id, GetPortfolioHistoryRequest(period="1D", timeframe="5Min")
    )

    assert cents(series.base_value) == Decimal(trade.last_equity).quantize(CENT)
    base = cents(series.base_value)
    for equity, profit, pct in zip(
        series.equity, series.profit_loss, series.profit_loss_pct, strict=True
    ):
        assert cents(profit) == cents(equity) - base
        assert pct == pytest.approx(float(cents(equity) / base - 1), abs=1e-8)


def test_no_reset_and_daily_series_start_from_the_first_point(
    broker: BrokerClient, shapes: dict
) -> None:
    account_id = shapes["diversified"]
    cumulative = history(broker, account_id, period="1W", timeframe="1H", pnl_reset="no_reset")
    daily = history(broker, account_id, period="1M", timeframe="1D")

    for series in (cumulative, daily):
        assert series.base_value == series.equity[0]
        assert series.profit_loss[0] == 0 and series.profit_loss_pct[0] == 0
        assert cents(series.profit_loss[-1]) == cents(series.equity[-1]) - cents(series.equity[0])


def test_a_new_empty_account_answers_zero_points(broker: BrokerClient, shapes: dict) -> None:
    series = history(broker, shapes["empty"], period="1D")

    assert series.timestamp and not any(series.equity) and not any(series.profit_loss)
    assert set(series.profit_loss_pct) == {None}
    assert series.base_value == 0 and series.cashflow == {}


@pytest.mark.parametrize("shape", SHAPES)
def test_cashflow_adds_up_to_deposits_less_withdrawals(
    broker: BrokerClient, shapes: dict, shape: str
) -> None:
    account_id = shapes[shape]
    everything, _ = max_history(broker, account_id)
    month = history(broker, account_id, period="1M")
    flows = broker.get_account_activities(
        GetAccountActivitiesRequest(account_id=account_id, activity_types=["CSD", "CSW"])
    )
    month_start = datetime.fromtimestamp(month.timestamp[0], NEW_YORK).date()

    def booked(since: date) -> Decimal:
        return sum((cents(a.net_amount) for a in flows if a.date >= since), Decimal(0))

    def charted(series: PortfolioHistory) -> Decimal:
        return sum((cents(v) for amounts in series.cashflow.values() for v in amounts), Decimal(0))

    assert charted(everything) == booked(date.min)
    assert charted(month) == booked(month_start)
    assert set(everything.cashflow) <= {"CSD", "CSW"}
    assert all(v >= 0 for v in everything.cashflow.get("CSD", []))
    assert all(v <= 0 for v in everything.cashflow.get("CSW", []))


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"period": "1Y"}, 42210000),
        ({"period": "MAX"}, 42210000),
        ({"period": "0D"}, 42210000),
        ({"timeframe": "2Min"}, 40010001),
        ({"period": "2M", "timeframe": "1H"}, 40010001),
        ({"period": "1A", "timeframe": "1Min"}, 40010001),
        ({"intraday_reporting": "sometimes"}, 40010001),
        ({"pnl_reset": "weekly"}, 40010001),
    ],
)
def test_invalid_parameters_are_422(
    broker: BrokerClient, shapes: dict, query: dict, code: int
) -> None:
    with pytest.raises(APIError) as caught:
        broker.get_portfolio_history_for_account(
            shapes["one_stock"], GetPortfolioHistoryRequest(**query)
        )

    assert (caught.value.status_code, caught.value.code) == (422, code)


@pytest.mark.parametrize(
    "params",
    [{"start": "last tuesday"}, {"date_end": "2024-02-30"}, {"extended_hours": "maybe"}],
)
def test_what_the_sdk_would_not_send_is_422_too(
    sandbox_url: str, shapes: dict, params: dict
) -> None:
    response = requests.get(
        f"{sandbox_url}/v1/trading/accounts/{shapes['one_stock']}/account/portfolio/history",
        params=params,
        auth=(settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY),
        timeout=10,
    )

    assert response.status_code == 422
    assert response.json()["code"] == 40010001


def test_intraday_over_thirty_days_from_a_start_is_422(broker: BrokerClient, shapes: dict) -> None:
    start = datetime.now(UTC) - timedelta(days=45)

    with pytest.raises(APIError) as caught:
        history(broker, shapes["one_stock"], start=start, timeframe="15Min")

    assert caught.value.status_code == 422


def test_start_and_end_bound_the_window(broker: BrokerClient, shapes: dict) -> None:
    account_id = shapes["one_stock"]
    end = datetime.now(UTC) - timedelta(days=3)
    start = end - timedelta(days=2)

    between = history(broker, account_id, start=start, end=end, timeframe="1H")
    before_end = history(broker, account_id, end=end, period="1W", timeframe="1D")
    after_start = history(broker, account_id, start=start, period="2D", timeframe="15Min")

    assert len(between.timestamp) == 48
    assert start.timestamp() <= between.timestamp[0] < between.timestamp[-1] < end.timestamp()
    assert len(before_end.timestamp) == 7 and before_end.timestamp[-1] < end.timestamp()
    assert after_start.timestamp[0] >= start.timestamp()
    assert after_start.timestamp[-1] < (start + timedelta(days=2)).timestamp()


# -- reporting modes, on an exchange calendar ----------------------------------------------------
@pytest.fixture(scope="module")
def exchange_world() -> Iterator[Sandbox]:
    yield Sandbox(SandboxConfig(accounts=12, symbols=60, calendar="nyse", seed=5))


def local_times(sandbox: Sandbox, shape: str, **params: str) -> list[datetime]:
    account = next(a for a in sandbox.world.accounts.values() if a.shape == shape)
    result = portfolio_history(
        sandbox.world, account, HistoryQuery.parse(params), datetime.now(UTC)
    )
    assert len(result.equity) == len(result.timestamps)
    return [datetime.fromtimestamp(t, NEW_YORK) for t in result.timestamps]


def test_market_hours_keep_to_the_sessions(exchange_world: Sandbox) -> None:
    points = local_times(exchange_world, "diversified", period="1W", timeframe="15Min")

    assert points
    assert all(time(9, 30) <= p.time() < time(16) and p.weekday() < 5 for p in points)
    assert {p.time() for p in points} >= {time(9, 30), time(15, 45)}


def test_extended_hours_run_from_four_to_eight(exchange_world: Sandbox) -> None:
    points = local_times(
        exchange_world, "diversified", period="1W", timeframe="1H",
        intraday_reporting="extended_hours",
    )  # fmt: skip

    assert all(time(4) <= p.time() < time(20) and p.weekday() < 5 for p in points)
    assert {time(4), time(19)} <= {p.time() for p in points}


def test_continuous_reporting_never_pauses(exchange_world: Sandbox) -> None:
    points = local_times(
        exchange_world, "crypto", period="1W", timeframe="1H", intraday_reporting="continuous"
    )

    steps = {later - earlier for earlier, later in zip(points, points[1:], strict=False)}
    assert steps == {timedelta(hours=1)}
    assert len(points) >= 24 * 5


def test_history_query_rejects_three_bounds() -> None:
    with pytest.raises(ApiError) as caught:
        HistoryQuery.parse({"start": "2024-01-01", "end": "2024-02-01", "period": "1W"})

    assert caught.value.status == 422
