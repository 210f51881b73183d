"""Every endpoint, for every sandbox account shape, against an independent recomputation.

The gateway talks to the sandbox through the recorder, so each expected value is recomputed
here, with plain Decimal arithmetic, from the exact JSON the sandbox answered for that request
(prices move between any two reads). Money must match to the cent; percentages to 0.01.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from marketdata import moments
from marketdata.sandbox.generation import SHAPES
from portfolio.analytics import ASSET_CLASS_NAMES, AnalyzedHolding, analyze
from portfolio.classification import Classification

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")
UNIVERSE_CSV = Path(__file__).resolve().parents[2] / "marketdata/sandbox/data/universe.csv"
OCC = re.compile(r"([A-Z]+)\d{6}[CP]\d{8}")
EXTERNAL_FLOWS = ("CSD", "CSW")


def cents(value: Decimal) -> str:
    rounded = value.quantize(CENT, ROUND_HALF_EVEN)
    return format(rounded.copy_abs() if rounded == 0 else rounded, "f")  # never "-0.00"


def percent(part: Decimal, whole: Decimal) -> str | None:
    return None if whole == 0 else cents(part / whole * 100)


def price_text(value: str) -> str:
    """A price as the API writes it: at least two places, otherwise as quoted."""
    number = Decimal(value)
    return cents(number) if number == number.quantize(CENT) else format(number.normalize(), "f")


def universe() -> dict[str, tuple[str, str, str]]:
    """The real instruments the sandbox trades: symbol -> (category, sector, industry).

    The sandbox's made-up small caps are not in it: nobody classifies them, so they must
    come back Unclassified.
    """
    with UNIVERSE_CSV.open(newline="") as handle:
        return {
            row["symbol"]: (row["category"], row["sector"], row["industry"])
            for row in csv.DictReader(handle)
        }


UNIVERSE = universe()


def expected_classification(symbol: str) -> tuple[str, str, str]:
    if symbol in UNIVERSE:
        return UNIVERSE[symbol]
    option = OCC.fullmatch(symbol)
    if option and option[1] in UNIVERSE:
        _, sector, industry = UNIVERSE[option[1]]
        return "option", sector, industry
    return "unclassified", "Unclassified", "Unclassified"


def multiplier(position: dict) -> int:
    return 100 if position["asset_class"] == "us_option" else 1


def book(account: dict, positions: list[dict]) -> dict:
    """The account valued from Alpaca's raw account and positions JSON."""
    values = {
        p["symbol"]: Decimal(p["qty"]) * Decimal(p["current_price"]) * multiplier(p)
        for p in positions
    }
    long = sum((v for v in values.values() if v >= 0), Decimal(0))
    short = sum((v for v in values.values() if v < 0), Decimal(0))
    cash = Decimal(account["cash"])
    last_equity = Decimal(account["last_equity"])
    total = cash + long + short
    return {
        "values": values,
        "cash": cash,
        "long": long,
        "short": short,
        "total": total,
        "last_equity": last_equity,
    }


@pytest.fixture(params=SHAPES)
def shape(request) -> str:
    return request.param


@pytest.fixture
def account(shape, shape_account) -> str:
    return shape_account[shape]


@pytest.fixture
def client(account, link, client_for):
    return client_for(link(account))


def raw_account_and_positions(recorder, account: str) -> tuple[dict, list[dict]]:
    base = f"/v1/trading/accounts/{account}"
    return recorder.last(f"{base}/account").json(), recorder.last(f"{base}/positions").json()


def test_summary(recorder, client, account):
    body = client.get("/api/portfolio/summary").json()

    raw_account, raw_positions = raw_account_and_positions(recorder, account)
    expected = book(raw_account, raw_positions)
    # The sandbox's own market values agree with qty x price x multiplier.
    assert sum(Decimal(p["market_value"]) for p in raw_positions) == sum(
        expected["values"].values()
    )
    today = expected["total"] - expected["last_equity"]
    assert body == {
        "account_id": account,
        "total_value": cents(expected["total"]),
        "cash": cents(expected["cash"]),
        "positions_value": cents(expected["long"] + expected["short"]),
        "long_value": cents(expected["long"]),
        "short_value": cents(expected["short"]),
        "last_equity": cents(expected["last_equity"]),
        "today_return": cents(today),
        "today_return_percent": percent(today, expected["last_equity"]),
        "as_of": body["as_of"],
        "oldest_price_at": None,
    }


def test_positions(recorder, client, account, raw):
    body = client.get("/api/portfolio/positions").json()

    raw_account, raw_positions = raw_account_and_positions(recorder, account)
    expected = book(raw_account, raw_positions)
    names = {asset["symbol"]: asset for asset in raw("/assets")}
    assert body["account_id"] == account
    assert body["total_value"] == cents(expected["total"])
    assert [row["symbol"] for row in body["positions"]] == [p["symbol"] for p in raw_positions]
    for row, position in zip(body["positions"], raw_positions, strict=True):
        qty, price = Decimal(position["qty"]), Decimal(position["current_price"])
        entry = Decimal(position["avg_entry_price"])
        factor = multiplier(position)
        value = qty * price * factor
        cost = qty * entry * factor
        # Alpaca's intraday P/L: from the close for shares held then, from the entry price for
        # shares bought today; what it is measured from is the value less it.
        intraday = Decimal(position["unrealized_intraday_pl"])
        category, sector, industry = expected_classification(position["symbol"])
        assert row == {
            "symbol": position["symbol"],
            "name": names[position["symbol"]]["name"],
            "asset_class": position["asset_class"],
            "exchange": position["exchange"],
            "side": position["side"],
            "qty": format(qty.normalize(), "f"),
            "avg_entry_price": price_text(position["avg_entry_price"]),
            "price": price_text(position["current_price"]),
            "lastday_price": price_text(position["lastday_price"]),
            "multiplier": factor,
            "market_value": cents(value),
            "cost_basis": cents(cost),
            "unrealized_pl": cents(value - cost),
            "unrealized_pl_percent": percent(value - cost, abs(cost)),
            "day_change": cents(intraday),
            "day_change_percent": percent(intraday, value - intraday),
            "weight_percent": percent(value, expected["total"]),
            "price_source": "position",
            "price_at": None,
            "sector": sector,
            "industry": industry,
            "category": category,
        }
        # Alpaca's own figures say the same, to the cent.
        assert row["market_value"] == cents(Decimal(position["market_value"]))
        assert row["unrealized_pl"] == cents(Decimal(position["unrealized_pl"]))


def test_analytics(recorder, client, account):
    body = client.get("/api/portfolio/analytics").json()

    raw_account, raw_positions = raw_account_and_positions(recorder, account)
    expected = book(raw_account, raw_positions)
    cash = expected["cash"]
    by = {
        "by_asset_class": defaultdict(Decimal),
        "by_sector": defaultdict(Decimal),
        "by_industry": defaultdict(Decimal),
    }
    holdings = []
    for position in raw_positions:
        category, sector, industry = expected_classification(position["symbol"])
        value = expected["values"][position["symbol"]]
        if value:
            by["by_asset_class"][ASSET_CLASS_NAMES[category]] += abs(value)
            by["by_sector"][sector] += abs(value)
            by["by_industry"][industry] += abs(value)
        holdings.append(
            AnalyzedHolding(
                position["symbol"],
                position["asset_class"],
                value,
                Classification(position["symbol"], sector, industry, category),
            )
        )
    whole = sum(by["by_sector"].values(), Decimal(0)) + max(cash, Decimal(0))
    for split in by.values():
        if cash > 0:
            split["Cash"] += cash
    for name, split in by.items():
        slices = sorted(split.items(), key=lambda item: (-item[1], item[0]))
        assert body["allocation"][name] == [
            {"name": label, "value": cents(value), "percent": percent(value, whole)}
            for label, value in slices
        ], name
    scores = analyze(holdings, cash)
    assert body["risk"]["score"] == format(scores.risk.value, "f")
    expected_diversification = scores.diversification.value
    assert body["diversification"]["score"] == (
        None if expected_diversification is None else format(expected_diversification, "f")
    )
    assert body["risk"]["label"] and body["risk"]["explanation"]
    assert body["total_value"] == cents(expected["total"])


def net_of_flows(history: dict) -> tuple[list[str | None], list[str | None], Decimal]:
    """Alpaca's raw history recomputed net of deposits: gains, time-weighted %, deposits."""
    equity = [None if e is None else Decimal(str(e)) for e in history["equity"]]
    cashflow = history["cashflow"]
    flows = [
        sum(
            (Decimal(str(cashflow[kind][i])) for kind in EXTERNAL_FLOWS if kind in cashflow),
            Decimal(0),
        )
        for i in range(len(equity))
    ]
    if not equity:
        return [], [], Decimal(0)
    deposits = list(itertools.accumulate([Decimal(0), *flows[1:]]))
    gains = [
        cents(value - equity[0] - deposit) for value, deposit in zip(equity, deposits, strict=True)
    ]
    start = next((i for i, value in enumerate(equity) if value > 0), len(equity))

    def growth_through(i: int) -> Decimal:
        """Each period's return net of that day's flow, chained from the first positive day."""
        factors = (
            (equity[j] - flows[j]) / equity[j - 1]
            for j in range(start + 1, i + 1)
            if equity[j - 1] > 0
        )
        return math.prod(factors, start=Decimal(1))

    returns = [
        None if i < start else cents((growth_through(i) - 1) * 100) for i in range(len(equity))
    ]
    return gains, returns, deposits[-1]


@pytest.mark.parametrize("period", ["1M", "MAX"])
def test_history(recorder, client, account, shape, period):
    body = client.get(f"/api/portfolio/history?period={period}").json()

    base = f"/v1/trading/accounts/{account}"
    created = recorder.last(f"{base}/account").json()["created_at"]
    calls = recorder.find("GET", f"{base}/account/portfolio/history")
    asked = calls[0]
    holds_crypto = any(
        p["asset_class"] == "crypto" for p in recorder.last(f"{base}/positions").json()
    )
    assert asked.query["pnl_reset"] == ["no_reset"]
    assert asked.query["intraday_reporting"] == ["continuous" if holds_crypto else "market_hours"]
    assert asked.query["timeframe"] == ["1D"]
    if period == "MAX":
        assert moments.parse(asked.query["start"][0]) == moments.parse(created)
        assert len(calls) == 1  # the period is the all-time history
    else:
        assert asked.query["period"] == ["1M"]
        assert len(calls) == 2  # and the all-time one, for the all-time change
    history = asked.json()
    gains, returns, deposited = net_of_flows(history)
    assert body["period"] == period
    assert body["equity"] == [cents(Decimal(str(e))) for e in history["equity"]]
    assert len(body["timestamps"]) == len(history["timestamp"])
    assert body["profit_loss"] == gains
    assert body["profit_loss_percent"] == returns
    assert body["net_deposits"] == cents(deposited)
    last_gain = gains[-1] if gains else None
    last_return = returns[-1] if returns else None
    assert body["period_change"] == {"amount": last_gain, "percent": last_return}
    assert body["time_weighted_return"] == last_return
    all_time_gains, all_time_returns, _ = net_of_flows(calls[-1].json())
    assert body["all_time_change"] == {
        "amount": all_time_gains[-1] if all_time_gains else None,
        "percent": all_time_returns[-1] if all_time_returns else None,
    }
    if shape == "empty":
        assert body["period_change"]["amount"] in (None, "0.00")


def test_orders(recorder, client, account):
    body = client.get("/api/portfolio/orders?status=all&limit=500").json()

    raw_orders = recorder.last(f"/v1/trading/accounts/{account}/orders").json()
    assert [order["id"] for order in body["orders"]] == [order["id"] for order in raw_orders]
    for mine, theirs in zip(body["orders"], raw_orders, strict=True):
        assert mine["symbol"] == theirs["symbol"]
        assert mine["side"] == theirs["side"] and mine["status"] == theirs["status"]
        assert Decimal(mine["qty"]) == Decimal(theirs["qty"])
        assert Decimal(mine["filled_qty"]) == Decimal(theirs["filled_qty"])
        if theirs["filled_avg_price"] is None:
            assert mine["filled_avg_price"] is None
        else:
            assert mine["filled_avg_price"] == price_text(theirs["filled_avg_price"])
        assert moments.parse(mine["submitted_at"]) == moments.parse(theirs["submitted_at"])
    assert body["next_cursor"] is None


def test_activities(recorder, client, account):
    body = client.get("/api/portfolio/activities?page_size=100").json()

    raw_page = recorder.last("/v1/accounts/activities").json()
    kinds = {"FILL": "fill", "CSD": "deposit", "CSW": "withdrawal", "DIV": "dividend", "FEE": "fee"}
    assert [a["id"] for a in body["activities"]] == [a["id"] for a in raw_page[:100]]
    for mine, theirs in zip(body["activities"], raw_page, strict=False):
        assert mine["type"] == kinds[theirs["activity_type"]]
        if theirs.get("net_amount") is not None:
            assert mine["net_amount"] == cents(Decimal(theirs["net_amount"]))
        if theirs["activity_type"] == "FILL":
            assert mine["price"] == price_text(theirs["price"])
            assert Decimal(mine["qty"]) == Decimal(theirs["qty"])
            assert mine["side"] == theirs["side"]


def test_transfers(recorder, client, account):
    body = client.get("/api/portfolio/funds?limit=100").json()

    raw_transfers = recorder.last(f"/v1/accounts/{account}/transfers").json()
    assert [(t["id"], t["amount"], t["status"]) for t in body["transfers"]] == [
        (t["id"], cents(Decimal(t["amount"])), t["status"]) for t in raw_transfers[:100]
    ]


def test_assets_of_the_book(recorder, client, account, raw):
    held = [p["symbol"] for p in raw(f"/trading/accounts/{account}/positions")]
    for symbol in held:
        body = client.get(f"/api/assets/{symbol}").json()
        theirs = raw(f"/assets/{symbol}")
        category, sector, industry = expected_classification(symbol)
        assert body["id"] == theirs["id"] and body["name"] == theirs["name"]
        assert body["asset_class"] == theirs["class"]
        assert (body["category"], body["sector"], body["industry"]) == (
            category,
            sector,
            industry,
        )
        assert body["classified"] == (category != "unclassified")
