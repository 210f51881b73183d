"""The sandbox sends what Alpaca sends, and both readers take it: alpaca-py's models and ours.

* positions opened or added to today report Alpaca's intraday P/L (from the entry price for
  today's shares), and our valuation shows exactly that day change;
* the trade account's ``last_*`` balances are strings (the previous close's), not null;
* an odd account's moments are New York times with an offset and nine fraction digits, the
  clock and ``previous_close`` always are: both readers land on the same instant;
* a portfolio history with millisecond epochs (the ``history_milliseconds`` knob) reads as
  the one in seconds does.
"""

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alpaca.broker import BrokerClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, GetPortfolioHistoryRequest, MarketOrderRequest
from django.test import override_settings

from marketdata import moments
from marketdata.broker import gateway
from marketdata.sandbox.events import EventLog
from portfolio.pricing import broker_inputs
from portfolio.valuation import value_account
from tests.sandbox.inprocess import EventStream, Served, served

UTC_FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
NEW_YORK_NS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}-0[45]:00")
NEW_YORK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?-0[45]:00")
LAST_BALANCES = (
    "last_cash",
    "last_long_market_value",
    "last_short_market_value",
    "last_initial_margin",
    "last_regt_buying_power",
    "last_buying_power",
)


def multiplier(position: dict) -> int:
    return 100 if position["asset_class"] == "us_option" else 1


# -- positions opened today ----------------------------------------------------------------------
async def today_by_symbol(live: Served, account_id: str) -> tuple[list[dict], dict[str, list]]:
    """The account's raw positions, and its fills since the previous close by symbol (read
    around the positions: the in-process sandbox has no customers, so nothing moves)."""
    async with live.http() as http:
        trade = await (await http.get(f"/v1/trading/accounts/{account_id}/account")).json()
        fills = await (
            await http.get(
                "/v1/accounts/activities",
                params={
                    "account_id": account_id,
                    "activity_types": "FILL",
                    "after": trade["previous_close"],
                    "direction": "asc",
                },
            )
        ).json()
        positions = await (await http.get(f"/v1/trading/accounts/{account_id}/positions")).json()
    today: dict[str, list] = {}
    for fill in fills:
        today.setdefault(fill["symbol"], []).append(fill)
    return positions, today


def expected_intraday(position: dict, fills: list[dict]) -> tuple[Decimal, bool]:
    """Alpaca's intraday P/L of a position that only bought today, recomputed: shares held at
    the close from the close, today's from their price; and whether it was opened today."""
    qty, factor = Decimal(position["qty"]), multiplier(position)
    bought = sum((Decimal(f["qty"]) for f in fills), Decimal(0))
    cost = sum((Decimal(f["qty"]) * Decimal(f["price"]) for f in fills), Decimal(0))
    held = qty - bought
    basis = (held * Decimal(position["lastday_price"]) + cost) * factor
    return qty * Decimal(position["current_price"]) * factor - basis, held == 0


async def test_positions_bought_today_change_from_their_entry_price() -> None:
    """Generated accounts opened (fractional) or added to (diversified) a position today;
    alpaca-py reads them, and our REST valuation's day change is Alpaca's intraday P/L."""
    async with served(accounts=20, quotes_per_second=0) as live:  # prices hold still
        opened = added = 0
        for account in live.sandbox.world.accounts.values():
            account_id = str(account.id)
            positions, today = await today_by_symbol(live, account_id)
            with override_settings(ALPACA_BROKER_URL=live.origin):
                inputs = await asyncio.to_thread(broker_inputs, account_id)
            valued = {h.symbol: h for h in value_account(inputs, datetime.now(UTC)).holdings}
            for position in positions:
                intraday = Decimal(position["unrealized_intraday_pl"])
                assert valued[position["symbol"]].day_change == intraday
                fills = today.get(position["symbol"], [])
                if not fills:
                    continue
                assert {f["side"] for f in fills} == {"buy"}
                expected, fresh = expected_intraday(position, fills)
                assert intraday == expected
                if fresh:
                    entry = Decimal(position["avg_entry_price"])
                    assert intraday == Decimal(position["unrealized_pl"])
                    close = Decimal(position["lastday_price"])
                    assert entry == close or intraday != Decimal(position["qty"]) * (
                        Decimal(position["current_price"]) - close
                    )
                opened += fresh
                added += not fresh
            sdk = await asyncio.to_thread(live.broker().get_all_positions_for_account, account_id)
            assert [p.unrealized_intraday_pl for p in sdk] == [
                p["unrealized_intraday_pl"] for p in positions
            ]
        assert opened and added


async def test_a_fill_today_opens_a_position_measured_from_its_fill() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = next(a for a in live.sandbox.world.accounts.values() if a.shape == "cash_only")
        account_id = str(account.id)
        symbol = min(
            (a.symbol for a in live.sandbox.market.assets.values() if a.category == "stock"),
            key=live.sandbox.market.last_price,
        )
        async with http.get("/v2/events/trades", params={"account_id": account_id}) as response:
            order = await asyncio.to_thread(
                live.broker().submit_order_for_account,
                account_id,
                MarketOrderRequest(
                    symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                ),
            )
            await EventStream(response).data_until(
                lambda d: d["event"] == "fill" and d["order"]["id"] == str(order.id)
            )
        (position,), today = await today_by_symbol(live, account_id)
        (fill,) = today[symbol]
        assert Decimal(position["avg_entry_price"]) == Decimal(fill["price"])
        assert Decimal(position["unrealized_intraday_pl"]) == Decimal(
            position["current_price"]
        ) - Decimal(fill["price"])


# -- balances at the previous close --------------------------------------------------------------
@pytest.mark.parametrize("shape", ["one_stock", "short", "cash_only", "empty", "option"])
def test_previous_close_balances_are_strings(
    http, sandbox_url, accounts, broker: BrokerClient, shape: str
) -> None:
    account_id = next(a["id"] for a in accounts if a["shape"] == shape)

    raw = http.get(f"{sandbox_url}/v1/trading/accounts/{account_id}/account").json()
    parsed = broker.get_trade_account_by_id(account_id)

    assert all(isinstance(raw[key], str) for key in LAST_BALANCES), raw
    last = {key: Decimal(raw[key]) for key in LAST_BALANCES}
    assert last["last_cash"] + last["last_long_market_value"] + last[
        "last_short_market_value"
    ] == Decimal(raw["last_equity"])
    assert last["last_long_market_value"] >= 0 >= last["last_short_market_value"]
    assert last["last_buying_power"] == max(last["last_cash"] * int(raw["multiplier"]), Decimal(0))
    assert parsed.last_cash == raw["last_cash"]
    assert parsed.last_long_market_value == raw["last_long_market_value"]


# -- moments in both forms -----------------------------------------------------------------------
def test_both_forms_of_moment_read_as_the_same_instant(
    http, sandbox_url, accounts, broker: BrokerClient
) -> None:
    traded = [a["id"] for a in accounts if a["shape"] not in ("empty", "cash_only")]
    odd = next(a for a in traded if int(a.replace("-", ""), 16) % 2)
    even = next(a for a in traded if not int(a.replace("-", ""), 16) % 2)
    for account_id, form in ((odd, NEW_YORK_NS), (even, UTC_FORM)):
        base = f"{sandbox_url}/v1"
        raw_orders = http.get(
            f"{base}/trading/accounts/{account_id}/orders", params={"status": "all"}
        ).json()
        raw_account = http.get(f"{base}/accounts/{account_id}").json()
        raw_transfers = http.get(f"{base}/accounts/{account_id}/transfers").json()
        fills = http.get(
            f"{base}/accounts/activities",
            params={"account_id": account_id, "activity_types": "FILL"},
        ).json()
        stamps = [o["created_at"] for o in raw_orders] + [raw_account["created_at"]]
        stamps += [t["updated_at"] for t in raw_transfers] + [f["transaction_time"] for f in fills]
        assert stamps and all(form.fullmatch(stamp) for stamp in stamps), stamps

        # Simulated customers may trade meanwhile: compare the orders and fills every read has.
        sdk_orders = broker.get_orders_for_account(account_id, GetOrdersRequest(status="all"))
        ours = {o.id: o.created_at for o in gateway().orders(account_id, status="all")}
        raw = {o["id"]: moments.parse(o["created_at"]) for o in raw_orders}
        sdk = {str(o.id): o.created_at for o in sdk_orders}
        common = raw.keys() & ours.keys() & sdk.keys()
        assert len(common) >= len(raw) - 5
        assert (
            {i: ours[i] for i in common}
            == {i: raw[i] for i in common}
            == {i: sdk[i] for i in common}
        )
        snapshot = gateway().account(account_id)
        assert snapshot.created_at == broker.get_trade_account_by_id(account_id).created_at
        assert snapshot.created_at == moments.parse(raw_account["created_at"])
        our_fills, _ = gateway().activities(account_id, activity_types=["FILL"])
        raw_at = {f["id"]: moments.parse(f["transaction_time"]) for f in fills}
        both = {a.id for a in our_fills} & raw_at.keys()
        assert len(both) >= len(raw_at) - 5
        assert {a.id: a.at for a in our_fills if a.id in both} == {i: raw_at[i] for i in both}

    clock = http.get(f"{sandbox_url}/v1/clock").json()
    assert NEW_YORK_NS.fullmatch(clock["timestamp"]) and NEW_YORK.fullmatch(clock["next_open"])
    assert broker.get_clock().next_open == gateway().clock().next_open
    previous_close = http.get(f"{sandbox_url}/v1/trading/accounts/{odd}/account").json()
    assert NEW_YORK.fullmatch(previous_close["previous_close"])


# -- history in milliseconds ---------------------------------------------------------------------
def test_history_in_milliseconds_reads_as_in_seconds(
    faults, http, sandbox_url, accounts, broker: BrokerClient
) -> None:
    account_id = next(a["id"] for a in accounts if a["shape"] == "diversified")
    path = f"{sandbox_url}/v1/trading/accounts/{account_id}/account/portfolio/history"
    query = {"period": "1M", "timeframe": "1D"}
    in_seconds = gateway().portfolio_history(account_id, **query)

    faults(history_milliseconds=1)

    raw = http.get(path, params=query).json()
    assert raw["timestamp"] and all(t >= moments.MILLISECONDS_FROM for t in raw["timestamp"])
    sdk = broker.get_portfolio_history_for_account(account_id, GetPortfolioHistoryRequest(**query))
    assert sdk.timestamp == raw["timestamp"]
    in_milliseconds = gateway().portfolio_history(account_id, **query)
    assert in_milliseconds.timestamps == in_seconds.timestamps
    assert in_milliseconds.timestamps[0] == moments.from_epoch(raw["timestamp"][0] // 1000)
