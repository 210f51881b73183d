"""Keeping the account book (:mod:`marketdata.book`) true to the broker's positions, cheaply.

* **Symbol collection** (:func:`collect_symbols`, every SYMBOL_COLLECTION_INTERVAL from Celery
  beat): ONE bulk positions call replaces every account's holdings, the holders index and the
  tracked set, and sets each symbol's previous close in the price cache. Cash and last_equity
  are not in that call: they are fetched (``gateway().account()``, ACCOUNT_FETCH_CONCURRENCY at
  a time, accounts our users linked first) only for accounts the book has no balances for, for
  accounts marked due, and once per trading day — see :func:`_balances_due`. A 429 stops the
  fetching until its Retry-After has passed; what is left waits for the next run. A run spends
  at most half its interval fetching.
* **Full recalculation** (:func:`recalculate_all`, every RECALCULATION_INTERVAL): names every
  tracked symbol and every account holding nothing on ``clera:changes``, so the calculator
  revisits everything even if a change notice was lost.

Two runs of a task at once are harmless: each takes a Redis lock and the second one leaves.
Broker events (fills, transfers) keep the book current between collections:
:mod:`realtime.broker_events`.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

import redis
from django.conf import settings

from marketdata import book
from marketdata.broker import gateway
from marketdata.errors import BrokerError, BrokerNotFound, BrokerRateLimited
from marketdata.price_cache import PriceCache, add_changes, canonical_symbol
from marketdata.store import redis_client
from marketdata.types import NEW_YORK, AllPositions
from portfolio.selectors import linked_account_ids

logger = logging.getLogger(__name__)

LOCK_PREFIX = "clera:lock:"
#: Set (with the 429's Retry-After as its TTL) while the broker asks us to slow down.
BROKER_BACKOFF = "clera:broker:backoff_until"


@contextmanager
def single_run(name: str, seconds: float) -> Iterator[bool]:
    """A Redis lock held for the block (expiring after ``seconds`` if its holder dies);
    yields False, at once, when another run holds it."""
    lock = redis_client().lock(LOCK_PREFIX + name, timeout=seconds, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except redis.exceptions.LockError:
                logger.warning("lock %s expired before %s finished", name, name)


@dataclass(frozen=True, slots=True)
class CollectionReport:
    accounts: int
    symbols: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: int
    skipped: int
    balances_fetched: int
    balances_pending: int
    seconds: float


def collect_symbols() -> CollectionReport | None:
    """One symbol collection (see the module docstring); None when skipped or failed."""
    with single_run("collect_symbols", settings.CELERY_TASK_TIME_LIMIT) as acquired:
        if not acquired:
            logger.info("symbol collection already running elsewhere; this run leaves")
            return None
        try:
            snapshot = gateway().all_positions()
        except BrokerError as error:
            logger.warning("symbol collection skipped: %s", error.message)
            return None
        return _store(snapshot)


def _store(snapshot: AllPositions) -> CollectionReport:
    started = time.monotonic()
    now = datetime.now(UTC)
    client = redis_client()
    linked = linked_account_ids()
    diff = book.store_collection(snapshot.positions, snapshot.as_of, keep=linked, client=client)
    closes: dict[str, Decimal] = {}
    options: set[str] = set()
    for positions in snapshot.positions.values():
        for position in positions:
            symbol = canonical_symbol(position.symbol, position.asset_class)
            if position.lastday_price is not None:
                closes[symbol] = position.lastday_price
            if position.asset_class == "us_option":
                options.add(symbol)
    PriceCache(client).set_prev_close(closes)
    book.note_lastday_prices(closes, now, client)
    # Options are never streamed: their price is the collection's, so their holders revalue.
    add_changes(client, symbols=sorted(options))
    fetched, pending = refresh_balances(linked, started + settings.SYMBOL_COLLECTION_INTERVAL / 2)
    seconds = time.monotonic() - started
    tracked, _ = book.tracked_symbols(client)
    accounts = book.account_ids(client)
    book.mark_collected(now, snapshot.as_of, len(accounts), len(tracked), seconds, client)
    report = CollectionReport(
        accounts=len(accounts),
        symbols=len(tracked),
        added=diff.added,
        removed=diff.removed,
        changed=len(diff.changed),
        skipped=diff.skipped,
        balances_fetched=fetched,
        balances_pending=pending,
        seconds=seconds,
    )
    logger.info(
        "symbol collection: %d accounts (%d changed, %d left for newer events), %d symbols "
        "(+%d -%d), balances fetched %d, pending %d, %.2fs",
        report.accounts,
        report.changed,
        report.skipped,
        report.symbols,
        len(report.added),
        len(report.removed),
        fetched,
        pending,
        seconds,
    )
    return report


def _stagger(account_id: str) -> timedelta:
    """A fixed delay per account within LAST_EQUITY_REFRESH_SPREAD, so a day roll does not
    send every account's refresh to the broker in the same second."""
    spread = max(1, settings.LAST_EQUITY_REFRESH_SPREAD)
    return timedelta(seconds=zlib.crc32(account_id.encode()) % spread)


def _balances_due(
    accounts: dict[str, book.CachedAccount],
    linked: set[str],
    due: set[str],
    roll: book.DayRoll,
    now: datetime,
) -> list[str]:
    """Accounts whose cash and last_equity to fetch, most needed first:

    1. never fetched (accounts our users linked before the rest): they cannot be valued yet;
    2. marked due (an event gap, a transfer the book could not size, a busted trade);
    3. fetched before the broker's last day roll — noticed when a held symbol's
       ``lastday_price`` changed between collections — once the account's stagger passed;
    4. fetched on an earlier New York date, once midnight plus the stagger passed (covers
       days the roll is not visible in anyone's positions).
    """
    today = now.astimezone(NEW_YORK).date()
    midnight = datetime.combine(today, clock_time(0), NEW_YORK)
    missing_linked, missing, marked, rolled = [], [], [], []
    for account_id, account in accounts.items():
        if not account.ready:
            (missing_linked if account_id in linked else missing).append(account_id)
        elif account_id in due:
            marked.append(account_id)
        elif (
            roll.rolled_at is not None
            and (account.balances_roll or 0) < roll.roll
            and now >= roll.rolled_at + _stagger(account_id)
        ) or (
            account.balances_day is not None
            and account.balances_day < today.isoformat()
            and now >= midnight + _stagger(account_id)
        ):
            rolled.append(account_id)
    return missing_linked + missing + marked + rolled


def refresh_balances(linked: set[str], deadline: float) -> tuple[int, int]:
    """Fetch the balances that are due (see :func:`_balances_due`) until the monotonic
    ``deadline``; returns (stored, still due). Runs inside symbol collection."""
    client = redis_client()
    now = datetime.now(UTC)
    roll = book.day_roll(client)
    accounts = book.load(book.account_ids(client), client)
    wanted = _balances_due(accounts, linked, book.balances_due(client), roll, now)
    if not wanted or client.exists(BROKER_BACKOFF):
        return 0, len(wanted)
    halt = threading.Event()

    def fetch(account_id: str) -> bool:
        if halt.is_set() or time.monotonic() > deadline:
            return False
        started = datetime.now(UTC)
        try:
            snapshot = gateway().account(account_id)
        except BrokerRateLimited as limited:
            halt.set()
            client.set(BROKER_BACKOFF, 1, px=max(1, int(limited.retry_after * 1000)))
            return False
        except BrokerNotFound:
            book.forget_balances_due(account_id, client)
            return False
        except BrokerError:
            return False  # the gateway logged it; the account stays due
        return book.store_balances(
            account_id,
            snapshot.cash,
            snapshot.last_equity,
            started,
            accounts[account_id].revision,
            roll.roll,
            client,
        )

    workers = max(1, settings.ACCOUNT_FETCH_CONCURRENCY)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="balances") as pool:
        stored = sum(pool.map(fetch, wanted))
    if halt.is_set():
        logger.warning("broker rate limit: balance fetches paused until its Retry-After")
    return stored, len(wanted) - stored


def recalculate_all() -> int:
    """Name every tracked symbol and every account holding nothing on ``clera:changes``;
    returns how many names that was (0 when another run holds the lock)."""
    with single_run("recalculate_all", settings.RECALCULATION_INTERVAL) as acquired:
        if not acquired:
            return 0
        client = redis_client()
        symbols, _ = book.tracked_symbols(client)
        idle = book.cash_only_accounts(client)
        add_changes(client, symbols=sorted(symbols), accounts=sorted(idle))
        return len(symbols) + len(idle)
