"""Broker events into the account book (:mod:`marketdata.book`), and out to live sockets.

``manage.py consume_events`` follows Alpaca's trade and funding event streams
(:class:`marketdata.events.EventStream`): fills and partial fills move the cached holding and
cash at once; a transfer reaching COMPLETE moves cash; both name the account on
``clera:changes``. A correction (bust, correct), a returned transfer or a gap in a stream
marks balances due for the next collection to fetch. Every trade event is also published on
the pub/sub channel ``clera:trade_updates`` (the broker's JSON plus ``event_id``), which the
calculator's trade relay pushes to live accounts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation

from marketdata import book, moments
from marketdata.broker import gateway
from marketdata.errors import BrokerError
from marketdata.events import FUNDING_PATH, TRADES_PATH, BrokerEvent, EventStream
from marketdata.store import redis_client

logger = logging.getLogger(__name__)

TRADE_UPDATES_CHANNEL = "clera:trade_updates"
FILL_EVENTS = frozenset({"fill", "partial_fill"})
#: Trade events that change a past fill; the book cannot redo the arithmetic, so it refetches.
CORRECTIONS = frozenset({"trade_bust", "trade_correct"})
#: Transfer statuses after which the broker's cash is not what the book computed.
TRANSFER_REVERSALS = frozenset({"RETURNED"})
#: Pages of an account's transfers searched for the one an event names.
TRANSFER_PAGES = 4


class MalformedEvent(ValueError):
    """A broker event without the fields its kind needs."""


def _event_time(data: dict) -> datetime:
    moment = moments.parse_stored(data.get("at") or data.get("timestamp"))
    if moment is None:
        raise MalformedEvent("no readable at/timestamp")
    return moment


def _amount(data: dict, name: str) -> Decimal:
    try:
        return Decimal(str(data[name]))
    except (KeyError, InvalidOperation) as error:
        raise MalformedEvent(f"no readable {name}") from error


def _fill(event: BrokerEvent) -> book.Fill:
    data = event.data
    order = data.get("order")
    if not isinstance(order, dict) or not data.get("account_id"):
        raise MalformedEvent("no order or account_id")
    side = order.get("side")
    if side not in ("buy", "sell") or not order.get("symbol"):
        raise MalformedEvent("order without side or symbol")
    return book.Fill(
        account_id=str(data["account_id"]),
        event_id=event.id,
        symbol=str(order["symbol"]),
        asset_class=str(order.get("asset_class") or "us_equity"),
        side=side,
        qty=_amount(data, "qty"),
        price=_amount(data, "price"),
        position_qty=_amount(data, "position_qty")
        if data.get("position_qty") is not None
        else None,
        at=_event_time(data),
    )


def handle_trade_event(event: BrokerEvent) -> None:
    """A fill changes the account's cached holding and cash at once; a correction has its
    balances fetched again; every trade event goes out on ``clera:trade_updates``."""
    kind = event.data.get("event")
    account_id = event.data.get("account_id")
    try:
        if kind in FILL_EVENTS:
            book.apply_fill(_fill(event))
        elif kind in CORRECTIONS and account_id:
            book.mark_balances_due([str(account_id)])
    except MalformedEvent as problem:
        logger.error("trade event %s (%s) ignored: %s", event.id, kind, problem)
        return
    redis_client().publish(TRADE_UPDATES_CHANNEL, json.dumps({**event.data, "event_id": event.id}))


def handle_funding_event(event: BrokerEvent) -> None:
    """A transfer reaching COMPLETE moves the account's cached cash by its amount (looked up
    from the broker: the event does not carry it); a returned one has its balances refetched."""
    data = event.data
    account_id = data.get("account_id")
    if data.get("entity_type") != "Transfer" or not account_id:
        return
    status = data.get("status_to")
    if status in TRANSFER_REVERSALS:
        book.mark_balances_due([str(account_id)])
        return
    if status != "COMPLETE":
        return
    try:
        at = _event_time(data)
        amount = _transfer_amount(str(account_id), str(data.get("entity_id")))
    except (MalformedEvent, BrokerError) as problem:
        logger.warning("transfer event %s: balances refetched instead (%s)", event.id, problem)
        book.mark_balances_due([str(account_id)])
        return
    book.apply_cash(str(account_id), event.id, amount, at)


def _transfer_amount(account_id: str, transfer_id: str) -> Decimal:
    """The signed amount of one transfer (positive in), found in the account's recent pages."""
    limit = 50
    for page in range(TRANSFER_PAGES):
        transfers = gateway().transfers(account_id, limit=limit, offset=page * limit)
        for transfer in transfers:
            if transfer.id == transfer_id:
                return transfer.amount if transfer.direction == "INCOMING" else -transfer.amount
        if len(transfers) < limit:
            break
    raise MalformedEvent(f"transfer {transfer_id} not among the account's recent transfers")


def _events_gap() -> None:
    """Events were lost: every account's cash may be off until its balances are fetched."""
    book.mark_balances_due(book.account_ids())


def event_streams() -> tuple[EventStream, EventStream]:
    return (
        EventStream("trades", TRADES_PATH, handle_trade_event, on_gap=_events_gap),
        EventStream("funding", FUNDING_PATH, handle_funding_event, on_gap=_events_gap),
    )


async def consume_events() -> None:
    """Follow the trade and funding streams until cancelled."""
    await asyncio.gather(*(stream.run() for stream in event_streams()))
