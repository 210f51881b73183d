"""The sandbox's Broker REST API, through alpaca-py's real BrokerClient.

Runs against the shared sandbox subprocess (40 accounts, one of every shape first). Its
simulated customers keep trading, so assertions hold whatever they do meanwhile: values are
compared within one response, or on ledgers that only grow.
"""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from aiohttp.test_utils import make_mocked_request
from alpaca.broker import BrokerClient
from alpaca.broker.requests import (
    GetAccountActivitiesRequest,
    GetTransfersRequest,
    ListAccountsRequest,
)
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import AssetClass, OrderSide, PositionSide, QueryOrderStatus
from alpaca.trading.models import NonTradeActivity, Order, TradeActivity
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest

from marketdata.sandbox.broker_requests import guarded
from marketdata.sandbox.generation import SHAPES

OPEN_STATUSES = {"new", "accepted", "pending_new", "partially_filled", "held"}


@pytest.fixture(scope="session")
def shapes(accounts: list[dict]) -> dict[str, str]:
    """The first account id of every shape."""
    found: dict[str, str] = {}
    for account in accounts:
        found.setdefault(account["shape"], account["id"])
    assert set(found) == set(SHAPES)
    return found


def assert_refused(response: requests.Response, says: str) -> None:
    """Alpaca's answer to a body it cannot take: 422, code 40010001, naming the field."""
    assert response.status_code == 422
    assert response.json()["code"] == 40010001 and says in response.json()["message"]


def api_error(call, *args) -> APIError:
    with pytest.raises(APIError) as caught:
        call(*args)
    return caught.value


def multiplier(asset_class: AssetClass) -> int:
    return 100 if asset_class == AssetClass.US_OPTION else 1


# -- accounts and positions ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_answers_valid_models(broker: BrokerClient, shapes: dict, shape: str) -> None:
    account_id = shapes[shape]

    account = broker.get_account_by_id(account_id)
    trade = broker.get_trade_account_by_id(account_id)
    positions = broker.get_all_positions_for_account(account_id)
    orders = broker.get_orders_for_account(account_id, GetOrdersRequest(status="all", limit=500))
    transfers = broker.get_transfers_for_account(account_id)
    relationships = broker.get_ach_relationships_for_account(account_id)

    assert str(account.id) == str(trade.id) == account_id
    assert account.status == "ACTIVE" and account.currency == "USD"
    cash, long, short = (
        Decimal(trade.cash), Decimal(trade.long_market_value), Decimal(trade.short_market_value)
    )  # fmt: skip
    assert Decimal(trade.equity) == cash + long + short == Decimal(trade.portfolio_value)
    assert long >= 0 >= short
    # Buying power is what a new order may spend: open buy limit orders hold back their cost.
    open_buys = [o for o in orders if o.side == "buy" and o.status in ("new", "accepted")]
    reserved = sum(
        (Decimal(o.qty) - Decimal(o.filled_qty)) * Decimal(o.limit_price or 0) for o in open_buys
    )
    ceiling = max(cash * int(trade.multiplier), Decimal(0))
    if all(o.limit_price for o in open_buys):
        assert Decimal(trade.buying_power) == max(ceiling - reserved, Decimal(0))
    else:
        assert Decimal(0) <= Decimal(trade.buying_power) <= ceiling
    assert trade.created_at is not None and trade.previous_close is not None
    for position in positions:
        qty, price = Decimal(position.qty), Decimal(position.current_price)
        value = qty * price * multiplier(position.asset_class)
        cost = qty * Decimal(position.avg_entry_price) * multiplier(position.asset_class)
        assert Decimal(position.market_value) == value
        assert Decimal(position.cost_basis) == cost
        assert Decimal(position.unrealized_pl) == value - cost
        assert (position.side == PositionSide.SHORT) == (qty < 0)
        assert abs(Decimal(position.qty_available)) <= abs(qty)
    assert all(isinstance(order, Order) for order in orders)
    assert all(Decimal(t.amount) > 0 for t in transfers)
    if shape == "empty":
        assert not positions and not orders and not transfers and not relationships
        assert Decimal(trade.equity) == 0
    elif shape == "cash_only":
        assert not positions and Decimal(trade.equity) == cash > 0 and transfers
    else:
        assert positions and orders and transfers and relationships
    classes = {position.asset_class for position in positions}
    if shape == "crypto":
        assert classes == {AssetClass.CRYPTO}
    if shape == "option":
        assert AssetClass.US_OPTION in classes
    if shape == "short":
        assert short < 0 and any(p.side == PositionSide.SHORT for p in positions)
    if shape == "fractional":
        assert any(Decimal(p.qty) % 1 for p in positions)


def test_one_position_by_symbol_or_asset_id(broker: BrokerClient, shapes: dict) -> None:
    crypto = broker.get_all_positions_for_account(shapes["crypto"])[0]

    by_symbol = broker.get_open_position_for_account(shapes["crypto"], crypto.symbol)
    unslashed = broker.get_open_position_for_account(
        shapes["crypto"], crypto.symbol.replace("/", "")
    )
    by_id = broker.get_open_position_for_account(shapes["crypto"], crypto.asset_id)

    assert by_symbol.symbol == unslashed.symbol == by_id.symbol == crypto.symbol
    assert by_symbol.qty == crypto.qty
    error = api_error(broker.get_open_position_for_account, shapes["cash_only"], "AAPL")
    assert (error.status_code, error.code) == (404, 40410000)
    assert error.message == "position does not exist"


def test_all_accounts_positions_cover_every_account_that_holds_something(
    broker: BrokerClient, accounts: list[dict], shapes: dict
) -> None:
    everything = broker.get_all_accounts_positions()

    holders = {a["id"] for a in accounts if a["shape"] not in ("empty", "cash_only")}
    assert set(everything.positions) == holders
    for account_id in (shapes["option"], shapes["short"], shapes["crypto"]):
        listed = {p.symbol: p for p in everything.positions[account_id]}
        single = {p.symbol: p for p in broker.get_all_positions_for_account(account_id)}
        assert listed.keys() == single.keys()
        for position in listed.values():
            value = Decimal(position.qty) * Decimal(position.current_price)
            assert Decimal(position.market_value) == value * multiplier(position.asset_class)


def test_list_accounts_filters_and_sorts(broker: BrokerClient, accounts: list[dict]) -> None:
    listed = broker.list_accounts()
    oldest_first = broker.list_accounts(ListAccountsRequest(sort=Sort.ASC))
    target = accounts[3]
    found = broker.list_accounts(ListAccountsRequest(query=target["account_number"]))
    newest = listed[0]
    after = broker.list_accounts(ListAccountsRequest(created_after=newest.created_at))

    assert len(listed) == len(accounts)
    created = [a.created_at for a in listed]
    assert created == sorted(created, reverse=True)
    assert [a.id for a in oldest_first] == [a.id for a in reversed(listed)]
    assert [str(a.id) for a in found] == [target["id"]]
    assert after == []
    assert broker.list_accounts(ListAccountsRequest(status=["INACTIVE"])) == []


def test_unknown_or_malformed_account_is_not_authorized(
    broker: BrokerClient, http: requests.Session, sandbox_url: str
) -> None:
    stranger = str(uuid.uuid4())
    for call in (
        broker.get_account_by_id,
        broker.get_trade_account_by_id,
        broker.get_all_positions_for_account,
        broker.get_orders_for_account,
        broker.get_transfers_for_account,
        broker.get_portfolio_history_for_account,
    ):
        error = api_error(call, stranger)
        assert (error.status_code, error.code) == (401, 40110000), call.__name__
    response = http.get(f"{sandbox_url}/v1/trading/accounts/not-a-uuid/positions", timeout=10)
    assert response.status_code == 401
    assert response.json() == {"code": 40110000, "message": "request is not authorized"}


def test_wrong_credentials_are_refused(sandbox_url: str, shapes: dict) -> None:
    intruder = BrokerClient("sandbox-key", "wrong-secret", sandbox=True, url_override=sandbox_url)

    error = api_error(intruder.get_account_by_id, shapes["one_stock"])

    assert (error.status_code, error.code) == (401, 40110000)


# -- assets, clock, calendar ---------------------------------------------------------------------
def test_assets_by_symbol_pair_and_id(broker: BrokerClient) -> None:
    bitcoin = broker.get_asset("BTC/USD")
    again = broker.get_asset(bitcoin.id)
    everything = broker.get_all_assets()

    assert bitcoin.asset_class == AssetClass.CRYPTO and bitcoin.symbol == "BTC/USD"
    assert bitcoin.min_order_size and bitcoin.price_increment
    assert again.symbol == "BTC/USD"
    classes = {asset.asset_class for asset in everything}
    assert classes == {AssetClass.US_EQUITY, AssetClass.CRYPTO, AssetClass.US_OPTION}
    option = next(a for a in everything if a.asset_class == AssetClass.US_OPTION)
    assert broker.get_asset(option.symbol).asset_class == AssetClass.US_OPTION
    assert not any(hasattr(asset, "sector") for asset in everything)
    error = api_error(broker.get_asset, "NOSUCH")
    assert (error.status_code, error.code, error.message) == (404, 40410000, "asset not found")


def test_assets_filter_by_class(http: requests.Session, sandbox_url: str) -> None:
    crypto = http.get(f"{sandbox_url}/v1/assets", params={"asset_class": "crypto"}, timeout=10)
    inactive = http.get(f"{sandbox_url}/v1/assets", params={"status": "inactive"}, timeout=10)

    assert crypto.json() and {a["class"] for a in crypto.json()} == {"crypto"}
    assert inactive.json() == []


def test_clock_and_calendar(broker: BrokerClient) -> None:
    clock = broker.get_clock()
    start = date.today() - timedelta(days=9)
    days = broker.get_calendar(GetCalendarRequest(start=start, end=start + timedelta(days=6)))

    assert clock.next_close > clock.timestamp and clock.next_open > clock.timestamp
    assert [day.date for day in days] == [start + timedelta(days=i) for i in range(7)]
    assert all(day.open < day.close for day in days)


# -- orders --------------------------------------------------------------------------------------
def test_order_filters(broker: BrokerClient, shapes: dict) -> None:
    account_id = shapes["short"]  # buys, a short sale, a canceled and an open order
    everything = broker.get_orders_for_account(
        account_id, GetOrdersRequest(status="all", limit=500)
    )
    assert {o.side for o in everything} == {OrderSide.BUY, OrderSide.SELL}

    def orders(**query) -> list[Order]:
        return broker.get_orders_for_account(account_id, GetOrdersRequest(**query))

    opened = orders()
    closed = orders(status=QueryOrderStatus.CLOSED, limit=500)
    assert opened and all(o.status in OPEN_STATUSES for o in opened)
    assert closed and all(o.status not in OPEN_STATUSES for o in closed)
    sells = orders(status="all", side=OrderSide.SELL, limit=500)
    assert sells and all(o.side == OrderSide.SELL for o in sells)
    symbol = everything[-1].symbol
    by_symbol = orders(status="all", symbols=[symbol], limit=500)
    assert by_symbol and {o.symbol for o in by_symbol} == {symbol}
    assert len({o.symbol for o in everything}) > 1
    assert len(orders(status="all", limit=2)) == 2
    times = sorted(o.submitted_at for o in everything)
    middle = times[len(times) // 2]
    later = orders(status="all", after=middle, limit=500)
    earlier = orders(status="all", until=middle, limit=500)
    assert later and all(o.submitted_at > middle for o in later)
    assert earlier and all(o.submitted_at < middle for o in earlier)
    descending = [o.submitted_at for o in orders(status="all", limit=500)]
    ascending = [o.submitted_at for o in orders(status="all", limit=500, direction=Sort.ASC)]
    assert descending == sorted(descending, reverse=True) and descending[0] > descending[-1]
    assert ascending == sorted(ascending)
    one = broker.get_order_for_account_by_id(account_id, everything[0].id)
    by_client = broker.get_order_for_account_by_client_id(account_id, one.client_order_id)
    assert one.id == by_client.id == everything[0].id
    error = api_error(broker.get_orders_for_account, account_id, GetOrdersRequest(limit=501))
    assert (error.status_code, error.code) == (422, 40010001)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"symbol": "NOSUCH", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"},
         "NOSUCH"),
        ({"symbol": "SPY", "qty": "1", "side": "hold", "type": "market", "time_in_force": "day"},
         "side"),
        ({"symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day"}, "qty"),
        ({"symbol": "SPY", "qty": "-3", "side": "buy", "type": "market", "time_in_force": "day"},
         "qty"),
        ({"symbol": "SPY", "qty": "1", "side": "buy", "type": "stop", "time_in_force": "day"},
         "type"),
        ({"symbol": "SPY", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "day"},
         "limit_price"),
        ({"symbol": "BTC/USD", "qty": "1", "side": "buy", "type": "market",
          "time_in_force": "day"}, "time_in_force"),
        (["not", "an", "object"], "JSON object"),
    ],
)  # fmt: skip
def test_bad_order_bodies_are_422(
    http: requests.Session, sandbox_url: str, shapes: dict, body: object, says: str
) -> None:
    url = f"{sandbox_url}/v1/trading/accounts/{shapes['cash_only']}/orders"
    assert_refused(http.post(url, json=body, timeout=10), says)


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("transfers", {"transfer_type": "ach", "amount": "abc", "direction": "INCOMING"}, "amount"),
        ("transfers", {"transfer_type": "ach", "amount": "10", "direction": "SIDEWAYS"},
         "direction"),
        ("transfers", {"transfer_type": "wire", "amount": "10", "direction": "INCOMING"},
         "transfer_type"),
        ("transfers", {"relationship_id": "nope", "amount": "10", "direction": "INCOMING"},
         "relationship_id"),
        ("ach_relationships", {"account_owner_name": "A B", "bank_account_type": "CHECKING",
                               "bank_account_number": "123456", "bank_routing_number": "12"},
         "bank_routing_number"),
        ("ach_relationships", {"account_owner_name": "A B", "bank_account_type": "BROKERAGE",
                               "bank_account_number": "123456", "bank_routing_number": "121000358"},
         "bank_account_type"),
    ],
)  # fmt: skip
def test_bad_funding_bodies_are_422(
    http: requests.Session, sandbox_url: str, shapes: dict, path: str, body: dict, says: str
) -> None:
    url = f"{sandbox_url}/v1/accounts/{shapes['cash_only']}/{path}"
    assert_refused(http.post(url, json=body, timeout=10), says)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/trading/accounts/{account}/orders/{unknown}",
        "/v1/accounts/{account}/transfers/{unknown}",
        "/v1/accounts/{account}/ach_relationships/{unknown}",
    ],
)
def test_deleting_what_does_not_exist_is_404(
    http: requests.Session, sandbox_url: str, shapes: dict, path: str
) -> None:
    url = sandbox_url + path.format(account=shapes["one_stock"], unknown=uuid.uuid4())

    response = http.delete(url, timeout=10)

    assert response.status_code == 404
    assert response.json()["code"] == 40410000


# -- activities and transfers: real pagination ---------------------------------------------------
def test_activities_page_until_the_end(
    broker: BrokerClient, http: requests.Session, sandbox_url: str, shapes: dict
) -> None:
    account_id = shapes["diversified"]
    whole = http.get(
        f"{sandbox_url}/v1/accounts/activities",
        params={"account_id": account_id, "page_size": 100},
        timeout=10,
    ).json()
    assert 12 < len(whole) < 100

    pages = broker.get_account_activities(
        GetAccountActivitiesRequest(account_id=account_id, page_size=5),
        handle_pagination="iterator",
    )
    paged = []
    for page in pages:
        assert len(page) <= 5
        paged.extend(page)
        assert len(paged) <= len(whole) + 10, "pagination never ends"

    ids = [activity.id for activity in paged]
    assert ids == sorted(set(ids), reverse=True)
    assert {a["id"] for a in whole} <= set(ids)
    assert {type(a) for a in paged} == {TradeActivity, NonTradeActivity}
    fills = [a for a in paged if isinstance(a, TradeActivity)]
    assert all(a.symbol and a.order_id and a.qty > 0 for a in fills)
    assert all(str(a.account_id) == account_id for a in paged)


def test_activities_filter_by_type_and_date(
    broker: BrokerClient, http: requests.Session, sandbox_url: str, shapes: dict
) -> None:
    account_id = shapes["one_stock"]
    deposits = broker.get_account_activities(
        GetAccountActivitiesRequest(account_id=account_id, activity_types=["CSD", "CSW"])
    )
    assert deposits and {a.activity_type for a in deposits} <= {"CSD", "CSW"}
    day = deposits[0].date
    on_day = broker.get_account_activities(
        GetAccountActivitiesRequest(account_id=account_id, date=day.isoformat())
    )
    assert on_day and all(
        a.date == day if isinstance(a, NonTradeActivity) else a.transaction_time.date() in
        (day, day + timedelta(days=1))
        for a in on_day
    )  # fmt: skip
    by_path = http.get(
        f"{sandbox_url}/v1/accounts/activities/DIV", params={"page_size": 3}, timeout=10
    ).json()
    assert len(by_path) == 3 and {a["activity_type"] for a in by_path} == {"DIV"}
    too_big = http.get(f"{sandbox_url}/v1/accounts/activities?page_size=101", timeout=10)
    assert too_big.status_code == 422


def test_transfers_page_by_offset_until_empty(broker: BrokerClient, shapes: dict) -> None:
    account_id = shapes["one_stock"]
    whole = broker.get_transfers_for_account(account_id)
    assert len(whole) > 2

    pages = broker.get_transfers_for_account(
        account_id, GetTransfersRequest(limit=1), handle_pagination="iterator"
    )
    paged = []
    for page in pages:
        assert len(page) == 1
        paged.extend(page)
        assert len(paged) <= len(whole) + 5, "pagination never ends"

    assert [t.id for t in paged] == [t.id for t in whole]
    assert [t.created_at for t in whole] == sorted((t.created_at for t in whole), reverse=True)
    incoming = broker.get_transfers_for_account(
        account_id, GetTransfersRequest(direction="INCOMING")
    )
    assert incoming and all(t.direction == "INCOMING" for t in incoming)


# -- failures never escape -----------------------------------------------------------------------
def test_malformed_queries_are_422_not_500(
    http: requests.Session, sandbox_url: str, shapes: dict
) -> None:
    account_id = shapes["one_stock"]
    for path, params in (
        (f"/v1/trading/accounts/{account_id}/orders", {"after": "yesterday"}),
        (f"/v1/trading/accounts/{account_id}/orders", {"direction": "sideways"}),
        (f"/v1/trading/accounts/{account_id}/orders", {"limit": "ten"}),
        (f"/v1/accounts/{account_id}/transfers", {"offset": "-1"}),
        ("/v1/accounts/activities", {"page_token": "not-an-id"}),
        ("/v1/accounts/activities", {"date": "2024-01-01", "after": "2024-01-01"}),
        ("/v1/calendar", {"start": "2024-13-01"}),
    ):
        response = http.get(sandbox_url + path, params=params, timeout=10)
        assert response.status_code == 422, (path, params)
        assert response.json()["code"] == 40010001


async def test_an_unexpected_failure_is_logged_and_answered_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: object) -> None:
        raise ZeroDivisionError("a bug")

    response = await guarded(broken)(make_mocked_request("GET", "/v1/clock"))

    assert response.status == 500
    assert response.text == '{"code":50010000,"message":"internal server error"}'
    assert "ZeroDivisionError: a bug" in caplog.text
