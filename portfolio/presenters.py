"""The JSON bodies the API and the sockets show: records and valuations in the wire's words.

Amounts per :mod:`portfolio.money` (decimal strings), moments per
:func:`marketdata.moments.iso` (UTC, ``Z``). Pure functions: selectors read, presenters
shape, so the push (``realtime``) shapes broker events exactly as the REST API does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marketdata.moments import iso
from marketdata.types import Activity, Asset, Order, Transfer

from . import money
from .classification import Classification
from .valuation import AccountValuation, HoldingInput, HoldingValue

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


def _price(value: Decimal | None) -> str | None:
    return None if value is None else money.price(value)


def _quantity(value: Decimal | None) -> str | None:
    return None if value is None else money.quantity(value)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else money.money(value)


def holding_json(value: HoldingValue) -> dict[str, Any]:
    return {
        "symbol": value.symbol,
        "qty": money.quantity(value.qty),
        "price": money.price(value.price),
        "market_value": money.money(value.market_value),
        "cost_basis": money.money(value.cost_basis),
        "unrealized_pl": money.money(value.unrealized_pl),
        "unrealized_pl_percent": money.percent(value.unrealized_pl_percent),
        "day_change": _money(value.day_change),
        "day_change_percent": money.percent(value.day_change_percent),
        "weight_percent": money.percent(value.weight_percent),
        "price_source": value.price_source,
        "price_at": iso(value.price_at),
    }


def valuation_json(value: AccountValuation, holdings: bool = True) -> dict[str, Any]:
    """The wire form of a valuation: the REST summary's body and the push's payload."""
    body: dict[str, Any] = {
        "account_id": value.account_id,
        "total_value": money.money(value.total_value),
        "cash": money.money(value.cash),
        "positions_value": money.money(value.positions_value),
        "long_value": money.money(value.long_value),
        "short_value": money.money(value.short_value),
        "last_equity": money.money(value.last_equity),
        "today_return": money.money(value.today_return),
        "today_return_percent": money.percent(value.today_return_percent),
        "as_of": iso(value.as_of),
        "oldest_price_at": iso(value.oldest_price_at),
    }
    if holdings:
        body["holdings"] = [holding_json(h) for h in value.holdings]
    return body


def position_json(
    held: HoldingInput,
    value: HoldingValue,
    asset: Asset | None,
    classification: Classification,
) -> dict[str, Any]:
    """One row of the positions endpoint: the valued holding, named and classified."""
    return {
        **holding_json(value),
        "name": asset.name if asset else None,
        "asset_class": asset.asset_class if asset else None,
        "exchange": asset.exchange if asset else None,
        "side": "short" if held.qty < 0 else "long",
        "avg_entry_price": money.price(held.avg_entry_price),
        "lastday_price": _price(held.lastday_price),
        "multiplier": held.multiplier,
        "sector": classification.sector,
        "industry": classification.industry,
        "category": classification.category,
    }


def asset_json(asset: Asset, classification: Classification) -> dict[str, Any]:
    """The asset endpoint's body: the broker's asset plus our sector and industry."""
    classified = classification.category != "unclassified"
    return {
        "id": asset.id,
        "symbol": asset.symbol,
        "name": asset.name,
        "asset_class": asset.asset_class,
        "exchange": asset.exchange,
        "status": asset.status,
        "tradable": asset.tradable,
        "fractionable": asset.fractionable,
        "shortable": asset.shortable,
        "marginable": asset.marginable,
        "sector": classification.sector,
        "industry": classification.industry,
        "category": classification.category,
        "classified": classified,
        "classification_note": None
        if classified
        else "Unclassified: our classification table has no sector or industry for this asset.",
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "status": order.status,
        "time_in_force": order.time_in_force,
        "qty": _quantity(order.qty),
        "notional": _money(order.notional),
        "filled_qty": money.quantity(order.filled_qty),
        "filled_avg_price": _price(order.filled_avg_price),
        "limit_price": _price(order.limit_price),
        "created_at": iso(order.created_at),
        "submitted_at": iso(order.submitted_at),
        "filled_at": iso(order.filled_at),
        "canceled_at": iso(order.canceled_at),
    }


def activity_json(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "type": _TYPE_OF_CODE.get(activity.activity_type, "other"),
        "activity_type": activity.activity_type,
        "date": activity.date.isoformat(),
        "at": iso(activity.at),
        "symbol": activity.symbol,
        "side": activity.side,
        "qty": _quantity(activity.qty),
        "price": _price(activity.price),
        "net_amount": _money(activity.net_amount),
        "description": activity.description,
        "order_id": activity.order_id,
    }


def transfer_json(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "account_id": transfer.account_id,
        "amount": money.money(transfer.amount),
        "direction": transfer.direction,
        "status": transfer.status,
        "type": transfer.type,
        "created_at": iso(transfer.created_at),
        "updated_at": iso(transfer.updated_at),
    }
