"""Writing what the broker says: symbol collections, balances, day rolls, what is due.

A collection replaces each account's holdings from ONE bulk positions call (atomically, and
never over a newer event); balances are set only if nothing moved since they were fetched.
Each write names the accounts it changed on ``clera:changes`` (:func:`add_changes`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import redis

from marketdata import moments
from marketdata.price_cache import add_changes, canonical_symbol
from marketdata.store import parse_decimal, redis_client
from marketdata.types import Position, contract_multiplier

from .keys import (
    ACCOUNTS,
    BALANCES,
    BALANCES_DUE,
    COLLECTION,
    DAY,
    LASTDAY,
    STORE,
    SYMBOLS,
    SYMBOLS_CHANNEL,
    UNTRACK,
    account_key,
    dump,
    holders_key,
)
from .reads import DayRoll, account_ids, day_roll, holder_counts, load, tracked_symbols

#: A broker day basis closer than this to the previous close's is the previous close's.
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CollectionDiff:
    """What one :func:`store_collection` did."""

    stored: int  # accounts written
    skipped: int  # accounts left alone: changed by an event meanwhile
    dropped: int  # accounts removed from the book
    changed: tuple[str, ...]  # accounts whose holdings changed (or that came or went)
    added: tuple[str, ...]  # symbols now tracked
    removed: tuple[str, ...]  # symbols no longer tracked


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _touched_today_basis(position: Position) -> Decimal | None:
    """The broker's day basis when it differs from the previous close's by a cent or more
    (today's fills touched the holding); None when the day is measured from the close — so a
    holding untouched today stores the same JSON at every collection, rounding aside."""
    basis = position.day_basis
    if basis is None or position.lastday_price is None:
        return basis
    from_close = position.qty * position.lastday_price * contract_multiplier(position.asset_class)
    return None if abs(basis - from_close) < CENT else basis


def _snapshot_rows(positions: Sequence[Position]) -> tuple[str, str, set[str]]:
    """An account's holdings and marks JSON from the broker's positions, and its symbols."""
    holdings = {}
    marks = {}
    for position in positions:
        symbol = canonical_symbol(position.symbol, position.asset_class)
        holdings[symbol] = {
            "qty": _text(position.qty),
            "avg_entry_price": _text(position.avg_entry_price),
            "multiplier": contract_multiplier(position.asset_class),
            "asset_class": position.asset_class,
            "day_basis": _text(_touched_today_basis(position)),
        }
        last = position.current_price or position.lastday_price or position.avg_entry_price
        marks[symbol] = {"last_price": _text(last), "lastday_price": _text(position.lastday_price)}
    return dump(holdings), dump(marks), set(holdings)


def store_collection(
    positions: Mapping[str, Sequence[Position]],
    as_of: datetime,
    keep: Iterable[str] = (),
    client: redis.Redis | None = None,
) -> CollectionDiff:
    """Make the book say what one bulk positions call said, account by account.

    ``positions`` maps account ids to their positions as of ``as_of`` (the broker's time);
    ``keep`` names accounts to keep (holding nothing) though the call did not list them — the
    ones our users linked. Every other account the call no longer lists leaves the book. An
    account an event changed after ``as_of`` (or while this ran) is left as it is: it is newer
    than the snapshot, and the next collection catches up with it.
    """
    client = client or redis_client()
    store = client.register_script(STORE)
    wanted = {account_id: tuple(items) for account_id, items in positions.items()}
    for account_id in keep:
        wanted.setdefault(str(account_id), ())
    present = account_ids(client)
    everyone = sorted(present | set(wanted))
    current = load(everyone, client)
    tracked_before, _ = tracked_symbols(client)
    stamp = moments.stored(as_of)
    pipe = client.pipeline(transaction=False)
    touched: set[str] = set()
    for account_id in everyone:
        account = current.get(account_id)
        held = set(account.symbols) if account else set()
        if account_id in wanted:
            holdings_json, marks_json, symbols = _snapshot_rows(wanted[account_id])
        else:
            holdings_json, marks_json, symbols = "", "", set()
        joins = sorted(symbols)
        leaves = sorted(held - symbols)
        touched.update(joins, leaves)
        store(
            keys=[account_key(account_id), ACCOUNTS, *map(holders_key, joins + leaves)],
            args=[
                str(account.revision) if account else "",
                stamp,
                holdings_json,
                marks_json,
                account_id,
                len(joins),
            ],
            client=pipe,
        )
    results = pipe.execute()
    changed = tuple(a for a, r in zip(everyone, results, strict=True) if r == 2)
    dropped = sum(1 for a, r in zip(everyone, results, strict=True) if r and a not in wanted)
    added, removed = _retrack(client, touched | tracked_before, tracked_before)
    client.hset(COLLECTION, "as_of", stamp)  # from now on the tracked set is complete
    if changed:
        add_changes(client, accounts=changed)
    return CollectionDiff(
        stored=sum(1 for r in results if r),
        skipped=sum(1 for r in results if not r),
        dropped=dropped,
        changed=changed,
        added=added,
        removed=removed,
    )


def _retrack(
    client: redis.Redis, candidates: set[str], before: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Track exactly the candidates someone holds; publish what changed."""
    candidates_list = sorted(candidates)
    counts = holder_counts(candidates_list, client)
    added = tuple(s for s in candidates_list if counts[s] and s not in before)
    pipe = client.pipeline(transaction=False)
    if added:
        pipe.sadd(SYMBOLS, *added)
    untrack = client.register_script(UNTRACK)
    leaving = [s for s in candidates_list if not counts[s]]
    for symbol in leaving:
        untrack(keys=[holders_key(symbol), SYMBOLS], args=[symbol], client=pipe)
    results = pipe.execute()
    untracked = results[1:] if added else results
    removed = tuple(s for s, r in zip(leaving, untracked, strict=True) if r)
    publish_symbol_changes(client, added, removed)
    return added, removed


def publish_symbol_changes(
    client: redis.Redis, added: Sequence[str], removed: Sequence[str]
) -> None:
    if added or removed:
        client.publish(
            SYMBOLS_CHANNEL, json.dumps({"added": list(added), "removed": list(removed)})
        )


def mark_collected(
    at: datetime, as_of: datetime, accounts: int, symbols: int, seconds: float,
    client: redis.Redis | None = None,
) -> None:  # fmt: skip
    """Record the last collection (its presence also says the tracked set is complete)."""
    (client or redis_client()).hset(
        COLLECTION,
        mapping={
            "at": moments.stored(at),
            "as_of": moments.stored(as_of),
            "accounts": accounts,
            "symbols": symbols,
            "seconds": f"{seconds:.3f}",
        },
    )


def note_lastday_prices(
    closes: Mapping[str, Decimal], now: datetime, client: redis.Redis | None = None
) -> DayRoll:
    """Compare the positions' previous closes with the last collection's; a changed one means
    the broker rolled its trading day (new closes, new last_equity): count the roll."""
    client = client or redis_client()
    previous = {
        symbol.decode(): parse_decimal(value) for symbol, value in client.hgetall(LASTDAY).items()
    }
    rolled = any(
        symbol in previous and previous[symbol] != close for symbol, close in closes.items()
    )
    pipe = client.pipeline(transaction=True)
    if rolled:
        pipe.hincrby(DAY, "roll", 1)
        pipe.hset(DAY, "rolled_at", moments.stored(now))
    pipe.delete(LASTDAY)
    if closes:
        pipe.hset(LASTDAY, mapping={s: format(c, "f") for s, c in closes.items()})
    pipe.execute()
    return day_roll(client)


def store_balances(
    account_id: str,
    cash: Decimal,
    last_equity: Decimal,
    fetched_at: datetime,
    revision: int,
    roll: int,
    client: redis.Redis | None = None,
) -> bool:
    """Set the account's cash and last_equity as fetched from the broker at ``fetched_at``,
    unless it changed since ``revision`` was read (a fill landed meanwhile: fetch again)."""
    client = client or redis_client()
    stored = client.register_script(BALANCES)(
        keys=[account_key(account_id), BALANCES_DUE],
        args=[
            str(revision),
            format(cash, "f"),
            format(last_equity, "f"),
            moments.stored(fetched_at),
            moments.new_york_day(fetched_at),
            roll,
            account_id,
        ],
    )
    if stored:
        add_changes(client, accounts=[account_id])
    return bool(stored)


def mark_balances_due(account_ids: Iterable[str], client: redis.Redis | None = None) -> None:
    """Have the next collection fetch these accounts' balances again."""
    account_ids = list(account_ids)
    if account_ids:
        (client or redis_client()).sadd(BALANCES_DUE, *account_ids)


def forget_balances_due(account_id: str, client: redis.Redis | None = None) -> None:
    (client or redis_client()).srem(BALANCES_DUE, account_id)
