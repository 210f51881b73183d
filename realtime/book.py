"""The account book in Redis: every account's holdings, cash and last_equity, and who holds what.

Contract (values encoded as :mod:`marketdata.store` says; every key below is written only here):

``clera:account:<account_id>`` — a hash per account:

===================  ===========================================================================
``holdings``         JSON ``{symbol: {"qty", "avg_entry_price", "multiplier", "asset_class"}}``,
                     ``qty`` signed (short < 0), amounts as decimal strings, ``multiplier`` 100
                     for ``us_option`` else 1; symbols as the streams name them (``BTC/USD``);
                     ``{}`` for an account that holds nothing. Sorted keys, so equal books are
                     equal strings.
``marks``            JSON ``{symbol: {"last_price", "lastday_price"}}``: the broker's
                     ``current_price`` at the last collection (or the fill price since), and the
                     previous close (null if unknown) — the fallback prices of
                     :func:`marketdata.price_cache.valuation_price`.
``cash``             decimal string; absent until the account's balances were first fetched.
``last_equity``      decimal string (equity at the previous close); absent likewise.
``balances_at``      moment the balances were fetched (the request's start): trade and transfer
                     events at or before it are already in ``cash``.
``balances_day``     New York date of that fetch; ``balances_roll`` the day-roll counter then.
``positions_as_of``  the broker's ``as_of`` of the collection that last wrote ``holdings``:
                     fills at or before it are already in them.
``event_at``         moment of the last fill applied to ``holdings`` from the event stream.
``revision``         integer, incremented whenever ``holdings``, ``cash`` or ``last_equity``
                     change; writers compare it to apply a write only over what they read.
===================  ===========================================================================

``clera:holders:<symbol>`` — set of the account ids holding the symbol (empty sets vanish).
``clera:symbols`` — set of every symbol some account in the book holds: what the quote consumer
streams (options included in the set; the consumer skips them).
``clera:accounts`` — set of every account id in the book.
``clera:collection`` — hash about the last symbol collection: ``at``, ``as_of``, ``accounts``,
``symbols``, ``seconds``. Its absence means the book has not been collected since Redis lost its
data, so ``clera:symbols`` may be incomplete.
``clera:day`` — hash ``roll`` (count of broker day rolls seen), ``rolled_at``; ``clera:lastday``
— the previous collection's ``lastday_price`` per symbol, to notice the next roll.
``clera:balances:due`` — set of account ids whose balances must be fetched again (a gap in the
event stream, a transfer we could not size, a busted trade).
``clera:events:done:<event_id>`` — marks a processed broker event (three days), so replays and
duplicates change nothing.

Pub/sub ``clera:symbols:changed`` — JSON ``{"added": [...], "removed": [...]}`` whenever the
tracked set changes. A hint: a subscriber that missed one re-reads ``clera:symbols``.

Every account write is atomic (one Lua script, or WATCH/MULTI/EXEC): a reader never sees an
account's holdings half-written, nor its holdings index out of step with its hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import redis

from marketdata import moments
from marketdata.price_cache import (
    CachedPrice,
    PriceCache,
    add_changes,
    canonical_symbol,
    valuation_price,
)
from marketdata.store import parse_decimal, redis_client
from marketdata.types import Position
from portfolio.valuation import AccountInputs, HoldingInput

ACCOUNT_PREFIX = "clera:account:"
HOLDERS_PREFIX = "clera:holders:"
SYMBOLS = "clera:symbols"
ACCOUNTS = "clera:accounts"
COLLECTION = "clera:collection"
DAY = "clera:day"
LASTDAY = "clera:lastday"
BALANCES_DUE = "clera:balances:due"
EVENT_DONE_PREFIX = "clera:events:done:"
EVENT_DONE_SECONDS = 3 * 86_400
SYMBOLS_CHANNEL = "clera:symbols:changed"

OPTION_MULTIPLIER = 100
CENT = Decimal("0.01")
#: Precision of an average entry price recomputed from a fill (the next collection replaces it
#: with the broker's own figure).
AVG_PRICE_QUANTUM = Decimal("1E-6")
ZERO = Decimal(0)
_FIELDS = (
    "holdings",
    "marks",
    "cash",
    "last_equity",
    "balances_at",
    "balances_day",
    "balances_roll",
    "positions_as_of",
    "event_at",
    "revision",
)

# Replace (or drop) one account's holdings from a collection, with its index entries, unless
# something changed it since it was read or a fill newer than the snapshot was applied.
# KEYS: account hash, clera:accounts, holders sets (the first ARGV[5] to join, the rest to leave)
# ARGV: revision read ('' if none), snapshot as_of, holdings JSON ('' = drop), marks JSON,
#       account id, sets to join. Returns 0 skipped, 1 stored (same holdings), 2 holdings changed.
_STORE = """
local revision = redis.call('HGET', KEYS[1], 'revision') or ''
if revision ~= ARGV[1] then return 0 end
local event_at = redis.call('HGET', KEYS[1], 'event_at')
if event_at and event_at >= ARGV[2] then return 0 end
local joins = tonumber(ARGV[6])
for i = 3, #KEYS do
  if i - 2 <= joins then
    redis.call('SADD', KEYS[i], ARGV[5])
  else
    redis.call('SREM', KEYS[i], ARGV[5])
  end
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
  return 2
end
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[1], 'marks', ARGV[4], 'positions_as_of', ARGV[2])
if redis.call('HGET', KEYS[1], 'holdings') == ARGV[3] then return 1 end
redis.call('HSET', KEYS[1], 'holdings', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
return 2
"""

# Set an account's balances if nothing changed it since the fetch began.
# KEYS: account hash, clera:balances:due. ARGV: revision read, cash, last_equity, balances_at,
# balances_day, balances_roll, account id.
_BALANCES = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'revision') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'cash', ARGV[2], 'last_equity', ARGV[3], 'balances_at', ARGV[4],
  'balances_day', ARGV[5], 'balances_roll', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('SREM', KEYS[2], ARGV[7])
return 1
"""

# Stop tracking a symbol once nobody holds it (atomic, so a concurrent buyer is never lost).
_UNTRACK = """
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


def account_key(account_id: str) -> str:
    return ACCOUNT_PREFIX + account_id


def holders_key(symbol: str) -> str:
    return HOLDERS_PREFIX + symbol


@dataclass(frozen=True, slots=True)
class CachedHolding:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    multiplier: int
    asset_class: str
    last_price: Decimal
    lastday_price: Decimal | None


@dataclass(frozen=True, slots=True)
class CachedAccount:
    """One account as the book holds it; ``cash``/``last_equity`` None until first fetched."""

    account_id: str
    holdings: tuple[CachedHolding, ...]
    cash: Decimal | None
    last_equity: Decimal | None
    revision: int
    positions_as_of: datetime | None
    balances_at: datetime | None
    balances_day: str | None
    balances_roll: int | None

    @property
    def ready(self) -> bool:
        """Whether it can be valued: its balances have been fetched."""
        return self.cash is not None and self.last_equity is not None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(h.symbol for h in self.holdings)


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


@dataclass(frozen=True, slots=True)
class CollectionDiff:
    """What one :func:`store_collection` did."""

    stored: int  # accounts written
    skipped: int  # accounts left alone: changed by an event meanwhile
    dropped: int  # accounts removed from the book
    changed: tuple[str, ...]  # accounts whose holdings changed (or that came or went)
    added: tuple[str, ...]  # symbols now tracked
    removed: tuple[str, ...]  # symbols no longer tracked


@dataclass(frozen=True, slots=True)
class DayRoll:
    roll: int
    rolled_at: datetime | None


# --- reading ------------------------------------------------------------------------------


def _holdings(holdings_json: bytes | None, marks_json: bytes | None) -> tuple[CachedHolding, ...]:
    holdings = json.loads(holdings_json) if holdings_json else {}
    marks = json.loads(marks_json) if marks_json else {}
    out = []
    for symbol, item in holdings.items():
        mark = marks.get(symbol, {})
        avg = Decimal(item["avg_entry_price"])
        out.append(
            CachedHolding(
                symbol=symbol,
                qty=Decimal(item["qty"]),
                avg_entry_price=avg,
                multiplier=int(item["multiplier"]),
                asset_class=item["asset_class"],
                last_price=parse_decimal(mark.get("last_price")) or avg,
                lastday_price=parse_decimal(mark.get("lastday_price")),
            )
        )
    return tuple(out)


def _integer(raw: bytes | None) -> int | None:
    return int(raw) if raw else None


def _account(account_id: str, raw: Sequence[bytes | None]) -> CachedAccount | None:
    values = dict(zip(_FIELDS, raw, strict=True))
    if values["revision"] is None:
        return None
    day = values["balances_day"]
    return CachedAccount(
        account_id=account_id,
        holdings=_holdings(values["holdings"], values["marks"]),
        cash=parse_decimal(values["cash"]),
        last_equity=parse_decimal(values["last_equity"]),
        revision=int(values["revision"]),
        positions_as_of=moments.parse_stored(values["positions_as_of"]),
        balances_at=moments.parse_stored(values["balances_at"]),
        balances_day=day.decode() if day else None,
        balances_roll=_integer(values["balances_roll"]),
    )


def load(account_ids: Iterable[str], client: redis.Redis | None = None) -> dict[str, CachedAccount]:
    """The book's accounts by id, in one pipelined round trip; unknown ids are left out."""
    client = client or redis_client()
    account_ids = list(account_ids)
    pipe = client.pipeline(transaction=False)
    for account_id in account_ids:
        pipe.hmget(account_key(account_id), _FIELDS)
    accounts = {}
    for account_id, raw in zip(account_ids, pipe.execute(), strict=True):
        account = _account(account_id, raw)
        if account is not None:
            accounts[account_id] = account
    return accounts


def accounts_holding(symbols: Iterable[str], client: redis.Redis | None = None) -> set[str]:
    """Ids of the accounts holding any of ``symbols`` (one SUNION)."""
    keys = [holders_key(symbol) for symbol in symbols]
    if not keys:
        return set()
    return {member.decode() for member in (client or redis_client()).sunion(keys)}


def account_ids(client: redis.Redis | None = None) -> set[str]:
    return {member.decode() for member in (client or redis_client()).smembers(ACCOUNTS)}


def cash_only_accounts(client: redis.Redis | None = None) -> set[str]:
    """Accounts in the book that hold nothing (their value moves only with cash)."""
    client = client or redis_client()
    keys = [holders_key(symbol.decode()) for symbol in client.smembers(SYMBOLS)]
    return {member.decode() for member in client.sdiff([ACCOUNTS, *keys])}


def tracked_symbols(client: redis.Redis | None = None) -> tuple[set[str], bool]:
    """The tracked symbols, and whether the set is complete (a collection has run since Redis
    last lost its data; until then fills may have added symbols, but nothing was removed)."""
    pipe = (client or redis_client()).pipeline(transaction=False)
    pipe.smembers(SYMBOLS)
    pipe.exists(COLLECTION)
    members, collected = pipe.execute()
    return {member.decode() for member in members}, bool(collected)


def holder_counts(symbols: Iterable[str], client: redis.Redis | None = None) -> dict[str, int]:
    """How many accounts hold each symbol (to choose what a symbol-limited feed streams)."""
    symbols = list(symbols)
    pipe = (client or redis_client()).pipeline(transaction=False)
    for symbol in symbols:
        pipe.scard(holders_key(symbol))
    return dict(zip(symbols, pipe.execute(), strict=True))


def day_roll(client: redis.Redis | None = None) -> DayRoll:
    raw = (client or redis_client()).hgetall(DAY)
    return DayRoll(int(raw.get(b"roll", 0)), moments.parse_stored(raw.get(b"rolled_at")))


class TrackedSymbols:
    """The tracked set as the quote consumer follows it (a ``marketdata.quotes.TrackedSource``)."""

    channel = SYMBOLS_CHANNEL

    def __init__(self, client: redis.Redis | None = None) -> None:
        self._client = client

    def read(self) -> tuple[set[str], bool]:
        return tracked_symbols(self._client)

    def holder_counts(self, symbols: Iterable[str]) -> dict[str, int]:
        return holder_counts(symbols, self._client)


def balances_due(client: redis.Redis | None = None) -> set[str]:
    return {member.decode() for member in (client or redis_client()).smembers(BALANCES_DUE)}


def account_inputs(
    cached: CachedAccount, prices: Mapping[str, CachedPrice], now: datetime
) -> AccountInputs:
    """The valuation's inputs: each holding priced by :func:`valuation_price`, its previous
    close from the price cache (else the position's). ``cached`` must be :attr:`ready`."""
    if not cached.ready:
        raise ValueError(f"account {cached.account_id} has no balances yet")
    holdings = []
    for holding in cached.holdings:
        price_info = prices.get(holding.symbol)
        price, source, at = valuation_price(price_info, holding.last_price, now)
        prev_close = price_info.prev_close if price_info is not None else None
        holdings.append(
            HoldingInput(
                symbol=holding.symbol,
                qty=holding.qty,
                price=price,
                avg_entry_price=holding.avg_entry_price,
                lastday_price=prev_close if prev_close is not None else holding.lastday_price,
                multiplier=holding.multiplier,
                price_source=source,
                price_at=at,
            )
        )
    return AccountInputs(
        account_id=cached.account_id,
        cash=cached.cash,
        last_equity=cached.last_equity,
        holdings=tuple(holdings),
    )


def cached_inputs(account_id: str, now: datetime | None = None) -> AccountInputs | None:
    """The account's valuation inputs from the book and the price cache; None when the book
    does not have the account or not yet its balances (ask the broker instead)."""
    cached = load([account_id]).get(account_id)
    if cached is None or not cached.ready:
        return None
    prices = PriceCache().get(cached.symbols)
    return account_inputs(cached, prices, now or datetime.now(UTC))


# --- collection -------------------------------------------------------------------------------


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _multiplier(asset_class: str) -> int:
    return OPTION_MULTIPLIER if asset_class == "us_option" else 1


def _snapshot_rows(positions: Sequence[Position]) -> tuple[str, str, set[str]]:
    """An account's holdings and marks JSON from the broker's positions, and its symbols."""
    holdings = {}
    marks = {}
    for position in positions:
        symbol = canonical_symbol(position.symbol, position.asset_class)
        holdings[symbol] = {
            "qty": _text(position.qty),
            "avg_entry_price": _text(position.avg_entry_price),
            "multiplier": _multiplier(position.asset_class),
            "asset_class": position.asset_class,
        }
        last = position.current_price or position.lastday_price or position.avg_entry_price
        marks[symbol] = {"last_price": _text(last), "lastday_price": _text(position.lastday_price)}
    return _dump(holdings), _dump(marks), set(holdings)


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
    store = client.register_script(_STORE)
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
    untrack = client.register_script(_UNTRACK)
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
    stored = client.register_script(_BALANCES)(
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


# --- events -----------------------------------------------------------------------------------


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
        values = dict(zip(_FIELDS, pipe.hmget(key, _FIELDS), strict=True))
        pipe.multi()
        outcome = change(pipe, values)
        pipe.set(done, 1, ex=EVENT_DONE_SECONDS)
        return True, outcome

    return client.transaction(work, key, done, value_from_callable=True)


def apply_fill(fill: Fill, client: redis.Redis | None = None) -> bool:
    """Apply a fill to the account's cached holding and cash at once; False if already seen.

    Cash moves by the fill's notional (to the cent, half-even, as the broker settles it) unless
    the balances were fetched after the fill; the holding takes the broker's ``position_qty``
    unless the last collection's snapshot is newer than the fill. The account is named on
    ``clera:changes``; a symbol it starts or stops holding joins or leaves the tracked set.
    """
    client = client or redis_client()
    symbol = canonical_symbol(fill.symbol, fill.asset_class)
    multiplier = _multiplier(fill.asset_class)
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
            qty = Decimal(held["qty"]) if held else ZERO
            new_qty = fill.position_qty if fill.position_qty is not None else qty + delta
            if new_qty == 0:
                holdings.pop(symbol, None)
                marks.pop(symbol, None)
                pipe.srem(holders_key(symbol), fill.account_id)
                joined_or_left.append("left")
            else:
                avg = Decimal(held["avg_entry_price"]) if held else fill.price
                holdings[symbol] = {
                    "qty": format(new_qty, "f"),
                    "avg_entry_price": format(
                        _after_fill(qty, avg, delta, fill.price, new_qty), "f"
                    ),
                    "multiplier": multiplier,
                    "asset_class": fill.asset_class,
                }
                marks.setdefault(
                    symbol, {"last_price": format(fill.price, "f"), "lastday_price": None}
                )
                if not held:
                    pipe.sadd(holders_key(symbol), fill.account_id)
                    pipe.sadd(SYMBOLS, symbol)
                    joined_or_left.append("joined")
            writes.update(holdings=_dump(holdings), marks=_dump(marks), event_at=stamp)
            pipe.sadd(ACCOUNTS, fill.account_id)
        if writes:
            pipe.hset(account_key(fill.account_id), mapping=writes)
            pipe.hincrby(account_key(fill.account_id), "revision", 1)
            add_changes(pipe, accounts=[fill.account_id])

    applied, _ = _record_event(client, fill.account_id, fill.event_id, change)
    if applied and joined_or_left == ["joined"]:
        publish_symbol_changes(client, [symbol], [])
    elif applied and joined_or_left == ["left"]:
        untrack = client.register_script(_UNTRACK)
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
