"""Read-only queries: which accounts a user may see, and what the API shows about them.

Account reads are scoped to the requesting user. Portfolio reads take an account id the caller
has already checked, ask the broker through ``marketdata.broker.gateway()`` and answer the
JSON bodies of the REST API, shaped by :mod:`portfolio.presenters`. Valuations come from
:mod:`portfolio.pricing` and :func:`portfolio.valuation.value_account` alone, as the real-time
push's do. Refusals are :mod:`portfolio.errors` (no HTTP here).

What the broker is asked, and what is cached (Django's cache, i.e. Redis):

* summary, positions, analytics: the trade account and its positions, every time (prices
  move); names and classes of assets come from a cache warmed by ONE call for the whole asset
  list, kept ``ASSET_CACHE_TTL`` seconds, so a page never costs one call per holding;
* history: the chart's answer is cached ``HISTORY_CACHE_TTL`` seconds per account and period,
  the account's creation time (it never changes) for a day;
* orders, activities, transfers: one call per page, never cached (they must be current).

The cache (:mod:`portfolio.cache`) fails open: with Redis away every read goes to the broker,
and so does a valuation whose book cannot be read (:func:`portfolio.pricing.account_inputs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from marketdata.broker import gateway
from marketdata.errors import BrokerNotFound, BrokerUnavailable
from marketdata.moments import iso
from marketdata.types import Asset, PortfolioHistory
from portfolio import cache, money
from portfolio.analytics import AnalyzedHolding, analytics_json, analyze
from portfolio.classification import classify
from portfolio.errors import AccountNotFound, AssetNotFound, NoAccount
from portfolio.history import plan_history, plan_range, summarize_history
from portfolio.models import BrokerageAccount
from portfolio.presenters import (
    ACTIVITY_TYPES,
    activity_json,
    asset_json,
    order_json,
    position_json,
    transfer_json,
    valuation_json,
)
from portfolio.pricing import account_inputs
from portfolio.valuation import AccountValuation, HoldingInput, HoldingValue, value_account


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


def linked_account(
    user: AbstractBaseUser | AnonymousUser, account_id: str | None
) -> BrokerageAccount:
    """:func:`account_for_user`, refusing: NoAccount when the user has none (and asked for
    none), AccountNotFound when the one asked for is not theirs."""
    link = account_for_user(user, account_id)
    if link is None:
        raise NoAccount() if account_id is None else AccountNotFound()
    return link


# --- Valuation -------------------------------------------------------------------------------


def account_valuation(account_id: str) -> AccountValuation:
    """The account valued now, by the one valuation function the live push uses too."""
    return value_account(account_inputs(account_id), timezone.now())


def account_summary(account_id: str) -> dict:
    """The summary endpoint's body: the valuation's totals, the live push's very figures."""
    return valuation_json(account_valuation(account_id), holdings=False)


@dataclass(frozen=True)
class ValuedHolding:
    held: HoldingInput
    value: HoldingValue
    asset: Asset | None


def valued_holdings(account_id: str) -> tuple[dict, AccountValuation, list[ValuedHolding]]:
    """The account valued now, each holding with its asset details, and the body's header."""
    inputs = account_inputs(account_id)
    valuation = value_account(inputs, timezone.now())
    assets = asset_details(held.symbol for held in inputs.holdings)
    holdings = [
        ValuedHolding(held, value, assets.get(held.symbol))
        for held, value in zip(inputs.holdings, valuation.holdings, strict=True)
    ]
    header = {
        "account_id": account_id,
        "as_of": iso(valuation.as_of),
        "total_value": money.money(valuation.total_value),
    }
    return header, valuation, holdings


def account_positions(account_id: str) -> dict:
    """The positions endpoint's body: every holding valued, named and classified."""
    header, _, holdings = valued_holdings(account_id)
    rows = [position_json(h.held, h.value, h.asset, classify(h.held.symbol)) for h in holdings]
    return {**header, "positions": rows}


def account_analytics(account_id: str) -> dict:
    """The analytics endpoint's body: scores and allocations of the valued holdings."""
    header, valuation, holdings = valued_holdings(account_id)
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


def _remember_assets(assets: Iterable[Asset], *also: str) -> dict[str, Asset]:
    """Cache the assets under every key they are asked by; returns those entries."""
    entries = {}
    for asset in assets:
        entries[_asset_cache_key(asset.symbol)] = asset
        entries[_asset_cache_key(asset.id)] = asset
        for key in also:
            entries[_asset_cache_key(key)] = asset
    cache.set_many(entries, settings.ASSET_CACHE_TTL)
    return entries


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
        listed = _remember_assets(gateway().assets())
        found.update({keys[s]: listed[keys[s]] for s in missing if keys[s] in listed})
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


def asset_body(symbol_or_id: str) -> dict:
    """The asset endpoint's body; AssetNotFound for an asset the broker does not know."""
    try:
        found = asset(symbol_or_id)
    except BrokerNotFound:
        raise AssetNotFound() from None
    return asset_json(found, classify(found.symbol))


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


def _timeline(account_id: str) -> tuple[datetime, datetime, bool]:
    """What planning a chart needs: the account's creation, now, and whether it holds crypto
    (its day never closes)."""
    created = _account_created_at(account_id)
    crypto = any(p.asset_class == "crypto" for p in gateway().positions(account_id))
    return created, timezone.now(), crypto


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
    timeline = _timeline(account_id)
    if start is not None and end is not None:
        plan = plan_range(start, end, *timeline)
    else:
        plan = plan_history(period or "", *timeline)
    history = gateway().portfolio_history(account_id, **plan.params)
    if plan.period_label == "MAX":
        all_time = history
        cache.set(_ALL_TIME_KEY.format(account_id), history, settings.HISTORY_CACHE_TTL)
    else:
        all_time = _all_time(account_id, *timeline)
    body = {"account_id": account_id, **summarize_history(history, plan, all_time)}
    cache.set(key, body, settings.HISTORY_CACHE_TTL)
    return body


def period_history(account_id: str, period: str) -> PortfolioHistory:
    """The account's raw history for a chart ``period`` (daily points from 1M on), cached
    like the chart's answer."""
    key = _HISTORY_KEY.format(account_id, f"raw:{period}")
    history = cache.get(key)
    if history is None:
        plan = plan_history(period, *_timeline(account_id))
        history = gateway().portfolio_history(account_id, **plan.params)
        cache.set(key, history, settings.HISTORY_CACHE_TTL)
    return history


# --- Orders, activities, transfers -----------------------------------------------------------

#: Most orders Alpaca returns in one answer.
ORDERS_MAX = 500
#: Most activities Alpaca returns in one page.
ACTIVITIES_MAX = 100
_MICROSECOND = timedelta(microseconds=1)


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


def account_transfers(account_id: str, *, limit: int, offset: int = 0) -> Page:
    """One page of the account's transfers, newest first; the next page's offset."""
    transfers = gateway().transfers(account_id, limit=limit + 1, offset=offset)
    page = transfers[:limit]
    more = len(transfers) > limit
    return Page([transfer_json(t) for t in page], offset + len(page) if more else None)


def linked_account_ids() -> set[str]:
    """Every Alpaca account some user of ours has linked: the book keeps them even when they
    hold nothing (the bulk positions call lists only accounts with positions)."""
    return {str(i) for i in BrokerageAccount.objects.values_list("account_id", flat=True)}
