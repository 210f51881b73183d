"""The calculator: revalue exactly the watched accounts a change touched, and push them, coalesced.

Input is the ``clera:changes`` stream (marketdata/price_cache.py): entries naming symbols whose
prices changed and accounts whose cash or holdings changed. One pass (:meth:`Calculator.step`)

1. reads every entry since its cursor (``XREAD BLOCK``; on start the cursor is the stream's
   newest entry — ``$`` without losing what arrives before the first read — then one full pass);
2. finds the *watched* accounts (a live socket, ``presence``; this process's partition) that
   hold a changed symbol or are named directly. The holdings come from the book: the calculator
   keeps the watched accounts' book entries and a symbol → watched-accounts index of them in
   memory, re-reads who is watched (one ``ZRANGEBYSCORE``) every WATCH_REFRESH second, reloads
   an account the stream names (its cash or holdings moved), and every RECALCULATION_INTERVAL
   checks every watched account's book ``revision`` (one pipelined round trip) in case a notice
   was lost. It is the book's holders index (``book.accounts_holding``)
   intersected with presence, without asking Redis for every holder: when the whole market
   moves, ``SUNION`` of the holders returns every account in the book on every pass (with the
   ``ZMSCORE``, measured ~65 ms a pass at 10k accounts and ~0.8 s at 100k: it grows with the
   book), while this grows with the watched accounts only — see BENCHMARKS.md;
3. coalesces: an account pushed less than MIN_UPDATE_INTERVAL ago is put off until its interval
   ends — then it is valued from the newest prices, so the final state is always delivered
   (trailing edge) and nothing is dropped; any other account is due now;
4. values the due accounts incrementally (:class:`portfolio.live_valuation.LiveAccount`:
   exact integers, only the holdings whose price moved recomputed, string for string what
   ``value_account`` and ``valuation_json`` give) from the book entries it keeps and its own
   copy of the price cache — the changed symbols' hashes are read once a pass (one pipelined
   round trip), the price rule applied once per symbol and pass — and publishes through
   ``fanout.publish_many`` only what changed since the account's last push
   (:func:`realtime.protocol.changes`). An account's first push (since it was watched, since
   the start, or after UPDATE_HISTORY_SECONDS / 2 without one) is its whole state, and so is
   every UPDATE_HISTORY_LENGTH / 2-th: a snapshot is the newest whole update with the partial
   ones after it (:func:`realtime.fanout.latest_state`), so those must still be kept. An
   account whose figures do not fit the exact units is valued with ``value_account`` instead.

No step lists all accounts or scans keys: a pass costs what the watched accounts it touches
cost. The full pass (at start and after Redis comes back) values every watched account of the
partition. An account is valued only once its balances are in the book (``ready``).

Work can be spread over CALCULATOR_PARTITIONS processes (``run_calculator --partition k``):
each owns the accounts whose CRC-32 falls in its partition. Every process reads the whole
stream, so the per-tick reads are repeated; BENCHMARKS.md says when that pays.

The same process (partition 0) pushes the broker's trade events to live accounts
(:mod:`realtime.trade_events`).

Both survive Redis going away: they log, back off (:mod:`marketdata.backoff`, 0.5 s doubling
to 10 s) and start again — the calculator from the stream's newest entry with a full pass, so
nothing stays stale. A book that is gone (Redis came back empty: ``book.collected`` is false)
is rebuilt at once by a symbol collection the calculator starts, not at the next beat.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings

from marketdata import book, moments
from marketdata.backoff import REDIS_MAX_BACKOFF, Backoff
from marketdata.price_cache import CHANGES_STREAM, AsyncPriceCache, CachedPrice
from marketdata.store import async_redis_client
from portfolio.live_valuation import LiveAccount, SymbolPrice, symbol_price
from portfolio.presenters import valuation_json
from portfolio.pricing import entry_inputs
from portfolio.valuation import value_account

from . import collection, fanout, presence, stats
from .protocol import changes
from .trade_events import TradeEvents

logger = logging.getLogger(__name__)

#: Longest XREAD block: bounds how late a trailing push can be, below the socket timeout.
BLOCK_MS = 500
#: Entries read per XREAD; more wait for the next pass.
READ_COUNT = 2000
#: Accounts valued and published per pass: PUSH_BATCH while few wait (~20 ms of work), up to
#: PUSH_BATCH_MOST when many do (half of those waiting). Small passes keep latency low: at 250
#: a pass bench.sockets e2e measured 160 ms from valuation to client at p50 (the batch valued,
#: then published at once, then sent by daphne as one burst), at 50, 51 ms. Large ones keep
#: throughput when the calculator falls behind: each pass reads the moved prices and makes its
#: round trips once, and bench.calculator pushed 1,179/s at 50 a pass against ~2,100 at 250.
PUSH_BATCH = 50
PUSH_BATCH_MOST = 250
STATS_EVERY = 1.0
#: Seconds between two reads of who is watched (and checks of their book revisions).
WATCH_REFRESH = 1.0
#: Seconds between two attempts to rebuild a missing book (another process's rebuild holds
#: the collection's lock meanwhile).
REBUILD_RETRY = 2.0


def partition_of(account_id: str, partitions: int) -> int:
    """The calculator partition that owns an account (stable across processes and runs)."""
    return zlib.crc32(account_id.encode()) % partitions


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did."""

    entries: int  # changes entries read
    ticks: int  # symbol changes in them (a symbol named twice counts twice)
    affected: int  # watched accounts (this partition) holding a changed symbol or named
    pushed: int  # accounts valued and published
    deferred: int  # affected accounts put off to the end of their interval
    waiting: int  # accounts due but left for the next passes
    seconds: float  # the pass's own time (not the wait for changes)
    lag: float | None  # seconds from the oldest entry read (its stream id) to the pass's end


def _split(value: bytes | None) -> list[str]:
    return value.decode().split(",") if value else []


class Calculator:
    """One calculator process's state: its cursor, the coalescing clock, and the watched
    accounts of its partition — parsed from the book (reloaded when the stream names them) and
    indexed by the symbols they hold."""

    def __init__(
        self,
        partition: int = 0,
        partitions: int = 1,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.partition = partition
        self.partitions = partitions
        self._client = client or async_redis_client()
        self._prices = AsyncPriceCache(self._client)
        self._cursor: str | None = None
        self._last_push: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []
        self._ready: dict[str, None] = {}  # due now, oldest first: pushed a batch a pass
        self._accounts: dict[str, book.CachedAccount] = {}
        self._live: dict[str, LiveAccount] = {}
        # Each account's last state pushed, when, and how many partial updates since a whole one.
        self._pushed: dict[str, tuple[dict[str, Any], float, int]] = {}
        # The price cache for the symbols held (None: read, nothing cached).
        self._quotes: dict[str, CachedPrice | None] = {}
        self._symbol_prices = _SymbolPrices(self._quotes)
        self._watched: dict[str, frozenset[str]] = {}
        self._holders: dict[str, set[str]] = defaultdict(set)
        self._watch_at = -WATCH_REFRESH
        self._swept_at = -math.inf
        self._counts: Counter = Counter()
        self._lag = 0.0
        self._stats_at = 0.0
        self._rebuild: asyncio.Task | None = None
        self._rebuild_at = -math.inf

    # --- the pass -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read from the stream's newest entry on, and queue every watched account for a push
        (the full pass: the next passes value them, a batch at a time)."""
        newest = await self._client.xrevrange(CHANGES_STREAM, count=1)
        self._cursor = newest[0][0].decode() if newest else "0-0"
        self._accounts.clear()
        self._live.clear()
        self._pushed.clear()
        self._quotes.clear()
        self._symbol_prices.clear()
        self._watched.clear()
        self._holders.clear()
        self._ready.clear()
        await self._refresh_watch(force=True)
        self._ready.update(dict.fromkeys(sorted(self._watched)))
        logger.info(
            "calculator.full_pass partition=%d watched=%d", self.partition, len(self._watched)
        )

    async def step(self, block_ms: int | None = BLOCK_MS) -> PassReport:
        """One pass: wait for changes (at most ``block_ms``, until the next put-off account is
        due, or not at all while accounts wait to be pushed), then value and push a batch of
        due accounts (PUSH_BATCH to PUSH_BATCH_MOST), the longest waiting first. Batches
        spread the pushes over the interval instead of one burst a second, so reading never
        falls far behind."""
        if self._cursor is None:
            await self.start()
        wait = block_ms
        if self._ready:
            wait = None
        elif self._due and block_ms is not None:
            wait = max(1, min(block_ms, int((self._due[0][0] - time.monotonic()) * 1000) + 1))
        reply = await self._client.xread(
            {CHANGES_STREAM: self._cursor}, count=READ_COUNT, block=wait
        )
        started = time.perf_counter()
        symbols: set[str] = set()
        named: set[str] = set()
        entries = ticks = 0
        oldest = None
        for _stream, items in reply or ():
            for entry_id, fields in items:
                self._cursor = entry_id.decode()
                oldest = oldest or self._cursor
                entries += 1
                changed = _split(fields.get(b"symbols"))
                ticks += len(changed)
                symbols.update(changed)
                named.update(_split(fields.get(b"accounts")))
        for account_id in named:
            self._accounts.pop(account_id, None)  # its cash or holdings moved: read it again
        await self._refresh_watch()
        await self._read_quotes(symbols.intersection(self._holders))
        affected = {a for a in named if a in self._watched}
        for symbol in symbols:
            affected.update(self._holders.get(symbol, ()))
        now = time.monotonic()
        deferred = self._coalesce(affected, now)
        size = min(PUSH_BATCH_MOST, max(PUSH_BATCH, len(self._ready) // 2))
        batch = list(itertools.islice(self._ready, size))
        for account_id in batch:
            del self._ready[account_id]
        pushed = await self._push(batch)
        lag = None if oldest is None else time.time() - int(oldest.split("-")[0]) / 1000
        report = PassReport(
            entries, ticks, len(affected), pushed, deferred, len(self._ready), _since(started), lag
        )
        self._counts.update(
            passes=1,
            ticks=ticks,
            events=len(affected),
            pushes=pushed,
            seconds_ms=int(report.seconds * 1000),
        )
        if lag is not None:
            self._lag = max(self._lag, lag)
        await self._write_stats()
        return report

    def _mine(self, account_ids: Iterable[str]) -> set[str]:
        if self.partitions == 1:
            return set(account_ids)
        return {a for a in account_ids if partition_of(a, self.partitions) == self.partition}

    async def _refresh_watch(self, force: bool = False) -> None:
        """At most every WATCH_REFRESH seconds: follow who is watched now (one
        ``ZRANGEBYSCORE``), load the newly watched and forget the rest. Every
        RECALCULATION_INTERVAL, also check every watched account's book revision (one pipelined
        round trip), so even a lost change notice is made good within that backstop."""
        now = time.monotonic()
        if not force and now - self._watch_at < WATCH_REFRESH:
            return
        self._watch_at = now
        if not await book.collected(self._client):
            self._rebuild_book(now)
        watched = self._mine(await presence.alive_accounts(self._client))
        gone = set(self._watched) - watched
        for account_id in gone:
            self._index(account_id, frozenset())
            del self._watched[account_id]
            self._accounts.pop(account_id, None)
            self._live.pop(account_id, None)
            self._pushed.pop(account_id, None)
            self._ready.pop(account_id, None)
            self._pending.pop(account_id, None)
        await fanout.forget_states(gone)
        for account_id in watched - set(self._watched):
            self._watched[account_id] = frozenset()
            # Valued while unwatched (a push already queued when its socket left), the account
            # may still be cached: index it now, or no price change would ever reach it again.
            cached = self._accounts.get(account_id)
            if cached is not None:
                self._index(account_id, frozenset(cached.symbols))
        sweep = force or now - self._swept_at >= settings.RECALCULATION_INTERVAL
        if sweep:
            self._swept_at = now
        await self._cached(sorted(watched), check=sweep)
        if sweep:  # a price key that expired, a change notice lost: read every one again
            await self._read_quotes(set(self._holders))

    def _rebuild_book(self, now: float) -> None:
        """Collect symbols now, in the background, when the book is gone (Redis came back
        empty, or no collection has run yet) instead of waiting for the next beat: the
        collection names every account it writes on the stream, and the passes that read
        those entries push them. One attempt at a time, at most every REBUILD_RETRY."""
        if self._rebuild is not None and not self._rebuild.done():
            return
        if now - self._rebuild_at < REBUILD_RETRY:
            return
        self._rebuild_at = now
        logger.warning("calculator.book_missing partition=%d: collecting now", self.partition)
        self._rebuild = asyncio.get_running_loop().create_task(_collect_symbols())

    def _index(self, account_id: str, symbols: frozenset[str]) -> None:
        """Make the symbol index say the account holds exactly ``symbols``."""
        before = self._watched.get(account_id, frozenset())
        for symbol in before - symbols:
            holders = self._holders.get(symbol)
            if holders is not None:
                holders.discard(account_id)
                if not holders:
                    del self._holders[symbol]
                    self._quotes.pop(symbol, None)
                    self._symbol_prices.forget(symbol)
        for symbol in symbols - before:
            if symbol not in self._holders:  # not followed until now: read it afresh
                self._quotes.pop(symbol, None)
            self._holders[symbol].add(account_id)
        self._watched[account_id] = symbols

    def _coalesce(self, affected: set[str], now: float) -> int:
        """Queue for a push the affected accounts outside their quiet interval, and the put-off
        ones whose interval has ended; put off the rest (once each) to the end of their
        interval. Returns how many were put off."""
        interval = settings.MIN_UPDATE_INTERVAL
        deferred = 0
        for account_id in affected:
            if account_id in self._ready or account_id in self._pending:
                continue
            last = self._last_push.get(account_id)
            if last is None or now - last >= interval:
                self._ready[account_id] = None
            else:
                self._pending[account_id] = last + interval
                heapq.heappush(self._due, (last + interval, account_id))
                deferred += 1
        while self._due and self._due[0][0] <= now:
            at, account_id = heapq.heappop(self._due)
            if self._pending.get(account_id) == at:
                del self._pending[account_id]
                self._ready[account_id] = None
        return deferred

    async def _push(self, account_ids: list[str]) -> int:
        """Value and publish the accounts; returns how many were pushed."""
        if not account_ids:
            return 0
        updates, states = await self._valuations(account_ids)
        if updates:
            await fanout.publish_many(updates)
        stamp = time.monotonic()
        for account_id in account_ids:
            self._last_push[account_id] = stamp
        for account_id, state in states.items():
            partials = self._pushed.get(account_id, (None, 0.0, 0))[2]
            whole = not updates[account_id].get("partial")
            self._pushed[account_id] = (state, stamp, 0 if whole else partials + 1)
        return len(updates)

    async def _read_quotes(self, symbols: set[str]) -> None:
        """Copy the symbols' price-cache entries (one pipelined round trip)."""
        if symbols:
            fresh = await self._prices.get(symbols)
            self._quotes.update((symbol, fresh.get(symbol)) for symbol in symbols)

    async def _valuations(
        self, account_ids: list[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Each ready account's update data and its whole state (see the module docstring,
        step 4)."""
        accounts = await self._cached(account_ids)
        unread = {s for a in accounts.values() for s in a.symbols if s not in self._quotes}
        await self._read_quotes(unread)  # newly held, or held by accounts no longer watched
        now = datetime.now(UTC)
        as_of = moments.iso(now)
        oldest = time.monotonic() - settings.UPDATE_HISTORY_SECONDS / 2
        most = settings.UPDATE_HISTORY_LENGTH // 2  # partial updates between two whole ones
        updates, states = {}, {}
        for account_id, account in accounts.items():
            if not account.ready:
                continue  # balances not fetched yet: nothing true to show
            try:
                state = self._value(account, now, as_of)
            except (ArithmeticError, ValueError, KeyError) as problem:
                logger.error(
                    "calculator.valuation_failed account=%s error=%s",
                    account_id,
                    type(problem).__name__,
                )
                continue
            before, at, partials = self._pushed.get(account_id, (None, 0.0, 0))
            stale = at < oldest or partials >= most
            updates[account_id] = changes(None if stale else before, state)
            states[account_id] = state
        return updates, states

    def _value(self, account: book.CachedAccount, now: datetime, as_of: str) -> dict[str, Any]:
        """The account's whole state: incrementally, or from scratch when a figure does not
        fit the exact units (ValueError from the units)."""
        live = self._live.get(account.account_id)
        try:
            if live is None or live.revision != account.revision:
                live = self._live[account.account_id] = LiveAccount(account)
            return live.value(self._symbol_prices.of(account.symbols, now), as_of)
        except ValueError:
            self._live.pop(account.account_id, None)
            inputs = entry_inputs(account, self._quotes, now)
            return valuation_json(value_account(inputs, now))

    async def _cached(
        self, account_ids: list[str], check: bool = False
    ) -> dict[str, book.CachedAccount]:
        """The accounts as this process has them from the book, loading the ones it has not
        (one ``book.load``). A change notice on the stream drops an account from the cache (see
        :meth:`step`); ``check`` also compares every cached one with the book's revision (one
        pipelined round trip) and reloads those that moved."""
        stale = [a for a in account_ids if a not in self._accounts]
        if check:
            for account_id, revision in (await book.revisions(self._client, account_ids)).items():
                cached = self._accounts.get(account_id)
                if revision is None:  # left the book
                    self._forget(account_id)
                elif cached is not None and cached.revision != revision:
                    stale.append(account_id)
        if stale:
            loaded = await asyncio.to_thread(book.load, stale)
            for account_id in stale:
                if account_id not in loaded:
                    self._forget(account_id)
            self._accounts.update(loaded)
            for account_id, account in loaded.items():
                if account_id in self._watched:
                    self._index(account_id, frozenset(account.symbols))
        return {a: self._accounts[a] for a in account_ids if a in self._accounts}

    def _forget(self, account_id: str) -> None:
        """The book no longer has the account."""
        self._accounts.pop(account_id, None)
        if account_id in self._watched:
            self._index(account_id, frozenset())

    async def _write_stats(self) -> None:
        now = time.monotonic()
        if now - self._stats_at < STATS_EVERY:
            return
        self._stats_at = now
        interval = settings.MIN_UPDATE_INTERVAL
        self._last_push = {a: t for a, t in self._last_push.items() if now - t < interval}
        counts, self._counts = self._counts, Counter()
        lag, self._lag = self._lag, 0.0
        key = stats.calculator_key(self.partition)
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                "at": moments.stored(datetime.now(UTC)),
                "partition": f"{self.partition}/{self.partitions}",
                "passes": counts["passes"],
                "ticks": counts["ticks"],
                "pushes": counts["pushes"],
                "busy_ms": counts["seconds_ms"],
                "max_lag_ms": int(lag * 1000),
                "watched": len(self._watched),
                "put_off": len(self._pending),
                "waiting": len(self._ready),
            },
        )
        pipe.expire(key, settings.STATS_TTL)
        for name, amount in (
            ("events", counts["events"]),
            ("pushes", counts["pushes"]),
            ("batch_events", counts["events"]),
            ("batch_messages", counts["pushes"]),
        ):
            if amount:
                pipe.hincrby(stats.TOTALS, name, amount)
        await pipe.execute()

    # --- running --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; through Redis outages, with backoff."""
        backoff = Backoff(maximum=REDIS_MAX_BACKOFF)
        while not stop.is_set():
            try:
                if self._cursor is None:
                    await self.start()
                    backoff.reset()
                await self.step()
            except (redis.RedisError, OSError) as problem:
                self._cursor = None  # Redis may have lost its data: start over with a full pass
                logger.warning(
                    "calculator.reconnect error=%s retry_in=%.1f",
                    type(problem).__name__,
                    backoff.seconds,
                )
                await backoff.sleep(stop)


async def _collect_symbols() -> None:
    """One symbol collection off the event loop (it calls the broker and the database)."""
    try:
        await sync_to_async(collection.collect_symbols, thread_sensitive=False)()
    except (redis.RedisError, OSError) as problem:  # Redis went again: the next check retries
        logger.warning("calculator.book_rebuild failed error=%s", type(problem).__name__)
    except Exception:
        logger.exception("calculator.book_rebuild failed; the next check retries")


class _SymbolPrices:
    """Each symbol's :func:`portfolio.live_valuation.symbol_price`, computed once for all its
    holders and kept, the very same object, while its copy in the price cache is the same and
    its ``until`` has not passed: a holding valued at it then costs nothing."""

    __slots__ = ("_cached", "_read", "_prices")

    def __init__(self, cached: dict[str, CachedPrice | None]) -> None:
        self._cached = cached
        self._read: dict[str, CachedPrice | None] = {}  # the cache entry each was made from
        self._prices: dict[str, SymbolPrice] = {}

    def of(self, symbols: Iterable[str], now: datetime) -> dict[str, SymbolPrice]:
        """Every symbol's price as of ``now`` (at least ``symbols``', brought up to date)."""
        prices, read = self._prices, self._read
        for symbol in symbols:
            cached = self._cached.get(symbol)
            kept = prices.get(symbol)
            if kept is None or read[symbol] is not cached or (kept.until or now) < now:
                prices[symbol] = symbol_price(cached, now)
                read[symbol] = cached
        return prices

    def forget(self, symbol: str) -> None:
        self._prices.pop(symbol, None)
        self._read.pop(symbol, None)

    def clear(self) -> None:
        self._prices.clear()
        self._read.clear()


def _since(started: float) -> float:
    return time.perf_counter() - started


async def run_calculator(stop: asyncio.Event, partition: int = 0, partitions: int = 1) -> None:
    """The calculator process: passes and (in partition 0) the trade events, until ``stop``."""
    logger.info("calculator.started partition=%d partitions=%d", partition, partitions)
    tasks = [Calculator(partition, partitions).run(stop)]
    if partition == 0:
        tasks.append(TradeEvents().run(stop))
    await asyncio.gather(*tasks)
    logger.info("calculator.stopped partition=%d", partition)
