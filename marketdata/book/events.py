"""Broker events in the book: fills move a holding and cash at once, transfers move cash.

Each event applies once (its id is remembered EVENT_DONE_SECONDS), atomically (WATCH/MULTI/
EXEC over the account hash), and only over what a newer collection or balance fetch has not
already counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import redis

from marketdata import moments
from marketdata.price_cache import add_changes, canonical_symbol
from marketdata.store import parse_decimal, redis_client
from marketdata.types import contract_multiplier, day_basis_after_fill

from .collection import publish_symbol_changes
from .keys import (
    ACCOUNTS,
    EVENT_DONE_PREFIX,
    EVENT_DONE_SECONDS,
    FIELDS,
    SYMBOLS,
    UNTRACK,
    account_key,
    dump,
    holders_key,
)

CENT = Decimal("0.01")
#: Precision of an average entry price recomputed from a fill (the next collection replaces it
#: with the broker's own figure).
AVG_PRICE_QUANTUM = Decimal("1E-6")


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill (or part of one) from the broker's trade events."""

    account_id: str
    event_id: str
    symbol: str
    asset_class: str
    side: str  # buy | sell
    qty: Decimal  # this fill's quantity, positive
    price: Decimal
    position_qty: Decimal | None  # the position after the fill, as the broker reports it
    at: datetime


def _after_fill(
    qty: Decimal, avg: Decimal, delta: Decimal, price: Decimal, new_qty: Decimal
) -> Decimal:
    """The average entry price after a fill, as the broker computes it: adding to a position
    averages in the fill, reducing keeps it, crossing through zero restarts at the fill."""
    if qty == 0 or (new_qty > 0) != (qty > 0):
        return price
    if (delta > 0) == (qty > 0):
        return ((qty * avg + delta * price) / (qty + delta)).quantize(AVG_PRICE_QUANTUM)
    return avg


def _day_basis(held: dict | None, mark: dict, qty: Decimal, multiplier: int) -> Decimal | None:
    """The holding's day basis before a fill: the book's, else its previous close's (None
    when neither is known, or when it holds nothing)."""
    if not held:
        return None
    basis = parse_decimal(held.get("day_basis"))
    lastday = parse_decimal(mark.get("lastday_price"))
    if basis is None and lastday is not None:
        return qty * lastday * multiplier
    return basis


def _record_event(
    client: redis.Redis, account_id: str, event_id: str, change: Any
) -> tuple[bool, Any]:
    """Run ``change(pipe, values)`` over the account's current fields, atomically and once per
    event id; it queues its writes after ``pipe.multi()`` and returns what to report."""
    key = account_key(account_id)
    done = EVENT_DONE_PREFIX + event_id

    def work(pipe: redis.client.Pipeline) -> tuple[bool, Any]:
        if pipe.exists(done):
            return False, None
        values = dict(zip(FIELDS, pipe.hmget(key, FIELDS), strict=True))
        pipe.multi()
        outcome = change(pipe, values)
        pipe.set(done, 1, ex=EVENT_DONE_SECONDS)
        return True, outcome

    return client.transaction(work, key, done, value_from_callable=True)


def apply_fill(fill: Fill, client: redis.Redis | None = None) -> bool:
    """Apply a fill to the account's cached holding and cash at once; False if already seen.

    Cash moves by the fill's notional (to the cent, half-even, as the broker settles it) unless
    the balances were fetched after the fill; the holding takes the broker's ``position_qty``
    unless the last collection's snapshot is newer than the fill, and its day basis moves by
    :func:`marketdata.types.day_basis_after_fill` (a position opened today changes from the
    fill's price, not from a close it never saw). The account is named on
    ``clera:changes``; a symbol it starts or stops holding joins or leaves the tracked set.
    """
    client = client or redis_client()
    symbol = canonical_symbol(fill.symbol, fill.asset_class)
    multiplier = contract_multiplier(fill.asset_class)
    delta = fill.qty if fill.side == "buy" else -fill.qty
    joined_or_left: list[str] = []

    def change(pipe: redis.client.Pipeline, values: dict) -> None:
        joined_or_left.clear()
        stamp = moments.stored(fill.at)
        writes: dict[str, str] = {}
        cash = parse_decimal(values["cash"])
        balances_at = values["balances_at"]
        if cash is not None and (balances_at is None or stamp > balances_at.decode()):
            notional = (fill.qty * fill.price * multiplier).quantize(CENT, ROUND_HALF_EVEN)
            writes["cash"] = format(cash - notional if delta > 0 else cash + notional, "f")
        as_of = values["positions_as_of"]
        if as_of is None or stamp > as_of.decode():
            holdings = json.loads(values["holdings"]) if values["holdings"] else {}
            marks = json.loads(values["marks"]) if values["marks"] else {}
            held = holdings.get(symbol)
            qty = Decimal(held["qty"]) if held else Decimal(0)
            new_qty = fill.position_qty if fill.position_qty is not None else qty + delta
            if new_qty == 0:
                holdings.pop(symbol, None)
                marks.pop(symbol, None)
                pipe.srem(holders_key(symbol), fill.account_id)
                joined_or_left.append("left")
            else:
                avg = Decimal(held["avg_entry_price"]) if held else fill.price
                mark = marks.setdefault(
                    symbol, {"last_price": format(fill.price, "f"), "lastday_price": None}
                )
                basis = _day_basis(held, mark, qty, multiplier)
                basis = day_basis_after_fill(qty, new_qty, fill.price, basis, multiplier)
                holdings[symbol] = {
                    "qty": format(new_qty, "f"),
                    "avg_entry_price": format(
                        _after_fill(qty, avg, delta, fill.price, new_qty), "f"
                    ),
                    "multiplier": multiplier,
                    "asset_class": fill.asset_class,
                    "day_basis": None if basis is None else format(basis, "f"),
                }
                if not held:
                    pipe.sadd(holders_key(symbol), fill.account_id)
                    pipe.sadd(SYMBOLS, symbol)
                    joined_or_left.append("joined")
            writes.update(holdings=dump(holdings), marks=dump(marks), event_at=stamp)
            pipe.sadd(ACCOUNTS, fill.account_id)
        if writes:
            pipe.hset(account_key(fill.account_id), mapping=writes)
            pipe.hincrby(account_key(fill.account_id), "revision", 1)
            add_changes(pipe, accounts=[fill.account_id])

    applied, _ = _record_event(client, fill.account_id, fill.event_id, change)
    if applied and joined_or_left == ["joined"]:
        publish_symbol_changes(client, [symbol], [])
    elif applied and joined_or_left == ["left"]:
        untrack = client.register_script(UNTRACK)
        if untrack(keys=[holders_key(symbol), SYMBOLS], args=[symbol]):
            publish_symbol_changes(client, [], [symbol])
    return applied


def apply_cash(
    account_id: str, event_id: str, amount: Decimal, at: datetime, client: redis.Redis | None = None
) -> bool:
    """Move the account's cached cash by ``amount`` (negative out) once per event id, unless
    its balances were fetched after ``at``; False if the event was already applied."""
    client = client or redis_client()
    stamp = moments.stored(at)

    def change(pipe: redis.client.Pipeline, values: dict) -> None:
        cash = parse_decimal(values["cash"])
        balances_at = values["balances_at"]
        if cash is None or (balances_at is not None and stamp <= balances_at.decode()):
            return
        pipe.hset(account_key(account_id), "cash", format(cash + amount, "f"))
        pipe.hincrby(account_key(account_id), "revision", 1)
        add_changes(pipe, accounts=[account_id])

    applied, _ = _record_event(client, account_id, event_id, change)
    return applied
