"""The exchange: orders fill over time and book exactly, transfers settle, customers keep trading.

Each test serves its own small sandbox in-process (``tests.sandbox.inprocess``) so it can
spend, deposit and trade without disturbing the shared one, and drives it the way a client
does: alpaca-py's BrokerClient for REST, the v2 SSE streams for what happened.
"""

import asyncio
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
from alpaca.broker import BrokerClient
from alpaca.broker.enums import BankAccountType, TransferDirection, TransferTiming
from alpaca.broker.requests import (
    CreateACHRelationshipRequest,
    CreateACHTransferRequest,
    GetAccountActivitiesRequest,
    GetEventsRequest,
)
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import ActivityType, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from marketdata.sandbox.accounts import Account
from marketdata.sandbox.errors import ApiError
from marketdata.sandbox.events import EventLog
from marketdata.sandbox.server import Sandbox, SandboxConfig
from tests.sandbox.inprocess import EventStream, Served, served

CENT = Decimal("0.01")
T = TypeVar("T")


def account_of(live: Served, shape: str) -> Account:
    return next(a for a in live.sandbox.world.accounts.values() if a.shape == shape)


def cheapest_holding(live: Served, account: Account) -> str:
    stocks = [s for s, h in account.holdings.items() if h.asset.asset_class == "us_equity"]
    return min(stocks, key=live.sandbox.market.last_price)


async def call(function: Callable[..., T], *args: object) -> T:
    """Run a blocking alpaca-py call off the loop that serves the sandbox."""
    return await asyncio.to_thread(function, *args)


async def positions(live: Served, account_id: str) -> dict[str, Decimal]:
    found = await call(live.broker().get_all_positions_for_account, account_id)
    return {p.symbol: Decimal(p.qty) for p in found}


async def cash(live: Served, account_id: str) -> Decimal:
    return Decimal((await call(live.broker().get_trade_account_by_id, account_id)).cash)


async def place(
    client: BrokerClient,
    account_id: str,
    symbol: str,
    side: OrderSide,
    qty: float,
    time_in_force: TimeInForce = TimeInForce.DAY,
    limit: Decimal | None = None,
) -> Order:
    """A market order, or a limit order at ``limit`` (to the cent), through the SDK."""
    fields = {"symbol": symbol, "qty": qty, "side": side, "time_in_force": time_in_force}
    order = (
        MarketOrderRequest(**fields)
        if limit is None
        else LimitOrderRequest(**fields, limit_price=float(limit.quantize(CENT)))
    )
    return await call(client.submit_order_for_account, account_id, order)


def ach_transfer(
    amount: str, direction: TransferDirection, relationship_id: object
) -> CreateACHTransferRequest:
    """An immediate ACH transfer of ``amount`` dollars (decimal text) by the bank relationship."""
    return CreateACHTransferRequest(
        amount=amount,
        direction=direction,
        timing=TransferTiming.IMMEDIATE,
        relationship_id=relationship_id,
    )


async def test_a_market_order_fills_and_books_exactly() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = account_of(live, "diversified")
        account_id = str(account.id)
        symbol = cheapest_holding(live, account)
        held = (await positions(live, account_id))[symbol]
        cash_before = await cash(live, account_id)
        async with http.get("/v2/events/trades", params={"account_id": account_id}) as response:
            order = await place(live.broker(), account_id, symbol, OrderSide.BUY, 2)
            assert order.status == OrderStatus.ACCEPTED
            updates = await EventStream(response).data_until(
                lambda d: d["event"] == "fill" and d["order"]["id"] == str(order.id)
            )
        assert [u["order"]["id"] for u in updates] == [str(order.id)] * len(updates)
        assert updates[0]["event"] == "new"
        fills = updates[1:]
        assert {u["event"] for u in fills[:-1]} <= {"partial_fill"}
        assert sum(Decimal(f["qty"]) for f in fills) == 2
        assert Decimal(fills[-1]["position_qty"]) == held + 2
        spent = sum((Decimal(f["qty"]) * Decimal(f["price"])).quantize(CENT) for f in fills)

        assert (await positions(live, account_id))[symbol] == held + 2
        assert await cash(live, account_id) == cash_before - spent
        ledger = await call(
            live.broker().get_account_activities,
            GetAccountActivitiesRequest(account_id=account_id, activity_types=[ActivityType.FILL]),
        )
        booked = [a for a in ledger if a.order_id == order.id]
        assert sorted((Decimal(str(a.qty)), Decimal(str(a.price))) for a in booked) == sorted(
            (Decimal(f["qty"]), Decimal(f["price"])) for f in fills
        )


async def test_limit_orders_fill_when_crossed_and_cancel_while_open() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = account_of(live, "diversified")
        account_id = str(account.id)
        symbol = cheapest_holding(live, account)
        last = live.sandbox.market.last_price(symbol)
        client = live.broker()
        async with http.get("/v2/events/trades", params={"account_id": account_id}) as response:
            stream = EventStream(response)
            buy = functools.partial(place, client, account_id, symbol, OrderSide.BUY, 1)
            marketable = await buy(TimeInForce.GTC, last * Decimal("1.05"))
            [*_, fill] = await stream.data_until(
                lambda d: d["event"] == "fill" and d["order"]["id"] == str(marketable.id)
            )
            assert Decimal(fill["price"]) <= Decimal(fill["order"]["limit_price"])

            resting = await buy(TimeInForce.DAY, last / 2)
            await stream.data_until(
                lambda d: d["event"] == "new" and d["order"]["id"] == str(resting.id)
            )
            await call(client.cancel_order_for_account_by_id, account_id, resting.id)
            [*_, canceled] = await stream.data_until(lambda d: d["order"]["id"] == str(resting.id))
        assert canceled["event"] == "canceled"
        assert canceled["order"]["status"] == "canceled"
        assert canceled["order"]["filled_qty"] == "0"
        with pytest.raises(APIError) as refused:
            await call(client.cancel_order_for_account_by_id, account_id, resting.id)
        assert (refused.value.status_code, refused.value.code) == (422, 42210000)


async def test_orders_alpaca_would_refuse_are_refused() -> None:
    async with served() as live:
        account = account_of(live, "diversified")
        account_id = str(account.id)
        symbol = cheapest_holding(live, account)
        held = account.holdings[symbol].qty
        client = live.broker()
        with pytest.raises(APIError) as too_many:
            await place(client, account_id, symbol, OrderSide.SELL, float(held + 1))
        assert (too_many.value.status_code, too_many.value.code) == (403, 40310000)
        message = (
            f"insufficient qty available for order (requested: {held + 1:f}, available: {held:f})"
        )
        assert too_many.value.message == message

        unaffordable = int(account.cash / live.sandbox.market.last_price(symbol)) + 1
        with pytest.raises(APIError) as too_dear:
            await place(client, account_id, symbol, OrderSide.BUY, unaffordable)
        assert (too_dear.value.status_code, too_dear.value.code) == (403, 40310000)
        assert too_dear.value.message == "insufficient buying power"

        option = next(
            a for a in live.sandbox.market.assets.values() if a.asset_class == "us_option"
        )
        with pytest.raises(ApiError) as fractional:
            live.sandbox.exchange.submit_order(
                account, option, "buy", Decimal("0.5"), "market", "day", None, None
            )
        assert (fractional.value.status, fractional.value.code) == (422, 40010001)
        assert live.sandbox.exchange.stats().get("orders_submitted", 0) == 0


async def test_an_ach_deposit_settles_through_its_statuses_and_moves_cash_exactly() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = account_of(live, "cash_only")
        account_id = str(account.id)
        client = live.broker()
        cash_before = await cash(live, account_id)
        async with http.get(
            "/v2/events/funding/status", params={"account_id": account_id}
        ) as response:
            stream = EventStream(response)
            relationship = await call(
                client.create_ach_relationship_for_account,
                account_id,
                CreateACHRelationshipRequest(
                    account_owner_name=account.owner,
                    bank_account_type=BankAccountType.CHECKING,
                    bank_account_number="123456789",
                    bank_routing_number="121000358",
                ),
            )
            approval = await stream.data_until(lambda d: d["status_to"] == "APPROVED")
            transfer = await call(
                client.create_transfer_for_account,
                account_id,
                ach_transfer("250.00", TransferDirection.INCOMING, relationship.id),
            )
            settled = await stream.data_until(lambda d: d["status_to"] == "COMPLETE")
        assert [
            (u["entity_type"], u["entity_id"], u["status_from"], u["status_to"]) for u in approval
        ] == [
            ("BankRelationship", str(relationship.id), "", "QUEUED"),
            ("BankRelationship", str(relationship.id), "QUEUED", "APPROVED"),
        ]
        assert [
            (u["entity_type"], u["entity_id"], u["status_from"], u["status_to"]) for u in settled
        ] == [
            ("Transfer", str(transfer.id), "", "QUEUED"),
            ("Transfer", str(transfer.id), "QUEUED", "SENT_TO_CLEARING"),
            ("Transfer", str(transfer.id), "SENT_TO_CLEARING", "COMPLETE"),
        ]
        assert await cash(live, account_id) == cash_before + Decimal("250.00")
        deposits = await call(
            client.get_account_activities,
            GetAccountActivitiesRequest(account_id=account_id, activity_types=[ActivityType.CSD]),
        )
        assert any(str(transfer.id) in d.description and d.net_amount == 250 for d in deposits)

        # alpaca-py's legacy transfer stream carries the transfer's events and nothing else.
        published = live.sandbox.events.stats()["funding"]["published"]
        legacy = await call(
            lambda: [
                json.loads(e)
                for e in client.get_transfer_events(
                    GetEventsRequest(since_id=0, until_id=published)
                )
            ]
        )
        assert [(e["transfer_id"], e["status_to"]) for e in legacy] == [
            (str(transfer.id), status) for status in ("QUEUED", "SENT_TO_CLEARING", "COMPLETE")
        ]


async def test_transfers_are_refused_or_canceled_as_alpaca_does() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = account_of(live, "cash_only")
        account_id = str(account.id)
        bank = account.relationships[0].id
        client = live.broker()
        cash_before = await cash(live, account_id)
        too_much = ach_transfer(f"{cash_before + 1:f}", TransferDirection.OUTGOING, bank)
        with pytest.raises(APIError) as refused:
            await call(client.create_transfer_for_account, account_id, too_much)
        assert (refused.value.status_code, refused.value.code) == (403, 40310000)

        async with http.get(
            "/v2/events/funding/status", params={"account_id": account_id}
        ) as response:
            withdrawal = await call(
                client.create_transfer_for_account,
                account_id,
                ach_transfer("100.00", TransferDirection.OUTGOING, bank),
            )
            await call(client.cancel_transfer_for_account, account_id, withdrawal.id)
            updates = await EventStream(response).data_until(lambda d: d["status_to"] == "CANCELED")
        assert [(u["status_from"], u["status_to"]) for u in updates] == [
            ("", "QUEUED"),
            ("QUEUED", "CANCELED"),
        ]
        with pytest.raises(APIError) as late:
            await call(client.cancel_transfer_for_account, account_id, withdrawal.id)
        assert (late.value.status_code, late.value.code) == (422, 42210000)
        assert await cash(live, account_id) == cash_before


async def test_simulated_customers_trade_without_changing_any_account_shape() -> None:
    async with (
        served(EventLog(heartbeat_seconds=5), orders_per_minute=6000) as live,
        live.http() as http,
    ):
        accounts = live.sandbox.world.accounts.values()
        # Fills come at least half a second after an order, so nothing has moved yet.
        before = {a.id: {s: h.qty > 0 for s, h in a.holdings.items()} for a in accounts}
        async with http.get("/v2/events/trades") as response:
            stream = EventStream(response)
            fills: list[dict] = []
            while len(fills) < 20:
                [*_, update] = await stream.data_until(
                    lambda d: d["event"] in ("fill", "partial_fill")
                )
                fills.append(update)
        after = {a.id: {s: h.qty > 0 for s, h in a.holdings.items()} for a in accounts}
    assert after == before
    traded = {f["account_id"] for f in fills}
    shapes = {str(a.id): a.shape for a in accounts}
    assert len(traded) >= 3
    assert not {shapes[a] for a in traded} & {"empty", "cash_only"}
    for fill in fills:
        qty = Decimal(fill["qty"])
        if shapes[fill["account_id"]] != "fractional" and fill["order"]["asset_class"] != "crypto":
            assert qty == qty.to_integral_value(), fill


def test_a_closed_market_queues_market_orders_and_expires_day_orders_at_its_close() -> None:
    sandbox = Sandbox(SandboxConfig(accounts=12, symbols=60, calendar="nyse", orders_per_minute=0))
    exchange, calendar = sandbox.exchange, sandbox.market.stock_calendar
    account = next(a for a in sandbox.world.accounts.values() if a.shape == "diversified")
    symbol = min(
        (s for s, h in account.holdings.items() if h.asset.asset_class == "us_equity"),
        key=sandbox.market.last_price,
    )
    asset = sandbox.market.assets[symbol]
    market = exchange.submit_order(account, asset, "buy", Decimal(1), "market", "gtc", None, None)
    low = (sandbox.market.last_price(symbol) / 2).quantize(CENT)
    limit = exchange.submit_order(account, asset, "buy", Decimal(1), "limit", "day", low, None)
    closed = calendar.next_close(datetime.now(UTC)) + timedelta(minutes=1)
    opens = calendar.next_open(closed)

    exchange.tick(closed)
    assert (limit.status, limit.expired_at) == ("expired", closed)
    exchange.tick(closed + timedelta(seconds=5))
    exchange.tick(opens - timedelta(seconds=1))
    assert market.status == "new"
    exchange.tick(opens + timedelta(seconds=5))
    assert market.status == "filled"
    assert opens < market.filled_at <= opens + timedelta(seconds=5)
    assert exchange.stats()["orders_expired"] == 1
