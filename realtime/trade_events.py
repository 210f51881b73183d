"""The broker's trade events, pushed to the accounts being watched (the calculator's process).

Trade events on the pub/sub channel ``clera:trade_updates`` (:mod:`realtime.broker_events`)
are turned into the API's JSON (:func:`portfolio.presenters.order_json`, money per
:mod:`portfolio.money`), collected per account for TRADE_BATCH_WINDOW (1 s) from the first,
and pushed to live accounts as ``portfolio.orders`` (every order event) and
``portfolio.positions`` (fills: the position's new quantity) through
:func:`realtime.fanout.push_events`. An unreadable event is logged and dropped; a Redis
failure is waited out with :mod:`marketdata.backoff`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import redis
import redis.asyncio
from django.conf import settings

from marketdata import moments
from marketdata.backoff import REDIS_MAX_BACKOFF, Backoff
from marketdata.store import async_redis_client, parse_decimal
from marketdata.types import Order
from portfolio import money
from portfolio.presenters import order_json

from . import fanout, presence, stats
from .broker_events import FILL_EVENTS, TRADE_UPDATES_CHANNEL

logger = logging.getLogger(__name__)


def _decimal(value: object) -> Decimal | None:
    return parse_decimal(None if value is None else str(value))


def trade_event_json(data: Mapping[str, Any]) -> tuple[str, dict, dict | None] | None:
    """An Alpaca trade event as ``(account_id, order event, position event or None)`` in the
    API's JSON; None for an event without an account or a readable order."""
    account_id = data.get("account_id")
    try:
        order = order_json(Order.from_wire(data["order"]))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
    if not account_id:
        return None
    kind = str(data.get("event", ""))
    at = moments.iso(moments.parse_stored(data.get("at") or data.get("timestamp")))
    order_event = {"event": kind, "event_id": data.get("event_id"), "at": at, "order": order}
    position_event = None
    position_qty = _decimal(data.get("position_qty"))
    if kind in FILL_EVENTS and position_qty is not None:
        qty = _decimal(data.get("qty"))
        price = _decimal(data.get("price"))
        position_event = {
            "event": kind,
            "event_id": data.get("event_id"),
            "at": at,
            "symbol": order["symbol"],
            "side": order["side"],
            "qty": None if qty is None else money.quantity(qty),
            "price": None if price is None else money.price(price),
            "position_qty": money.quantity(position_qty),
        }
    return str(account_id), order_event, position_event


class TradeEvents:
    """Trade events, batched per account for TRADE_BATCH_WINDOW, to accounts being watched."""

    def __init__(self, client: redis.asyncio.Redis | None = None) -> None:
        self._client = client or async_redis_client()
        self._batches: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        self._opened: dict[str, float] = {}

    def add(self, raw: bytes | str) -> None:
        """Take one message of ``clera:trade_updates`` into its account's batch."""
        try:
            parsed = trade_event_json(json.loads(raw))
        except (ValueError, TypeError):
            parsed = None
        if parsed is None:
            logger.warning("calculator.trade_event_unreadable")
            return
        account_id, order_event, position_event = parsed
        batch = self._batches[account_id]
        batch["orders"].append(order_event)
        if position_event is not None:
            batch["positions"].append(position_event)
        self._opened.setdefault(account_id, time.monotonic())

    async def flush(self, everything: bool = False) -> int:
        """Push the batches whose window has ended (all with ``everything``) to live accounts;
        returns the number of events pushed."""
        now = time.monotonic()
        window = settings.TRADE_BATCH_WINDOW
        ready = [a for a, at in self._opened.items() if everything or now - at >= window]
        if not ready:
            return 0
        batches = {a: self._batches.pop(a) for a in ready}
        for account_id in ready:
            del self._opened[account_id]
        live = await presence.alive(ready, self._client)
        out = {
            (account_id, kind): events
            for account_id in live
            for kind, events in batches[account_id].items()
        }
        await fanout.push_events(out)
        sent = sum(len(events) for events in out.values())
        if out:
            await stats.add_totals(
                self._client, events=sent, batch_events=sent, batch_messages=len(out)
            )
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Follow ``clera:trade_updates`` until ``stop``; through Redis outages, with backoff."""
        backoff = Backoff(maximum=REDIS_MAX_BACKOFF)
        while not stop.is_set():
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(TRADE_UPDATES_CHANNEL)
                backoff.reset()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if message is not None:
                        self.add(message["data"])
                    await self.flush()
            except (redis.RedisError, OSError) as problem:
                logger.warning(
                    "calculator.trade_events_reconnect error=%s retry_in=%.1f",
                    type(problem).__name__,
                    backoff.seconds,
                )
                await backoff.sleep(stop)
            finally:
                await _close_quietly(pubsub)
        try:
            await self.flush(everything=True)
        except (redis.RedisError, OSError):
            logger.warning("calculator.trade_events_final_flush_failed")


async def _close_quietly(pubsub: Any) -> None:
    with contextlib.suppress(redis.RedisError, OSError):
        await pubsub.aclose()
