"""What the broker gateway returns: frozen, typed records with exact ``Decimal`` money.

Each record is built from Alpaca's raw JSON (``from_wire``), never from alpaca-py's models:
several of those parse money into ``float`` (activities, order requests), and a new enum value
from Alpaca would fail their validation outright. Strings become ``Decimal`` directly; the few
JSON numbers Alpaca sends (portfolio history) go through their shortest ``repr``, which is
exactly the text on the wire. A field is read from the JSON key of its name as its annotation
says (``str``, ``Decimal``, ``datetime``, ``bool``; ``| None`` when the key may be missing or
null); ``from_wire`` spells out only the fields Alpaca names or shapes otherwise. A missing or
mistyped field raises ``KeyError``/``ValueError``, which the gateway reports as
:class:`~marketdata.errors.BrokerUnavailable`. Moments are read by :mod:`marketdata.moments`:
RFC 3339 with ``Z`` or an offset, up to nanoseconds; portfolio history's epoch numbers in
seconds or milliseconds.

**Day basis** — what a holding's day change is measured from, in money (signed like its
quantity): ``day change = qty × price × multiplier − day basis``. Alpaca measures a share held
at the previous close from that close and a share bought today from its entry price
(``unrealized_intraday_pl``), so the basis is qty × previous close × multiplier for a holding
untouched today, the cost for one opened today, and the sum of both parts for one added to
today. :attr:`Position.day_basis` reads it off Alpaca's figures; :func:`day_basis_after_fill`
carries it through a fill (the account book's between collections, the sandbox's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import TypeAdapter

from . import moments
from .moments import NEW_YORK

#: Shares per option contract (Alpaca's ``us_option``): its price is per share, its value per
#: contract.
OPTION_MULTIPLIER = 100
#: Precision of a day basis a sale shrank in proportion (a millionth of a dollar).
BASIS_QUANTUM = Decimal("1E-6")
_DAY = TypeAdapter(date)

Wire = dict[str, Any]
R = TypeVar("R")


def contract_multiplier(asset_class: str) -> int:
    """How many units of the underlying one unit of the asset is: 100 for an option, else 1."""
    return OPTION_MULTIPLIER if asset_class == "us_option" else 1


def day_basis_after_fill(
    qty: Decimal, new_qty: Decimal, price: Decimal, basis: Decimal | None, multiplier: int
) -> Decimal | None:
    """The day basis (see the module docstring) after a fill at ``price`` took a holding of
    ``qty`` to ``new_qty``: what it adds costs its price; what it opens (from nothing, or past
    zero) is measured from the fill alone; a sale keeps the rest's mix, taking its share of the
    basis in proportion (as an average cost does). None when it depends on an unknown basis."""
    if new_qty == 0:
        return Decimal(0)
    if qty == 0 or (new_qty > 0) != (qty > 0):
        return new_qty * price * multiplier
    if basis is None:
        return None
    if abs(new_qty) > abs(qty):
        return basis + (new_qty - qty) * price * multiplier
    return (basis * new_qty / qty).quantize(BASIS_QUANTUM)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _decimal(value: object) -> Decimal:
    """An exact Decimal from a JSON string, or a JSON number via its shortest repr."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _optional_decimal(value: object) -> Decimal | None:
    return None if value is None else _decimal(value)


def _optional_moment(value: object) -> datetime | None:
    return None if value is None else moments.parse(value)


#: How a record's field is read from the JSON key of its name, by the field's annotation: the
#: parser, and whether the key must be there (else ``KeyError``; an optional one may be
#: missing or null).
_READERS: dict[str, tuple[Callable[[object], Any], bool]] = {
    "str": (_text, True),
    "str | None": (_optional_text, False),
    "bool": (_flag, True),
    "Decimal": (_decimal, True),
    "Decimal | None": (_optional_decimal, False),
    "datetime": (moments.parse, True),
    "datetime | None": (_optional_moment, False),
}


def _from_wire(record: type[R], wire: Wire, **given: Any) -> R:
    """``record`` built from Alpaca's JSON: the fields ``given`` as they are, every other one
    read from the key of its name as its annotation says (:data:`_READERS`)."""
    for name, parse, required in _readable_fields(record):
        if name not in given:
            given[name] = parse(wire[name] if required else wire.get(name))
    return record(**given)


@functools.cache
def _readable_fields(record: type) -> tuple[tuple[str, Callable[[object], Any], bool], ...]:
    """The record's fields :data:`_READERS` can read (the others must be given)."""
    return tuple((f.name, *_READERS[f.type]) for f in fields(record) if f.type in _READERS)


class _WireRecord:
    """A record whose every field is read as its annotation says: ``from_wire`` needs no more."""

    __slots__ = ()

    @classmethod
    def from_wire(cls: type[R], wire: Wire) -> R:
        return _from_wire(cls, wire)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account's trading balances (Alpaca's TradeAccount) at the moment of the call."""

    id: str
    account_number: str
    status: str
    currency: str
    cash: Decimal
    equity: Decimal
    last_equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal
    buying_power: Decimal
    created_at: datetime | None

    @classmethod
    def from_wire(cls, wire: Wire) -> AccountSnapshot:
        # USD is Alpaca's documented default.
        return _from_wire(cls, wire, currency=_optional_text(wire.get("currency")) or "USD")


@dataclass(frozen=True, slots=True)
class Position:
    """One open holding: ``qty`` as Alpaca reports it, ``side`` long|short; prices may be null."""

    account_id: str
    asset_id: str
    symbol: str
    asset_class: str
    exchange: str
    side: str
    qty: Decimal
    avg_entry_price: Decimal
    cost_basis: Decimal
    market_value: Decimal | None
    current_price: Decimal | None
    lastday_price: Decimal | None
    unrealized_pl: Decimal | None
    unrealized_plpc: Decimal | None
    unrealized_intraday_pl: Decimal | None
    change_today: Decimal | None
    qty_available: Decimal | None

    @classmethod
    def from_wire(cls, wire: Wire, account_id: str) -> Position:
        return _from_wire(cls, wire, account_id=account_id)

    @property
    def day_basis(self) -> Decimal | None:
        """Its day basis (see the module docstring): its value at ``current_price`` less
        Alpaca's ``unrealized_intraday_pl``; None when the broker sent either as null."""
        if self.current_price is None or self.unrealized_intraday_pl is None:
            return None
        value = self.qty * self.current_price * contract_multiplier(self.asset_class)
        return value - self.unrealized_intraday_pl


@dataclass(frozen=True, slots=True)
class AllPositions:
    """Every account's positions from one bulk call, keyed by account id."""

    as_of: datetime
    positions: dict[str, tuple[Position, ...]]

    @classmethod
    def from_wire(cls, wire: Wire) -> AllPositions:
        return cls(
            as_of=moments.parse(wire["as_of"]),
            positions={
                _text(account_id): tuple(Position.from_wire(item, account_id) for item in items)
                for account_id, items in wire["positions"].items()
            },
        )


@dataclass(frozen=True, slots=True)
class Asset:
    """A tradable (or formerly tradable) instrument; Alpaca carries no sector or industry."""

    id: str
    symbol: str
    name: str | None
    asset_class: str
    exchange: str
    status: str
    tradable: bool
    fractionable: bool
    shortable: bool
    marginable: bool

    @classmethod
    def from_wire(cls, wire: Wire) -> Asset:
        return _from_wire(cls, wire, asset_class=_text(wire["class"]))


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the broker last reported it."""

    id: str
    client_order_id: str
    symbol: str | None
    side: str | None
    type: str | None
    status: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    created_at: datetime
    submitted_at: datetime
    filled_at: datetime | None
    canceled_at: datetime | None

    @classmethod
    def from_wire(cls, wire: Wire) -> Order:
        return _from_wire(
            cls, wire, type=_optional_text(wire.get("type") or wire.get("order_type"))
        )


@dataclass(frozen=True, slots=True)
class Activity:
    """One ledger entry: a fill (``at`` set, trade fields) or a cash activity (CSD, DIV, FEE...).

    ``date`` is the trading day in New York; Alpaca sends only a date for non-trade activities
    and only a timestamp for fills, so ``at`` is None when it sent none.
    """

    id: str
    account_id: str
    activity_type: str
    date: date
    at: datetime | None
    net_amount: Decimal | None
    symbol: str | None
    side: str | None
    qty: Decimal | None
    price: Decimal | None
    description: str
    order_id: str | None

    @classmethod
    def from_wire(cls, wire: Wire) -> Activity:
        at = _optional_moment(wire.get("transaction_time") or wire.get("created_at"))
        day = wire.get("date")
        if day is None and at is None:
            raise KeyError("date")
        return _from_wire(
            cls,
            wire,
            date=_DAY.validate_python(day) if day is not None else at.astimezone(NEW_YORK).date(),
            at=at,
            description=_optional_text(wire.get("description")) or "",
        )


@dataclass(frozen=True, slots=True)
class Transfer(_WireRecord):
    """Money moving between a bank relationship and the account; ``amount`` is positive."""

    id: str
    account_id: str
    relationship_id: str | None
    amount: Decimal
    direction: str
    status: str
    type: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class AchRelationship(_WireRecord):
    """A linked bank account (its numbers are deliberately not kept)."""

    id: str
    account_id: str
    status: str
    nickname: str | None
    account_owner_name: str
    bank_account_type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PortfolioHistory:
    """Equity over time; every series lines up with ``timestamps``.

    ``profit_loss_pct`` is Alpaca's simple return (equity / base_value - 1), not adjusted for
    deposits or withdrawals; ``cashflow`` (activity type -> amounts) is what adjusting needs.
    """

    timestamps: tuple[datetime, ...]
    equity: tuple[Decimal | None, ...]
    profit_loss: tuple[Decimal | None, ...]
    profit_loss_pct: tuple[Decimal | None, ...]
    base_value: Decimal | None
    timeframe: str
    cashflow: dict[str, tuple[Decimal, ...]]

    @classmethod
    def from_wire(cls, wire: Wire) -> PortfolioHistory:
        timestamps = tuple(moments.from_epoch(t) for t in wire["timestamp"])
        series = {
            name: tuple(_optional_decimal(value) for value in wire[name])
            for name in ("equity", "profit_loss", "profit_loss_pct")
        }
        cashflow = {
            _text(kind): tuple(_decimal(value) for value in amounts)
            for kind, amounts in (wire.get("cashflow") or {}).items()
        }
        lengths = {len(values) for values in (*series.values(), *cashflow.values())}
        if lengths - {len(timestamps)}:
            raise ValueError("portfolio history series differ in length from its timestamps")
        return _from_wire(cls, wire, timestamps=timestamps, cashflow=cashflow, **series)


@dataclass(frozen=True, slots=True)
class Clock(_WireRecord):
    """The market clock as the broker sees it."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime
