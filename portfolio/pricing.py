"""Pricing holdings: which price values each, and an account's valuation inputs from the book
or from the broker. REST and push value an account only through this module and
:func:`portfolio.valuation.value_account`.

**Price sources** — every priced figure says where its price came from (``price_source``):

==================  ===========================================================================
``trade``           the last streamed trade, at most TRADE_FRESHNESS_SECONDS old
``quote``           the midpoint of a streamed quote that fresh (a stale trade would lag it)
``position``        the broker's price for the position: its ``current_price`` at the last
                    collection (or the fill price since) for a book entry, or on the call
``previous_close``  a broker position without a current price: its previous close
``cost``            a broker position with neither: its average entry price
``last``            ``price_update`` only (/ws/stream): neither trade nor quote is fresh, so
                    the newest of them, whatever its age
==================  ===========================================================================

A holding's quantity is multiplied by :func:`marketdata.types.contract_multiplier` (100 for an
option contract, whose price is per share).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.conf import settings
from redis.exceptions import RedisError

from marketdata import book
from marketdata.broker import gateway
from marketdata.price_cache import CachedPrice, PriceCache
from marketdata.types import Position, contract_multiplier

from .valuation import AccountInputs, HoldingInput

logger = logging.getLogger(__name__)

PriceSource = Literal["trade", "quote", "position", "previous_close", "cost", "last"]

#: Threads that send a read alongside the request's own (the gateway has a client per thread).
_BROKER_READS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="broker-reads")


def fresh_price(
    cached: CachedPrice | None, now: datetime
) -> tuple[Decimal, PriceSource, datetime] | None:
    """A fresh trade, else a fresh quote's midpoint, with its source and moment; None when
    neither is fresh (at most TRADE_FRESHNESS_SECONDS old)."""
    if cached is None:
        return None
    oldest = now - timedelta(seconds=settings.TRADE_FRESHNESS_SECONDS)
    if cached.trade_price is not None and cached.trade_at and cached.trade_at >= oldest:
        return cached.trade_price, "trade", cached.trade_at
    mid = cached.mid
    if mid is not None and cached.quote_at and cached.quote_at >= oldest:
        return mid, "quote", cached.quote_at
    return None


def valuation_price(
    cached: CachedPrice | None, last_known: Decimal, now: datetime
) -> tuple[Decimal, PriceSource, datetime | None]:
    """The price that values a holding, its source, and when it was set: :func:`fresh_price`,
    else ``last_known`` (the position's price: options, unstreamed symbols, a quiet market) as
    ``position`` with no moment."""
    return fresh_price(cached, now) or (last_known, "position", None)


def streamed_price(
    cached: CachedPrice, now: datetime
) -> tuple[Decimal, PriceSource, datetime | None] | None:
    """A streamed symbol's price for ``price_update``: :func:`fresh_price`, else the newest
    trade or quote seen (``last``); None when it has neither."""
    fresh = fresh_price(cached, now)
    if fresh is not None:
        return fresh
    last = cached.trade_price if cached.trade_price is not None else cached.mid
    if last is None:
        return None
    stamps = [moment for moment in (cached.trade_at, cached.quote_at) if moment is not None]
    return last, "last", max(stamps) if stamps else None


def _broker_holding(position: Position) -> HoldingInput:
    """A broker position priced as the broker priced it (``position``), else at its previous
    close, else at cost."""
    price: Decimal
    source: PriceSource
    if position.current_price is not None:
        price, source = position.current_price, "position"
    elif position.lastday_price is not None:
        price, source = position.lastday_price, "previous_close"
    else:
        price, source = position.avg_entry_price, "cost"
    return HoldingInput(
        symbol=position.symbol,
        qty=position.qty,
        price=price,
        avg_entry_price=position.avg_entry_price,
        lastday_price=position.lastday_price,
        day_basis=position.day_basis,
        multiplier=contract_multiplier(position.asset_class),
        price_source=source,
    )


def broker_inputs(account_id: str) -> AccountInputs:
    """Valuation inputs straight from the broker: two calls, the account and its positions,
    sent at once so a page waits for one round trip, not two."""
    positions_call = _BROKER_READS.submit(gateway().positions, account_id)
    snapshot = gateway().account(account_id)
    positions = positions_call.result()
    return AccountInputs(
        account_id=str(account_id),
        cash=snapshot.cash,
        last_equity=snapshot.last_equity,
        holdings=tuple(_broker_holding(position) for position in positions),
    )


def entry_inputs(
    entry: book.CachedAccount, prices: Mapping[str, CachedPrice], now: datetime
) -> AccountInputs:
    """A book entry's valuation inputs: each holding priced by :func:`valuation_price`, its
    previous close from the price cache (else the position's), its day basis the book's
    unless the cache's close says the day rolled since the book measured it (then the day is
    measured from the new close). ``entry`` must be ready."""
    if not entry.ready:
        raise ValueError(f"account {entry.account_id} has no balances yet")
    holdings = []
    for holding in entry.holdings:
        cached = prices.get(holding.symbol)
        price, source, at = valuation_price(cached, holding.last_price, now)
        prev_close = cached.prev_close if cached is not None else None
        rolled = None not in (prev_close, holding.lastday_price) and (
            prev_close != holding.lastday_price
        )
        holdings.append(
            HoldingInput(
                symbol=holding.symbol,
                qty=holding.qty,
                price=price,
                avg_entry_price=holding.avg_entry_price,
                lastday_price=prev_close if prev_close is not None else holding.lastday_price,
                day_basis=None if rolled else holding.day_basis,
                multiplier=holding.multiplier,
                price_source=source,
                price_at=at,
            )
        )
    return AccountInputs(
        account_id=entry.account_id,
        cash=entry.cash,
        last_equity=entry.last_equity,
        holdings=tuple(holdings),
    )


def book_inputs(account_id: str, now: datetime | None = None) -> AccountInputs | None:
    """The account's inputs from the book and the price cache; None when the book does not
    have the account or not yet its balances (ask the broker instead)."""
    entry = book.load([account_id]).get(account_id)
    if entry is None or not entry.ready:
        return None
    prices = PriceCache().get(entry.symbols)
    return entry_inputs(entry, prices, now or datetime.now(UTC))


def account_inputs(account_id: str) -> AccountInputs:
    """The freshest inputs we can have cheaply: the book's, else the broker's. The book is what
    the live push values, so the REST summary shows the very figures the socket would; with
    Redis unreachable the broker answers alone (Redis is never needed to read a value)."""
    try:
        inputs = book_inputs(account_id)
    except RedisError as error:
        logger.warning("book unreadable, valuing %s from the broker: %r", account_id, error)
        inputs = None
    return inputs or broker_inputs(account_id)
