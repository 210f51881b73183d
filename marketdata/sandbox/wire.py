"""Alpaca's JSON shapes, built from the sandbox's world and market objects.

One function per Broker API model, field names exactly as alpaca-py 0.44 reads them (see
``/work/shared/docs/alpaca-wire.md``). Conventions, as Alpaca sends them:

* money, prices and quantities are JSON strings of the exact ``Decimal`` (never a float, never
  exponent notation): a position's ``market_value`` is exactly qty × price × multiplier;
* ratios (``unrealized_plpc``, ``change_today``...) are rounded to 10 decimal places;
* a position's ``unrealized_intraday_pl`` is measured from its day basis
  (:meth:`.world.World.day_bases`): a position opened today from its entry price;
* datetimes are RFC3339 in both forms Alpaca writes (:func:`timestamp`): an account's orders,
  activities, transfers, bank links and creation in UTC with ``Z`` when its id is even, in
  New York time with its offset and nine fraction digits when odd; the clock and
  ``previous_close`` always in New York time. Dates are ``YYYY-MM-DD`` in New York;
* portfolio history is the exception: its model requires JSON numbers, so its values become
  floats here, and only here, rounded to the cent; its timestamps are epoch seconds, or
  milliseconds when asked (the ``history_milliseconds`` fault knob).

Margin figures the sandbox does not model (initial and maintenance margin, SMA, the day-trading
fields) are left out of the trade account; of the ``last_*`` figures the broker model requires,
cash, market values and buying power are the previous close's (strings, as Alpaca sends them)
and ``last_initial_margin`` is ``"0"``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from marketdata import moments

from .accounts import (
    CENT,
    RATIO,
    ZERO,
    Account,
    AchRelationship,
    Activity,
    Holding,
    Order,
    Transfer,
)
from .assets import Asset
from .calendar import NEW_YORK, Session

#: Crypto order sizing the sandbox advertises on its assets.
CRYPTO_MIN_ORDER_SIZE = Decimal("0.0001")
CRYPTO_QTY_INCREMENT = Decimal("0.000000001")
#: Transfer statuses that still hold cash in flight (``pending_transfer_in`` / ``_out``).
PENDING_TRANSFER_STATUSES = frozenset(
    {"QUEUED", "APPROVAL_PENDING", "PENDING", "SENT_TO_CLEARING", "APPROVED"}
)


def text(value: Decimal) -> str:
    """A Decimal as Alpaca's string: exact, without exponent notation."""
    plain = str(value)  # the fast path; str() switches to exponents only for tiny or 1E+n values
    return plain if "E" not in plain else format(value, "f")


def optional_text(value: Decimal | None) -> str | None:
    return None if value is None else text(value)


def new_york_ns(moment: datetime) -> str:
    """New York time, offset and nine fraction digits (the last three made up from the
    microseconds: a ``datetime`` holds no more)."""
    return moments.new_york(moment, nanoseconds=moment.microsecond % 1000)


def timestamp(moment: datetime, account_id: uuid.UUID) -> str:
    """A moment of an account's as Alpaca writes it: UTC with ``Z`` for an even account id,
    :func:`new_york_ns` for an odd one, so both forms reach every reader."""
    return new_york_ns(moment) if account_id.int % 2 else moments.iso(moment)


def optional_timestamp(moment: datetime | None, account_id: uuid.UUID) -> str | None:
    return None if moment is None else timestamp(moment, account_id)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator to 10 places; 0 when the denominator is 0."""
    if not denominator:
        return ZERO
    return (numerator / denominator).quantize(RATIO)


# -- assets --------------------------------------------------------------------------------------
def asset(item: Asset, optionable: frozenset[str] = frozenset()) -> dict:
    """The Asset model; ``optionable`` names the underlyings that get the has_options attribute."""
    equity = item.asset_class == "us_equity"
    attributes = []
    if equity and item.fractionable:
        attributes.append("fractional_eh_enabled")
    if item.symbol in optionable:
        attributes.append("has_options")
    body = {
        "id": str(item.id),
        "class": item.asset_class,
        "exchange": item.exchange,
        "symbol": item.symbol,
        "name": item.name,
        "status": "active",
        "tradable": True,
        "marginable": equity,
        "maintenance_margin_requirement": 30 if equity else 100,
        "shortable": item.shortable,
        "easy_to_borrow": item.shortable,
        "fractionable": item.fractionable,
        "attributes": attributes,
    }
    if item.is_crypto:
        body["min_order_size"] = text(CRYPTO_MIN_ORDER_SIZE)
        body["min_trade_increment"] = text(CRYPTO_QTY_INCREMENT)
        body["price_increment"] = text(item.to_decimal(item.tick_units))
    return body


# -- positions -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Quote:
    """What every position in one asset shares, computed once per request."""

    current: Decimal
    lastday: Decimal
    opening: str  # the position's asset and price keys, as the start of a JSON object

    @classmethod
    def of(cls, item: Asset, current: Decimal, lastday: Decimal) -> Quote:
        change = ratio(current - lastday, lastday)
        fields = {
            "asset_id": str(item.id),
            "symbol": item.symbol,
            "exchange": item.exchange,
            "asset_class": item.asset_class,
            "asset_marginable": item.asset_class == "us_equity",
            "current_price": text(current),
            "lastday_price": text(lastday),
            "change_today": text(change),
        }
        return cls(
            current=current,
            lastday=lastday,
            opening=json.dumps(fields, separators=(",", ":"))[:-1] + ",",
        )


def position(
    holding: Holding, quote: Quote, qty_available: Decimal, day_basis: Decimal | None = None
) -> str:
    """The Position model as JSON text: exact values, signed quantity, P/L against cost and
    against the day basis (``None``: untouched today, so qty × previous close × multiplier).

    Text rather than a dict because the all-accounts answer carries ~100,000 positions and
    this halves its cost; past the quote's keys every value is a number string, which JSON
    never needs to escape.
    """
    qty = holding.qty
    multiplier = holding.asset.multiplier
    market_value = qty * quote.current * multiplier
    cost_basis = qty * holding.avg_entry_price * multiplier
    unrealized = market_value - cost_basis
    if day_basis is None:
        day_basis = qty * quote.lastday * multiplier
    intraday = market_value - day_basis
    return (
        f'{quote.opening}"avg_entry_price":"{text(holding.avg_entry_price)}",'
        f'"qty":"{text(qty)}","qty_available":"{text(qty_available)}",'
        f'"side":"{"short" if qty < 0 else "long"}",'
        f'"market_value":"{text(market_value)}","cost_basis":"{text(cost_basis)}",'
        f'"unrealized_pl":"{text(unrealized)}",'
        f'"unrealized_plpc":"{text(ratio(unrealized, abs(cost_basis)))}",'
        f'"unrealized_intraday_pl":"{text(intraday)}",'
        f'"unrealized_intraday_plpc":"{text(ratio(intraday, abs(day_basis)))}"}}'
    )


# -- accounts ------------------------------------------------------------------------------------
def _names(item: Account) -> tuple[str, str]:
    given, _, family = item.owner.partition(" ")
    return given, family or given


def email(item: Account) -> str:
    """A reserved-domain address, unique per account, so ``query`` has an e-mail to match."""
    given, family = _names(item)
    return f"{given}.{family}.{item.account_number[-4:]}@example.com".lower()


def _account_heading(item: Account) -> dict:
    """The keys the Account and the TradeAccount models open with."""
    return {
        "id": str(item.id),
        "account_number": item.account_number,
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
    }


def account(item: Account) -> dict:
    """The Account model, with the identity and contact the list endpoint can search."""
    given, family = _names(item)
    return {
        **_account_heading(item),
        "last_equity": text(item.last_equity),
        "created_at": timestamp(item.created_at, item.id),
        "account_type": "trading",
        "enabled_assets": ["us_equity", "crypto", "us_option"],
        "contact": {
            "email_address": email(item),
            "street_address": ["1 Sandbox Way"],
            "city": "San Mateo",
            "state": "CA",
            "postal_code": "94401",
            "country": "USA",
        },
        "identity": {
            "given_name": given,
            "family_name": family,
            "country_of_tax_residence": "USA",
        },
    }


def trade_account(
    item: Account,
    long_value: Decimal,
    short_value: Decimal,
    previous_close: datetime,
    buying_power: Decimal,
    cash_buying_power: Decimal,
    withdrawable: Decimal,
    last: tuple[Decimal, Decimal, Decimal],
) -> dict:
    """The broker TradeAccount: equity = cash + long + short (short is negative).

    Buying power is what the exchange would let a new order spend (open buys' reserve taken
    off), so a client never sees more than it may use. ``last`` is cash, long and short market
    value at the previous close; the last buying power is that cash × the multiplier.
    """
    last_cash, last_long, last_short = last
    last_buying_power = text(max(last_cash * item.multiplier, ZERO))
    equity = item.cash + long_value + short_value
    pending_in = pending_out = ZERO
    for transfer in item.transfers:
        if transfer.status in PENDING_TRANSFER_STATUSES:
            if transfer.direction == "INCOMING":
                pending_in += transfer.amount
            else:
                pending_out += transfer.amount
    return {
        **_account_heading(item),
        "buying_power": text(buying_power),
        "regt_buying_power": text(buying_power),
        "non_marginable_buying_power": text(cash_buying_power),
        "options_buying_power": text(cash_buying_power),
        "cash": text(item.cash),
        "accrued_fees": "0",
        "pending_transfer_in": text(pending_in),
        "pending_transfer_out": text(pending_out),
        "portfolio_value": text(equity),
        "equity": text(equity),
        "last_equity": text(item.last_equity),
        "long_market_value": text(long_value),
        "short_market_value": text(short_value),
        "multiplier": str(item.multiplier),
        "shorting_enabled": item.multiplier > 1,
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "options_approved_level": 2,
        "options_trading_level": 2,
        "created_at": timestamp(item.created_at, item.id),
        "cash_withdrawable": text(withdrawable),
        "cash_transferable": text(withdrawable),
        "previous_close": moments.new_york(previous_close),
        "last_long_market_value": text(last_long),
        "last_short_market_value": text(last_short),
        "last_cash": text(last_cash),
        "last_initial_margin": "0",
        "last_regt_buying_power": last_buying_power,
        "last_buying_power": last_buying_power,
        "clearing_broker": None,
    }


# -- orders and activities -----------------------------------------------------------------------
def order(item: Order) -> dict:
    """The broker Order model of a simple (single-leg) order."""
    owner = item.account_id
    return {
        "id": str(item.id),
        "client_order_id": item.client_order_id,
        "created_at": timestamp(item.created_at, owner),
        "updated_at": timestamp(item.updated_at, owner),
        "submitted_at": timestamp(item.submitted_at, owner),
        "filled_at": optional_timestamp(item.filled_at, owner),
        "expired_at": optional_timestamp(item.expired_at, owner),
        "canceled_at": optional_timestamp(item.canceled_at, owner),
        "failed_at": None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": str(item.asset.id),
        "symbol": item.asset.symbol,
        "asset_class": item.asset.asset_class,
        "notional": None,
        "qty": text(item.qty),
        "filled_qty": text(item.filled_qty),
        "filled_avg_price": optional_text(item.filled_avg_price),
        "order_class": "simple",
        "order_type": item.order_type,
        "type": item.order_type,
        "side": item.side,
        "time_in_force": item.time_in_force,
        "limit_price": optional_text(item.limit_price),
        "stop_price": None,
        "status": item.status,
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "commission": 0,
    }


def activity(item: Activity) -> dict:
    """A TradeActivity (FILL) or a NonTradeActivity (CSD, CSW, DIV, FEE...)."""
    if item.activity_type == "FILL":
        partial = bool(item.leaves_qty)
        return {
            "id": item.id,
            "account_id": str(item.account_id),
            "activity_type": "FILL",
            "transaction_time": timestamp(item.at, item.account_id),
            "type": "partial_fill" if partial else "fill",
            "price": text(item.price),
            "qty": text(item.qty),
            "side": item.side,
            "symbol": item.asset.symbol,
            "leaves_qty": text(item.leaves_qty),
            "cum_qty": text(item.cum_qty),
            "order_id": str(item.order.id),
            "order_status": "partially_filled" if partial else "filled",
        }
    body = {
        "id": item.id,
        "account_id": str(item.account_id),
        "activity_type": item.activity_type,
        "date": moments.new_york_day(item.at),
        "net_amount": text(item.net_amount),
        "description": item.description,
        "status": "executed",
    }
    if item.asset is not None:
        body["symbol"] = item.asset.symbol
    if item.qty:
        body["qty"] = text(item.qty)
        body["per_share_amount"] = text(ratio(item.net_amount, item.qty))
    return body


# -- funding -------------------------------------------------------------------------------------
def transfer(item: Transfer) -> dict:
    """The Transfer model of an ACH transfer; ``amount`` is a string of cents."""
    return {
        "id": str(item.id),
        "account_id": str(item.account_id),
        "relationship_id": None if item.relationship_id is None else str(item.relationship_id),
        "type": "ach",
        "status": item.status,
        "reason": item.reason,
        "amount": text(item.amount),
        "requested_amount": text(item.amount),
        "fee": "0",
        "fee_payment_method": "user",
        "direction": item.direction,
        "created_at": timestamp(item.created_at, item.account_id),
        "updated_at": timestamp(item.updated_at, item.account_id),
        "expires_at": optional_timestamp(item.expires_at, item.account_id),
    }


def ach_relationship(item: AchRelationship) -> dict:
    return {
        "id": str(item.id),
        "account_id": str(item.account_id),
        "created_at": timestamp(item.created_at, item.account_id),
        "updated_at": timestamp(item.updated_at, item.account_id),
        "status": item.status,
        "account_owner_name": item.owner_name,
        "bank_account_type": item.bank_account_type,
        "bank_account_number": item.bank_account_number,
        "bank_routing_number": item.bank_routing_number,
        "nickname": item.nickname,
    }


# -- clock and calendar --------------------------------------------------------------------------
def clock(now: datetime, is_open: bool, next_open: datetime, next_close: datetime) -> dict:
    """The clock as Alpaca writes it: New York times, the current one to the nanosecond."""
    return {
        "timestamp": new_york_ns(now),
        "is_open": is_open,
        "next_open": moments.new_york(next_open),
        "next_close": moments.new_york(next_close),
    }


def calendar_day(session: Session) -> dict:
    """A calendar entry: New York wall-clock times as ``HH:MM``, the format the SDK parses.

    A session that ends at midnight (the always-open calendar) closes at ``23:59``: the
    format has no way to say "24:00".
    """
    close = session.close.astimezone(NEW_YORK)
    close_text = "23:59" if close.date() > session.day else f"{close:%H:%M}"
    return {
        "date": session.day.isoformat(),
        "open": f"{session.open.astimezone(NEW_YORK):%H:%M}",
        "close": close_text,
        "settlement_date": session.day.isoformat(),
    }


# -- portfolio history ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PortfolioHistory:
    """A computed history (see :mod:`.history`), still exact."""

    timeframe: str
    timestamps: list[int]
    equity: list[Decimal]
    profit_loss: list[Decimal]
    profit_loss_pct: list[Decimal | None]
    base_value: Decimal | None
    base_value_asof: date | None
    cashflow: dict[str, list[Decimal]]


def _cents(value: Decimal) -> float:
    return float(value.quantize(CENT))


def portfolio_history(item: PortfolioHistory, milliseconds: bool = False) -> dict:
    """The PortfolioHistory model: JSON numbers (the SDK requires them), money to the cent;
    epoch seconds, or milliseconds if asked."""
    body = {
        "timestamp": [t * 1000 for t in item.timestamps] if milliseconds else item.timestamps,
        "equity": [_cents(value) for value in item.equity],
        "profit_loss": [_cents(value) for value in item.profit_loss],
        "profit_loss_pct": [None if pct is None else float(pct) for pct in item.profit_loss_pct],
        "base_value": None if item.base_value is None else _cents(item.base_value),
        "timeframe": item.timeframe,
        "cashflow": {
            kind: [_cents(amount) for amount in amounts] for kind, amounts in item.cashflow.items()
        },
    }
    if item.base_value_asof is not None:
        body["base_value_asof"] = item.base_value_asof.isoformat()
    return body
