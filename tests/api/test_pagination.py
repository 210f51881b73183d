"""Paging through orders, activities and transfers loses nothing and repeats nothing.

The sandbox's simulated customers keep trading, so a listing can only grow while the test
pages: everything listed before must be paged through, and nothing not listed after.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from alpaca.trading.enums import ActivityType

from portfolio.api.pagination import encode_order_cursor
from portfolio.selectors import ACTIVITY_TYPES, OrderCursor

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(shape_account) -> str:
    return shape_account["diversified"]


@pytest.fixture
def client(account, link, client_for, redis_client):
    return client_for(link(account))


def page_through(client, path: str, key: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(200):
        answer = client.get(path + (f"&cursor={cursor}" if cursor else "")).json()
        items.extend(answer[key])
        cursor = answer["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def all_activities(raw, account: str) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = raw(
            "/accounts/activities",
            account_id=account,
            page_size=100,
            **({"page_token": token} if token else {}),
        )
        ids.extend(item["id"] for item in page)
        if len(page) < 100:
            return ids
        token = page[-1]["id"]


@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_orders_page_by_time_without_gaps_or_repeats(client, raw, account, direction):
    path = f"/api/trading/accounts/{account}/orders"
    before = raw(path[4:], status="all", limit=500, direction=direction)

    paged = page_through(client, f"/api/portfolio/orders?limit=3&direction={direction}", "orders")

    after = raw(path[4:], status="all", limit=500, direction=direction)
    ids = [order["id"] for order in paged]
    assert len(ids) == len(set(ids))
    assert {o["id"] for o in before} <= set(ids) <= {o["id"] for o in after}
    times = [order["submitted_at"] for order in paged]
    assert times == sorted(times, reverse=direction == "desc")


def test_a_cursor_resumes_at_its_time_and_skips_what_it_saw(client, raw, account):
    orders = raw(f"/trading/accounts/{account}/orders", status="all", limit=500)
    middle = orders[len(orders) // 2]
    at = datetime.fromisoformat(middle["submitted_at"])

    seen = OrderCursor(at, (middle["id"],))
    unseen = OrderCursor(at, ())

    def first_after(cursor: OrderCursor) -> str:
        query = f"limit=1&cursor={encode_order_cursor(cursor)}"
        return client.get(f"/api/portfolio/orders?{query}").json()["orders"][0]["id"]

    assert first_after(unseen) == middle["id"]  # an order at the cursor's time is not lost
    assert first_after(seen) == orders[len(orders) // 2 + 1]["id"]  # nor repeated


def test_activities_page_without_gaps_or_repeats(client, raw, account):
    before = all_activities(raw, account)

    paged = page_through(client, "/api/portfolio/activities?page_size=7", "activities")

    ids = [activity["id"] for activity in paged]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert set(before) <= set(ids) <= set(all_activities(raw, account))


def test_activities_filter_by_type(client):
    answer = client.get("/api/portfolio/activities?type=deposit,dividend&page_size=100").json()

    assert answer["activities"]
    assert {a["type"] for a in answer["activities"]} <= {"deposit", "dividend"}
    assert {a["activity_type"] for a in answer["activities"]} <= {"CSD", "DIV"}


def test_transfers_page_without_gaps_or_repeats(client, raw, account):
    listed = [t["id"] for t in raw(f"/accounts/{account}/transfers", limit=500)]

    paged = page_through(client, "/api/portfolio/funds?limit=2", "transfers")

    assert [t["id"] for t in paged] == listed


def test_orders_filtered_by_symbol_and_side(client, raw, account):
    orders = raw(f"/trading/accounts/{account}/orders", status="all", limit=500)
    symbol = orders[0]["symbol"]

    answer = client.get(f"/api/portfolio/orders?symbols={symbol.lower()}&side=buy").json()

    expected = [o["id"] for o in orders if o["symbol"] == symbol and o["side"] == "buy"]
    assert [o["id"] for o in answer["orders"]] == expected


def test_every_alpaca_activity_code_has_exactly_one_type(client):
    codes = [code for codes in ACTIVITY_TYPES.values() for code in codes]
    assert sorted(codes) == sorted(kind.value for kind in ActivityType)
    assert client.get("/api/portfolio/activities?type=other").status_code == 200
