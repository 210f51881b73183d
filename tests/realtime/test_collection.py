"""Symbol collection against the session sandbox: the book says what the broker says."""

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from marketdata import book
from marketdata.book import keys
from marketdata.broker import gateway
from marketdata.price_cache import PriceCache, canonical_symbol
from portfolio.models import BrokerageAccount
from realtime import collection
from tests.realtime.conftest import wait_for


def link(*account_ids: str) -> None:
    user = get_user_model().objects.create(username=f"owner-{uuid.uuid4().hex[:8]}")
    for account_id in account_ids:
        BrokerageAccount.objects.create(user=user, account_id=account_id)


def rows(positions) -> dict[str, tuple]:
    return {
        canonical_symbol(p.symbol, p.asset_class): (p.qty, p.avg_entry_price, p.lastday_price)
        for p in positions
    }


@pytest.mark.django_db
def test_collection_books_every_position_index_and_balance(redis_client, sandbox_accounts) -> None:
    cash_only = next(a["id"] for a in sandbox_accounts if a["shape"] == "cash_only")
    link(cash_only)
    before = gateway().all_positions()

    report = collection.collect_symbols()

    after = gateway().all_positions()
    # Simulated customers keep trading: compare the accounts nobody traded meanwhile.
    steady = [
        a for a in before.positions if rows(before.positions[a]) == rows(after.positions.get(a, ()))
    ]
    assert len(steady) >= len(before.positions) * 3 // 4
    booked = book.load(book.account_ids())
    assert set(booked) == set(before.positions) | {cash_only}
    assert report.accounts == len(booked) and report.balances_fetched == len(booked)
    for account_id in steady:
        holdings = booked[account_id].holdings
        cached = {h.symbol: (h.qty, h.avg_entry_price, h.lastday_price) for h in holdings}
        assert cached == rows(before.positions[account_id]), account_id
    symbols = set().union(*(h.symbols for h in booked.values()))
    assert set(map(bytes.decode, redis_client.smembers(keys.SYMBOLS))) == symbols
    assert report.symbols == len(symbols) and report.added
    for account in booked.values():
        for symbol in account.symbols:
            assert account.account_id in book.accounts_holding([symbol])
    closes = PriceCache().get(symbols)
    for account_id in steady[:5]:
        for symbol, (_, _, lastday) in rows(before.positions[account_id]).items():
            assert closes[symbol].prev_close == lastday
    idle = booked[cash_only]
    assert idle.holdings == () and idle.cash == gateway().account(cash_only).cash > 0
    for account_id in steady[:5]:
        assert booked[account_id].last_equity == gateway().account(account_id).last_equity


@pytest.mark.django_db
def test_a_closed_position_leaves_the_index_and_the_tracked_set(
    redis_client, dedicated_account, symbol_changes
) -> None:
    held = {s for items in gateway().all_positions().positions.values() for s in rows(items)}
    stock = next(
        a.symbol
        for a in gateway().assets(status="active", asset_class="us_equity")
        if a.symbol not in held and a.fractionable
    )

    def holding() -> Decimal | None:
        found = [p.qty for p in gateway().positions(dedicated_account) if p.symbol == stock]
        return found[0] if found else None

    gateway().submit_order(dedicated_account, stock, Decimal(2), "buy")
    wait_for(lambda: holding() == 2, what=f"the {stock} buy to fill")
    collection.collect_symbols()
    assert book.accounts_holding([stock]) == {dedicated_account}
    assert stock in book.tracked_symbols()[0]

    gateway().submit_order(dedicated_account, stock, Decimal(2), "sell")
    wait_for(lambda: holding() is None, what=f"the {stock} sell to fill")
    report = collection.collect_symbols()

    assert stock in report.removed and stock not in book.tracked_symbols()[0]
    assert book.accounts_holding([stock]) == set()
    assert dedicated_account not in book.account_ids()  # holds nothing and nobody linked it
    joined, left = symbol_changes()
    assert stock in joined["added"] and left == {"added": [], "removed": [stock]}


@pytest.mark.django_db(transaction=True)
def test_two_collections_at_once_leave_one_correct_book(redis_client) -> None:
    with collection.single_run("collect_symbols", 30) as held:
        assert held
        assert collection.collect_symbols() is None  # someone else is collecting: leave

    start = threading.Barrier(2)
    reports = []

    def collect() -> None:
        start.wait()
        reports.append(collection.collect_symbols())

    threads = [threading.Thread(target=collect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert any(reports)
    booked = book.load(book.account_ids())
    symbols = set().union(*(a.symbols for a in booked.values()))
    assert {m.decode() for m in redis_client.smembers(keys.SYMBOLS)} == symbols
    assert all(a.ready for a in booked.values())


@pytest.mark.django_db
def test_balances_are_fetched_once_then_again_after_a_day_roll(redis_client) -> None:
    first = collection.collect_symbols()
    again = collection.collect_symbols()
    assert first.balances_fetched == first.accounts and again.balances_fetched == 0

    # The broker rolls its day: a held symbol's previous close is not what it was.
    symbol = next(iter(book.tracked_symbols()[0]))
    redis_client.hset(keys.LASTDAY, symbol, "0.01")
    with override_settings(LAST_EQUITY_REFRESH_SPREAD=1):
        rolled = collection.collect_symbols()

    assert book.day_roll().roll == 1
    assert rolled.balances_fetched == rolled.accounts


@pytest.mark.django_db
def test_a_rate_limit_pauses_balance_fetches_until_retry_after(redis_client, faults) -> None:
    collection.collect_symbols()
    accounts = sorted(book.account_ids())[:3]
    book.mark_balances_due(accounts)
    faults(rate_limited=1.0, retry_after=1)

    assert collection.refresh_balances(set(), time.monotonic() + 10) == (0, 3)
    assert redis_client.exists(collection.BROKER_BACKOFF)
    faults(rate_limited=0)
    assert collection.refresh_balances(set(), time.monotonic() + 10) == (0, 3)  # still waiting

    wait_for(lambda: not redis_client.exists(collection.BROKER_BACKOFF), 3, "the backoff to end")
    assert collection.refresh_balances(set(), time.monotonic() + 10) == (3, 0)
    assert book.balances_due() == set()


@pytest.mark.django_db
def test_recalculation_names_every_symbol_and_idle_account(redis_client, sandbox_accounts) -> None:
    idle = next(a["id"] for a in sandbox_accounts if a["shape"] == "empty")
    link(idle)
    collection.collect_symbols()
    redis_client.delete("clera:changes")

    assert collection.recalculate_all() > 0

    (entry,) = redis_client.xrange("clera:changes")
    fields = entry[1]
    assert set(fields[b"symbols"].decode().split(",")) == book.tracked_symbols()[0]
    assert fields[b"accounts"].decode().split(",") == [idle]
