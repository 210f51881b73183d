"""Read-only queries: which accounts a user may see, and what the API shows about them.

Account reads are scoped to the requesting user. Portfolio reads take an account id the caller
has already checked, ask the broker through ``marketdata.broker.gateway()`` and answer the
JSON bodies of the REST API, with every amount written by :mod:`portfolio.money`. Valuations
come from :func:`portfolio.valuation.value_account` alone, as the real-time push's do.

What the broker is asked, and what is cached (Django's cache, i.e. Redis):

* summary, positions, analytics: the trade account and its positions, every time (prices
  move); names and classes of assets come from a cache warmed by ONE call for the whole asset
  list, kept ``ASSET_CACHE_TTL`` seconds, so a page never costs one call per holding;
* history: the chart's answer is cached ``HISTORY_CACHE_TTL`` seconds per account and period,
  the account's creation time (it never changes) for a day;
* orders, activities, transfers: one call per page, never cached (they must be current).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from marketdata.broker import gateway
from marketdata.errors import BrokerNotFound, BrokerUnavailable
from marketdata.types import Activity, Asset, Order, PortfolioHistory, Position, Transfer
from portfolio import money
from portfolio.analytics import AnalyzedHolding, analytics_json, analyze
from portfolio.classification import classify
from portfolio.history import plan_history, plan_range, summarize_history
from portfolio.models import BrokerageAccount
from portfolio.valuation import (
    AccountInputs,
    AccountValuation,
    HoldingInput,
    HoldingValue,
    holding_json,
    valuation_json,
    value_account,
)
from realtime.book import cached_inputs


def accounts_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[BrokerageAccount]:
    """All accounts the user may see, oldest link first; none for anonymous users."""
    if not user.is_authenticated:
        return BrokerageAccount.objects.none()
    return BrokerageAccount.objects.filter(user=user)


def account_for_user(
    user: AbstractBaseUser | AnonymousUser, account_id: str | None
) -> BrokerageAccount | None:
    """The requested account if it belongs to the user (default: their first), else None.

    Account ids arrive from URLs and WebSocket messages, so bad input yields None, not an error.
    """
    accounts = accounts_for_user(user)
    if account_id is None:
        return accounts.first()
    try:
        parsed = uuid.UUID(str(account_id))
    except ValueError:
        return None
    return accounts.filter(account_id=parsed).first()


# --- Valuation -------------------------------------------------------------------------------

#: Shares per option contract: its price is per share, its value per contract.
OPTION_MULTIPLIER = 100
#: Threads that send a read alongside the request's own (the gateway has a client per thread).
_BROKER_READS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="broker-reads")


def _holding_input(position: Position) -> HoldingInput:
    """A broker position priced as the broker priced it; without a price, at the previous
    close, else at cost, and ``price_source`` says which."""
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
        multiplier=OPTION_MULTIPLIER if position.asset_class == "us_option" else 1,
        price_source=source,
    )


def inputs_from_broker(account_id: str) -> AccountInputs:
    """Valuation inputs straight from the broker: two calls, the account and its positions,
    sent at once so a page waits for one round trip, not two."""
    positions_call = _BROKER_READS.submit(gateway().positions, account_id)
    snapshot = gateway().account(account_id)
    positions = positions_call.result()
    return AccountInputs(
        account_id=str(account_id),
        cash=snapshot.cash,
        last_equity=snapshot.last_equity,
        holdings=tuple(_holding_input(position) for position in positions),
    )


def account_inputs(account_id: str) -> AccountInputs:
    """The freshest inputs we can have cheaply: the real-time book's, else the broker's.

    The book is what the live push values, so the REST summary (the page's fallback) shows
    the very figures the socket would.
    """
    return cached_inputs(account_id) or inputs_from_broker(account_id)


def account_valuation(account_id: str) -> AccountValuation:
    """The account valued now, by the one valuation function the live push uses too."""
    return value_account(account_inputs(account_id), timezone.now())


def account_summary(account_id: str) -> dict:
    """The summary endpoint's body: the valuation's totals, the live push's very figures."""
    return valuation_json(account_valuation(account_id), holdings=False)


@dataclass(frozen=True)
class _ValuedHolding:
    held: HoldingInput
    value: HoldingValue
    asset: Asset | None


def _valued_holdings(account_id: str) -> tuple[dict, AccountValuation, list[_ValuedHolding]]:
    """The account valued now, each holding with its asset details, and the body's header."""
    inputs = account_inputs(account_id)
    valuation = value_account(inputs, timezone.now())
    assets = asset_details(held.symbol for held in inputs.holdings)
    holdings = [
        _ValuedHolding(held, value, assets.get(held.symbol))
        for held, value in zip(inputs.holdings, valuation.holdings, strict=True)
    ]
    header = {
        "account_id": account_id,
        "as_of": _moment(valuation.as_of),
        "total_value": money.money(valuation.total_value),
    }
    return header, valuation, holdings


def account_positions(account_id: str) -> dict:
    """The positions endpoint's body: every holding valued, named and classified."""
    header, _, holdings = _valued_holdings(account_id)
    rows = []
    for holding in holdings:
        held, asset = holding.held, holding.asset
        classification = classify(held.symbol)
        rows.append(
            {
                **holding_json(holding.value),
                "name": asset.name if asset else None,
                "asset_class": asset.asset_class if asset else None,
                "exchange": asset.exchange if asset else None,
                "side": "short" if held.qty < 0 else "long",
                "avg_entry_price": money.price(held.avg_entry_price),
                "lastday_price": (
                    None if held.lastday_price is None else money.price(held.lastday_price)
                ),
                "multiplier": held.multiplier,
                "sector": classification.sector,
                "industry": classification.industry,
                "category": classification.category,
            }
        )
    return {**header, "positions": rows}


def account_analytics(account_id: str) -> dict:
    """The analytics endpoint's body: scores and allocations of the valued holdings."""
    header, valuation, holdings = _valued_holdings(account_id)
    analyzed = [
        AnalyzedHolding(
            symbol=holding.held.symbol,
            asset_class=holding.asset.asset_class if holding.asset else "",
            market_value=holding.value.market_value,
            classification=classify(holding.held.symbol),
        )
        for holding in holdings
    ]
    return {**header, **analytics_json(analyze(analyzed, valuation.cash))}


# --- Assets ----------------------------------------------------------------------------------

_ASSET_KEY = "api:asset:{}"
_ASSETS_WARM_KEY = "api:assets:warm"
_NO_ASSET = "none"  # cached for a symbol the broker does not know...
NO_ASSET_TTL = 300  # ...for 5 minutes: a new listing shows up soon after


def _asset_cache_key(symbol_or_id: str) -> str:
    try:
        return _ASSET_KEY.format(uuid.UUID(symbol_or_id))
    except ValueError:
        return _ASSET_KEY.format(symbol_or_id.upper())


def _remember_assets(assets: Iterable[Asset], *also: str) -> None:
    entries = {}
    for asset in assets:
        entries[_asset_cache_key(asset.symbol)] = asset
        entries[_asset_cache_key(asset.id)] = asset
        for key in also:
            entries[_asset_cache_key(key)] = asset
    cache.set_many(entries, settings.ASSET_CACHE_TTL)


def asset(symbol_or_id: str) -> Asset:
    """One asset, from the cache or the broker; raises BrokerNotFound for an unknown one."""
    key = _asset_cache_key(symbol_or_id)
    found = cache.get(key)
    if found == _NO_ASSET:
        raise BrokerNotFound("The broker knows no such asset.")
    if found is None:
        try:
            found = gateway().asset(symbol_or_id)
        except BrokerNotFound:
            cache.set(key, _NO_ASSET, NO_ASSET_TTL)
            raise
        _remember_assets([found], symbol_or_id)
    return found


def asset_details(symbols: Iterable[str]) -> dict[str, Asset | None]:
    """Assets by symbol (None where the broker has none), at most one bulk call when cold.

    A cold cache is filled from the broker's whole asset list in ONE call; only a symbol
    that list lacks (e.g. an option contract) is then asked for on its own, once per TTL.
    """
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    keys = {symbol: _asset_cache_key(symbol) for symbol in wanted}
    found = cache.get_many(keys.values())
    missing = [symbol for symbol in wanted if keys[symbol] not in found]
    if missing and cache.add(_ASSETS_WARM_KEY, True, settings.ASSET_CACHE_TTL):
        _remember_assets(gateway().assets())
        found.update(cache.get_many(keys[symbol] for symbol in missing))
        missing = [symbol for symbol in missing if keys[symbol] not in found]
    details: dict[str, Asset | None] = {}
    for symbol in wanted:
        if symbol in missing:
            try:
                details[symbol] = asset(symbol)
            except BrokerNotFound:
                details[symbol] = None
        else:
            cached = found[keys[symbol]]
            details[symbol] = None if cached == _NO_ASSET else cached
    return details


def asset_json(symbol_or_id: str) -> dict:
    """The asset endpoint's body: the broker's asset plus our sector and industry."""
    found = asset(symbol_or_id)
    classification = classify(found.symbol)
    classified = classification.category != "unclassified"
    return {
        "id": found.id,
        "symbol": found.symbol,
        "name": found.name,
        "asset_class": found.asset_class,
        "exchange": found.exchange,
        "status": found.status,
        "tradable": found.tradable,
        "fractionable": found.fractionable,
        "shortable": found.shortable,
        "marginable": found.marginable,
        "sector": classification.sector,
        "industry": classification.industry,
        "category": classification.category,
        "classified": classified,
        "classification_note": None
        if classified
        else "Unclassified: our classification table has no sector or industry for this asset.",
    }


# --- History ---------------------------------------------------------------------------------

_HISTORY_KEY = "api:history:{}:{}"
_ALL_TIME_KEY = "api:history:{}:all-time"
_CREATED_KEY = "api:account-created:{}"
#: An account's creation time never changes; a day bounds what a stale cache could hold.
CREATED_AT_TTL = 86400


def _account_created_at(account_id: str) -> datetime:
    key = _CREATED_KEY.format(account_id)
    created = cache.get(key)
    if created is None:
        created = gateway().account(account_id).created_at
        if created is None:
            raise BrokerUnavailable("The broker did not say when this account was opened.")
        cache.set(key, created, CREATED_AT_TTL)
    return created


def _all_time(account_id: str, created: datetime, now: datetime, crypto: bool) -> PortfolioHistory:
    key = _ALL_TIME_KEY.format(account_id)
    history = cache.get(key)
    if history is None:
        plan = plan_history("MAX", created, now, crypto)
        history = gateway().portfolio_history(account_id, **plan.params)
        cache.set(key, history, settings.HISTORY_CACHE_TTL)
    return history


def account_history(
    account_id: str,
    period: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict:
    """The history endpoint's body for a period or a start/end range, cached briefly.

    Raises ``portfolio.history.InvalidPeriod`` for a period or range Alpaca cannot answer.
    """
    label = f"range:{start.isoformat()}:{end.isoformat()}" if start and end else period
    key = _HISTORY_KEY.format(account_id, label)
    body = cache.get(key)
    if body is not None:
        return body
    now = timezone.now()
    created = _account_created_at(account_id)
    crypto = any(p.asset_class == "crypto" for p in gateway().positions(account_id))
    if start is not None and end is not None:
        plan = plan_range(start, end, created, now, crypto)
    else:
        plan = plan_history(period or "", created, now, crypto)
    history = gateway().portfolio_history(account_id, **plan.params)
    if plan.period_label == "MAX":
        all_time = history
        cache.set(_ALL_TIME_KEY.format(account_id), history, settings.HISTORY_CACHE_TTL)
    else:
        all_time = _all_time(account_id, created, now, crypto)
    body = {"account_id": account_id, **summarize_history(history, plan, all_time)}
    cache.set(key, body, settings.HISTORY_CACHE_TTL)
    return body


# --- Orders, activities, transfers -----------------------------------------------------------

#: Most orders Alpaca returns in one answer.
ORDERS_MAX = 500
#: Most activities Alpaca returns in one page.
ACTIVITIES_MAX = 100
_MICROSECOND = timedelta(microseconds=1)

#: Our activity types and the Alpaca activity codes each covers (every code alpaca-py knows).
ACTIVITY_TYPES = {
    "fill": ("FILL",),
    "deposit": ("CSD",),
    "withdrawal": ("CSW",),
    "dividend": ("DIV", "DIVCGL", "DIVCGS", "DIVNRA", "DIVROC", "DIVTXEX", "DIVWH"),
    "fee": ("FEE", "CFEE", "PTC"),
    "other": (
        "ACATC", "ACATS", "CIL", "EXTRD", "FXTRD", "INT", "INTPNL", "JNLC", "JNLS", "MA", "MEM",
        "NC", "OCT", "OPASN", "OPCSH", "OPEXC", "OPEXP", "OPTRD", "REORG", "SPIN", "SPLIT", "SWP",
        "VOF", "WH",
    ),
}  # fmt: skip
_TYPE_OF_CODE = {code: kind for kind, codes in ACTIVITY_TYPES.items() for code in codes}


@dataclass(frozen=True)
class OrderCursor:
    """Where the next page of orders starts: the last order's time and the ids seen at it."""

    at: datetime
    seen: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    """One page of a list and where the next starts (None: this was the last)."""

    items: list[dict]
    next: object | None


def order_json(order: Order) -> dict:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "status": order.status,
        "time_in_force": order.time_in_force,
        "qty": None if order.qty is None else money.quantity(order.qty),
        "notional": None if order.notional is None else money.money(order.notional),
        "filled_qty": money.quantity(order.filled_qty),
        "filled_avg_price": _price(order.filled_avg_price),
        "limit_price": _price(order.limit_price),
        "created_at": _moment(order.created_at),
        "submitted_at": _moment(order.submitted_at),
        "filled_at": _moment(order.filled_at),
        "canceled_at": _moment(order.canceled_at),
    }


def account_orders(
    account_id: str,
    *,
    status: str,
    limit: int,
    direction: str,
    side: str | None = None,
    symbols: list[str] | None = None,
    cursor: OrderCursor | None = None,
) -> Page:
    """One page of orders, by submission time, in one call.

    Alpaca pages orders only by time (``after``/``until``, both exclusive), and several
    orders can share a timestamp: the next page asks from the cursor's time inclusive and
    skips the orders the cursor has already seen there, so none is lost or repeated.
    """
    seen = set(cursor.seen) if cursor else set()
    after = until = None
    if cursor is not None:
        if direction == "desc":
            until = cursor.at + _MICROSECOND
        else:
            after = cursor.at - _MICROSECOND
    ask = min(limit + len(seen) + 1, ORDERS_MAX)
    orders = gateway().orders(
        account_id,
        status=status,
        limit=ask,
        after=after,
        until=until,
        direction=direction,
        side=side,
        symbols=symbols,
    )
    fresh = [order for order in orders if order.id not in seen]
    page = fresh[:limit]
    more = len(fresh) > limit or (len(orders) == ask == ORDERS_MAX and bool(page))
    next_cursor = None
    if more and page:
        last = page[-1].submitted_at
        same = [order.id for order in page if order.submitted_at == last]
        if cursor is not None and cursor.at == last:
            same = [*cursor.seen, *same]
        next_cursor = OrderCursor(last, tuple(same))
    return Page([order_json(order) for order in page], next_cursor)


def activity_json(activity: Activity) -> dict:
    return {
        "id": activity.id,
        "type": _TYPE_OF_CODE.get(activity.activity_type, "other"),
        "activity_type": activity.activity_type,
        "date": activity.date.isoformat(),
        "at": _moment(activity.at),
        "symbol": activity.symbol,
        "side": activity.side,
        "qty": None if activity.qty is None else money.quantity(activity.qty),
        "price": _price(activity.price),
        "net_amount": None if activity.net_amount is None else money.money(activity.net_amount),
        "description": activity.description,
        "order_id": activity.order_id,
    }


def account_activities(
    account_id: str,
    *,
    page_size: int,
    direction: str,
    types: Iterable[str] | None = None,
    cursor: str | None = None,
) -> Page:
    """One page of the account's ledger, typed; ``cursor`` is the last activity seen."""
    codes = sorted({code for kind in types or () for code in ACTIVITY_TYPES[kind]}) or None
    ask = min(page_size + 1, ACTIVITIES_MAX)
    activities, _ = gateway().activities(
        account_id, activity_types=codes, page_size=ask, page_token=cursor, direction=direction
    )
    page = activities[:page_size]
    more = len(activities) > page_size or len(activities) == ask == ACTIVITIES_MAX
    return Page(
        [activity_json(activity) for activity in page], page[-1].id if more and page else None
    )


def transfer_json(transfer: Transfer) -> dict:
    return {
        "id": transfer.id,
        "account_id": transfer.account_id,
        "amount": money.money(transfer.amount),
        "direction": transfer.direction,
        "status": transfer.status,
        "type": transfer.type,
        "created_at": _moment(transfer.created_at),
        "updated_at": _moment(transfer.updated_at),
    }


def account_transfers(account_id: str, *, limit: int, offset: int = 0) -> Page:
    """One page of the account's transfers, newest first; the next page's offset."""
    transfers = gateway().transfers(account_id, limit=limit + 1, offset=offset)
    page = transfers[:limit]
    more = len(transfers) > limit
    return Page([transfer_json(t) for t in page], offset + len(page) if more else None)


def _price(value) -> str | None:
    return None if value is None else money.price(value)


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
