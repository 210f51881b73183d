"""Reading Alpaca's JSON in both forms it takes: moments with ``Z`` or an offset, to the
nanosecond; portfolio-history epochs in seconds or milliseconds; a position's day basis."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata import moments
from marketdata.types import (
    Activity,
    Order,
    PortfolioHistory,
    Position,
    day_basis_after_fill,
)

MOMENT = datetime(2026, 12, 3, 15, 42, 21, 123456, tzinfo=UTC)
SECONDS = [1764547200, 1764633600]


def order_wire(**moments_as: str) -> dict:
    stamp = moments_as.get("created_at", "2026-12-03T15:42:21.123456Z")
    return {
        "id": "o1",
        "client_order_id": "c1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "status": "filled",
        "time_in_force": "day",
        "qty": "1",
        "notional": None,
        "filled_qty": "1",
        "filled_avg_price": "190.5",
        "limit_price": None,
        "created_at": stamp,
        "submitted_at": stamp,
        "filled_at": moments_as.get("filled_at", stamp),
        "canceled_at": None,
    }


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T15:42:21.123456Z",
        "2026-12-03T10:42:21.123456-05:00",
        "2026-12-03T10:42:21.123456789-05:00",  # nanoseconds: cut to the microsecond
        "2026-12-03T15:42:21.123456999Z",  # never rounded up into the next microsecond
        "2026-12-03T16:42:21.1234567+01:00",
    ],
)
def test_every_form_alpaca_writes_reads_as_the_same_utc_moment(text: str) -> None:
    order = Order.from_wire(order_wire(created_at=text))

    assert order.created_at == order.filled_at == MOMENT
    assert order.created_at.tzinfo is UTC
    assert moments.parse_stored(text) == MOMENT


def test_activity_day_is_new_yorks_whatever_the_offset() -> None:
    late = "2026-12-03T23:30:00.000000001-05:00"  # 04:30 UTC the next day
    activity = Activity.from_wire(
        {
            "id": "a1",
            "account_id": "x",
            "activity_type": "FILL",
            "transaction_time": late,
            "symbol": "AAPL",
            "side": "buy",
            "qty": "1",
            "price": "1",
            "order_id": "o1",
        }
    )
    assert activity.at == datetime(2026, 12, 4, 4, 30, tzinfo=UTC)
    assert activity.date.isoformat() == "2026-12-03"


@pytest.mark.parametrize("bad", ["yesterday", "", 1764547200, None])
def test_anything_else_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        moments.parse(bad)
    assert moments.parse_stored(bad if isinstance(bad, str) else None) is None


def history_wire(stamps: list[int]) -> dict:
    return {
        "timestamp": stamps,
        "equity": [100.0, 101.5],
        "profit_loss": [0.0, 1.5],
        "profit_loss_pct": [0.0, 0.015],
        "base_value": 100.0,
        "timeframe": "1D",
        "cashflow": {},
    }


def test_history_epochs_in_milliseconds_read_as_the_same_moments() -> None:
    in_seconds = PortfolioHistory.from_wire(history_wire(SECONDS))
    in_milliseconds = PortfolioHistory.from_wire(history_wire([t * 1000 for t in SECONDS]))

    assert in_milliseconds == in_seconds
    assert in_seconds.timestamps[0] == datetime(2025, 12, 1, tzinfo=UTC)
    odd = PortfolioHistory.from_wire(history_wire([SECONDS[0] * 1000 + 7, SECONDS[1] * 1000]))
    assert odd.timestamps[0] - in_seconds.timestamps[0] == timedelta(milliseconds=7)


def test_epoch_magnitude_decides_the_unit() -> None:
    assert moments.from_epoch(moments.MILLISECONDS_FROM - 1).year == 5138  # still seconds
    assert moments.from_epoch(moments.MILLISECONDS_FROM).year == 1973  # milliseconds
    for bad in (10**30, float("nan"), "1764547200", True):
        with pytest.raises(ValueError):
            moments.from_epoch(bad)


def test_new_york_form_round_trips() -> None:
    assert moments.new_york(MOMENT) == "2026-12-03T10:42:21.123456-05:00"
    assert moments.new_york(MOMENT, nanoseconds=789) == "2026-12-03T10:42:21.123456789-05:00"
    summer = datetime(2026, 7, 1, 20, 0, tzinfo=UTC)
    assert moments.new_york(summer) == "2026-07-01T16:00:00-04:00"
    assert moments.parse(moments.new_york(summer, nanoseconds=5)) == summer
    with pytest.raises(ValueError):
        moments.new_york(MOMENT, nanoseconds=1000)


def position(qty: str, price: str | None, intraday: str | None, asset_class="us_equity"):
    return Position(
        account_id="a",
        asset_id="x",
        symbol="AAPL",
        asset_class=asset_class,
        exchange="NASDAQ",
        side="long",
        qty=Decimal(qty),
        avg_entry_price=Decimal("100"),
        cost_basis=Decimal(qty) * 100,
        market_value=None,
        current_price=None if price is None else Decimal(price),
        lastday_price=Decimal("105"),
        unrealized_pl=None,
        unrealized_plpc=None,
        unrealized_intraday_pl=None if intraday is None else Decimal(intraday),
        change_today=None,
        qty_available=None,
    )


def test_a_positions_day_basis_is_its_value_less_alpacas_intraday_pl() -> None:
    opened_today = position("10", "110", "100")  # 10 × (110 − entry 100)
    held = position("10", "110", "50")  # 10 × (110 − close 105)
    option = position("2", "3.10", "20", asset_class="us_option")

    assert opened_today.day_basis == Decimal(1000)  # the entry cost
    assert held.day_basis == Decimal(1050)  # 10 × the previous close
    assert option.day_basis == Decimal("600.00")  # 2 × 3.10 × 100 − 20
    assert position("10", None, "100").day_basis is None
    assert position("10", "110", None).day_basis is None


def test_fills_carry_the_day_basis() -> None:
    held = Decimal(1050)  # 10 shares at a 105 close
    assert day_basis_after_fill(Decimal(0), Decimal(4), Decimal(120), None, 1) == 480
    assert day_basis_after_fill(Decimal(10), Decimal(15), Decimal(120), held, 1) == 1650
    assert day_basis_after_fill(Decimal(15), Decimal(12), Decimal(130), Decimal(1650), 1) == 1320
    assert day_basis_after_fill(Decimal(10), Decimal(-5), Decimal(90), held, 1) == -450
    assert day_basis_after_fill(Decimal(10), Decimal(0), Decimal(90), held, 1) == 0
    assert day_basis_after_fill(Decimal(10), Decimal(12), Decimal(120), None, 1) is None
    thirds = day_basis_after_fill(Decimal(3), Decimal(2), Decimal(1), Decimal(100), 1)
    assert thirds == Decimal("66.666667") and thirds.as_tuple().exponent == -6
    assert day_basis_after_fill(Decimal(1), Decimal(3), Decimal("3.5"), Decimal(300), 100) == 1000
