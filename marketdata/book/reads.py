"""Reading the book: accounts as records, who holds what, what is tracked (sync and async).

Every read is one round trip (pipelined where it asks for several keys). Records carry
``Decimal`` amounts and aware UTC moments, parsed as :mod:`marketdata.store` encodes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import redis
import redis.asyncio

from marketdata import moments
from marketdata.store import parse_decimal, redis_client

from .keys import (
    ACCOUNTS,
    BALANCES_DUE,
    COLLECTION,
    DAY,
    FIELDS,
    SYMBOLS,
    SYMBOLS_CHANNEL,
    account_key,
    holders_key,
)


@dataclass(frozen=True, slots=True)
class CachedHolding:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    multiplier: int
    asset_class: str
    last_price: Decimal
    lastday_price: Decimal | None
    day_basis: Decimal | None = None  # None: the day is measured from the previous close


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
class DayRoll:
    roll: int
    rolled_at: datetime | None


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
                day_basis=parse_decimal(item.get("day_basis")),
            )
        )
    return tuple(out)


def _integer(raw: bytes | None) -> int | None:
    return int(raw) if raw else None


def _account(account_id: str, raw: Sequence[bytes | None]) -> CachedAccount | None:
    values = dict(zip(FIELDS, raw, strict=True))
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
        pipe.hmget(account_key(account_id), FIELDS)
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


def last_collection(client: redis.Redis | None = None) -> dict[str, str]:
    """The last symbol collection's record (``at``, ``as_of``, ``accounts``, ``symbols``,
    ``seconds`` as stored); empty when none ran since Redis last lost its data."""
    raw = (client or redis_client()).hgetall(COLLECTION)
    return {field.decode(): value.decode() for field, value in raw.items()}


async def collected(client: redis.asyncio.Redis) -> bool:
    """Whether a symbol collection has stored the positions since Redis last lost its data
    (one ``EXISTS``): False means the book is gone and must be rebuilt."""
    return bool(await client.exists(COLLECTION))


async def revisions(
    client: redis.asyncio.Redis, account_ids: Sequence[str]
) -> dict[str, int | None]:
    """Each account's ``revision`` (None: not in the book), in one pipelined round trip, so a
    holder of parsed records can tell which ones moved without reading them again."""
    pipe = client.pipeline(transaction=False)
    for account_id in account_ids:
        pipe.hget(account_key(account_id), "revision")
    raw = await pipe.execute()
    return {a: _integer(r) for a, r in zip(account_ids, raw, strict=True)}


async def tracked_among(client: redis.asyncio.Redis, symbols: Sequence[str]) -> set[str]:
    """Those of ``symbols`` that some account holds (the quote consumer streams them)."""
    if not symbols:
        return set()
    flags = await client.smismember(SYMBOLS, list(symbols))
    return {symbol for symbol, flag in zip(symbols, flags, strict=True) if flag}
