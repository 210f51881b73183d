"""The account book on real Redis: collections, fills, transfers and valuation inputs."""

import dataclasses
import uuid
from datetime import timedelta
from decimal import Decimal

from marketdata import book
from marketdata.book import keys
from marketdata.price_cache import CHANGES_STREAM, PriceCache, quote_fields, trade_fields
from portfolio.pricing import book_inputs
from portfolio.valuation import value_account
from tests.realtime.conftest import now, position

A, B = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def holders(redis_client, symbol: str) -> set[str]:
    return {m.decode() for m in redis_client.smembers(keys.holders_key(symbol))}


def tracked(redis_client) -> set[str]:
    return {m.decode() for m in redis_client.smembers(keys.SYMBOLS)}


def changed_accounts(redis_client) -> list[str]:
    return [
        fields[b"accounts"].decode()
        for _, fields in redis_client.xrange(CHANGES_STREAM)
        if b"accounts" in fields
    ]


def fill(account_id: str, side: str, qty: str, price: str, position_qty: str, **extra) -> book.Fill:
    return book.Fill(
        account_id=account_id,
        event_id=extra.pop("event_id", str(uuid.uuid4())),
        symbol=extra.pop("symbol", "AAPL"),
        asset_class=extra.pop("asset_class", "us_equity"),
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        position_qty=Decimal(position_qty),
        at=extra.pop("at", now()),
    )


def seed(cash: str = "1000.00", **positions) -> None:
    """Book A from a collection and give it balances."""
    book.store_collection(positions or {A: [position("AAPL", "10")]}, now() - timedelta(seconds=1))
    account = book.load([A])[A]
    assert book.store_balances(
        A, Decimal(cash), Decimal("2000.00"), now() - timedelta(seconds=1), account.revision, 0
    )


def test_collection_builds_index_and_tracked_set_and_removes_what_went(
    redis_client, symbol_changes
) -> None:
    first = book.store_collection(
        {
            A: [position("AAPL", "10"), position("BTCUSD", "0.5", asset_class="crypto")],
            B: [
                position("AAPL", "-2"),
                position("AAPL261218C00250000", "1", asset_class="us_option"),
            ],
        },
        now(),
    )
    assert first.added == ("AAPL", "AAPL261218C00250000", "BTC/USD") and first.changed == (A, B)
    assert holders(redis_client, "AAPL") == {A, B} and holders(redis_client, "BTC/USD") == {A}
    assert book.accounts_holding(["BTC/USD", "AAPL261218C00250000"]) == {A, B}
    loaded = book.load([A, B, "unknown"])
    assert set(loaded) == {A, B}
    option = next(h for h in loaded[B].holdings if h.asset_class == "us_option")
    assert (option.multiplier, option.qty, option.last_price) == (100, 1, Decimal("110"))
    assert next(h for h in loaded[B].holdings if h.symbol == "AAPL").qty == -2

    second = book.store_collection({A: [position("AAPL", "10")]}, now())

    assert (second.dropped, second.removed) == (1, ("AAPL261218C00250000", "BTC/USD"))
    assert second.changed == (A, B)
    assert tracked(redis_client) == {"AAPL"} and holders(redis_client, "AAPL") == {A}
    assert book.account_ids() == {A} and not redis_client.exists(keys.account_key(B))
    assert symbol_changes() == [
        {"added": ["AAPL", "AAPL261218C00250000", "BTC/USD"], "removed": []},
        {"added": [], "removed": ["AAPL261218C00250000", "BTC/USD"]},
    ]


def test_a_linked_account_stays_booked_holding_nothing(redis_client) -> None:
    book.store_collection({A: [position("AAPL", "1")]}, now(), keep=[B])
    book.store_collection({}, now(), keep=[B])
    assert book.account_ids() == {B}
    assert book.load([B])[B].holdings == ()
    assert book.cash_only_accounts() == {B}
    assert tracked(redis_client) == set()


def test_a_fill_newer_than_the_snapshot_is_not_overwritten(redis_client) -> None:
    seed()
    snapshot_time = now()
    book.apply_fill(fill(A, "buy", "5", "120", "15", at=snapshot_time + timedelta(seconds=1)))

    diff = book.store_collection({A: [position("AAPL", "10")]}, snapshot_time)

    assert diff.skipped == 1
    assert book.load([A])[A].holdings[0].qty == 15


def test_fills_move_cash_and_holdings_once(redis_client, symbol_changes) -> None:
    seed(cash="1000.00")
    buy = fill(A, "buy", "2", "101.005", "12")

    assert book.apply_fill(buy) is True
    assert book.apply_fill(buy) is False  # a replayed event changes nothing

    account = book.load([A])[A]
    assert account.cash == Decimal("1000.00") - Decimal("202.01")  # 202.010 to the cent
    apple = account.holdings[0]
    assert apple.qty == 12
    assert apple.avg_entry_price == ((10 * Decimal(100) + 2 * Decimal("101.005")) / 12).quantize(
        Decimal("1E-6")
    )
    assert changed_accounts(redis_client)[-1] == A

    book.apply_fill(fill(A, "sell", "4", "130", "8"))
    assert book.load([A])[A].holdings[0].avg_entry_price == apple.avg_entry_price  # kept
    book.apply_fill(fill(A, "sell", "8", "130", "0"))
    account = book.load([A])[A]
    assert account.holdings == () and account.cash == Decimal("797.99") + 12 * 130
    assert "AAPL" not in tracked(redis_client) and holders(redis_client, "AAPL") == set()

    book.apply_fill(fill(A, "sell", "1", "1.5", "-1", symbol="ETHUSD", asset_class="crypto"))
    assert book.load([A])[A].holdings[0].symbol == "ETH/USD"
    assert symbol_changes()[-2:] == [
        {"added": [], "removed": ["AAPL"]},
        {"added": ["ETH/USD"], "removed": []},
    ]


def test_crossing_through_zero_restarts_the_entry_price(redis_client) -> None:
    seed()
    book.apply_fill(fill(A, "sell", "15", "90", "-5"))
    apple = book.load([A])[A].holdings[0]
    assert (apple.qty, apple.avg_entry_price) == (-5, Decimal(90))


def test_events_older_than_what_the_book_read_are_not_applied_twice(redis_client) -> None:
    seed(cash="1000.00")
    book.store_collection({A: [position("AAPL", "10")]}, now())
    earlier = now() - timedelta(seconds=30)

    book.apply_fill(fill(A, "buy", "1", "100", "11", at=earlier))
    book.apply_cash(A, "transfer-1", Decimal("50"), earlier)

    account = book.load([A])[A]
    assert account.cash == Decimal("1000.00") and account.holdings[0].qty == 10


def test_completed_transfers_move_cash_once(redis_client) -> None:
    seed(cash="1000.00")
    assert book.apply_cash(A, "transfer-1", Decimal("250.00"), now())
    assert not book.apply_cash(A, "transfer-1", Decimal("250.00"), now())
    book.apply_cash(A, "transfer-2", Decimal("-100.00"), now())
    assert book.load([A])[A].cash == Decimal("1150.00")


def test_balances_are_not_stored_over_a_change_made_meanwhile(redis_client) -> None:
    seed(cash="1000.00")
    read = book.load([A])[A]
    book.apply_cash(A, "transfer-1", Decimal("5"), now())
    assert not book.store_balances(A, Decimal("1"), Decimal("1"), now(), read.revision, 0)
    assert book.load([A])[A].cash == Decimal("1005.00")


def test_inputs_price_each_holding_by_the_valuation_rule(redis_client) -> None:
    assert book_inputs(A) is None  # not booked
    book.store_collection(
        {
            A: [
                position("AAPL", "10", price="110", lastday="105"),
                position("MSFT", "2", price="400", lastday="390"),
                position("AAPL261218C00250000", "1", price="3.10", asset_class="us_option"),
            ]
        },
        now(),
    )
    assert book_inputs(A) is None  # booked, but no balances yet
    account = book.load([A])[A]
    book.store_balances(A, Decimal("500"), Decimal("4000"), now(), account.revision, 0)
    PriceCache().write_batch(
        {"MSFT": quote_fields(401.0, 1.0, 401.5, 1.0, now())},
        {"AAPL": trade_fields(111.25, 5.0, now())},
        {},
    )
    PriceCache().set_prev_close({"AAPL": Decimal("106")})

    inputs = book_inputs(A)

    by_symbol = {h.symbol: h for h in inputs.holdings}
    assert (inputs.cash, inputs.last_equity) == (Decimal(500), Decimal(4000))
    assert (by_symbol["AAPL"].price, by_symbol["AAPL"].price_source) == (Decimal("111.25"), "trade")
    assert by_symbol["AAPL"].lastday_price == Decimal("106")  # the cache's close wins
    assert (by_symbol["MSFT"].price, by_symbol["MSFT"].price_source) == (Decimal("401.25"), "quote")
    assert by_symbol["MSFT"].lastday_price == Decimal("390")
    option = by_symbol["AAPL261218C00250000"]
    assert (option.price, option.price_source) == (Decimal("3.10"), "position")
    assert option.multiplier == 100


def day_changes(account_id: str = A) -> dict[str, Decimal]:
    """Each holding's day change as the push and the REST summary value it from the book."""
    inputs = book_inputs(account_id)
    return {h.symbol: h.day_change for h in value_account(inputs, now()).holdings}


def opened_today(symbol: str, qty: str, entry: str, price: str = "110"):
    """A broker position bought today: Alpaca's intraday P/L runs from its entry price."""
    held = position(symbol, qty, avg=entry, price=price)
    intraday = held.qty * (held.current_price - held.avg_entry_price)
    return dataclasses.replace(held, unrealized_intraday_pl=intraday)


def test_a_position_opened_today_changes_from_its_entry_price(redis_client) -> None:
    """Collected from the broker, or opened by a fill: the day runs from the entry, not from a
    previous close the account never held it at."""
    seed(**{A: [opened_today("AAPL", "10", entry="108"), position("MSFT", "2")]})
    PriceCache().set_prev_close(
        {"AAPL": Decimal("105"), "MSFT": Decimal("105"), "NVDA": Decimal("150")}
    )
    PriceCache().write_batch({}, {"AAPL": trade_fields(111.0, 1.0, now())}, {})

    assert day_changes() == {
        "AAPL": Decimal(10 * (111 - 108)),  # not 10 × (111 − 105)
        "MSFT": Decimal(2 * (110 - 105)),  # held at the close: from the close
    }
    assert book.load([A])[A].holdings[1].day_basis is None  # untouched today: nothing stored

    book.apply_fill(fill(A, "buy", "3", "160", "3", symbol="NVDA"))

    assert day_changes()["NVDA"] == 3 * (160 - 160)  # its price is the fill's until a trade
    PriceCache().write_batch({}, {"NVDA": trade_fields(161.5, 1.0, now())}, {})
    assert day_changes()["NVDA"] == Decimal("4.5")  # 3 × (161.5 − 160), not 3 × (161.5 − 150)


def test_adding_to_a_holding_today_measures_each_part_from_its_own_price(redis_client) -> None:
    seed()  # 10 AAPL held at a previous close of 105
    PriceCache().set_prev_close({"AAPL": Decimal("105")})
    book.apply_fill(fill(A, "buy", "5", "120", "15"))
    PriceCache().write_batch({}, {"AAPL": trade_fields(121.0, 1.0, now())}, {})

    assert day_changes()["AAPL"] == 10 * (121 - 105) + 5 * (121 - 120)

    book.apply_fill(fill(A, "sell", "3", "125", "12"))  # a sale keeps the rest's mix
    assert book.load([A])[A].holdings[0].day_basis == Decimal(1650) * 12 / 15
    assert day_changes()["AAPL"] == 12 * 121 - Decimal(1320)


def test_a_day_roll_the_book_has_not_collected_yet_measures_from_the_new_close(
    redis_client,
) -> None:
    seed(**{A: [opened_today("AAPL", "10", entry="108")]})
    PriceCache().write_batch({}, {"AAPL": trade_fields(111.0, 1.0, now())}, {})
    PriceCache().set_prev_close({"AAPL": Decimal("110.50")})  # the broker's next day began

    assert day_changes()["AAPL"] == Decimal(5)  # 10 × (111 − 110.50): yesterday's entry is past


def test_a_collection_stores_the_brokers_day_basis_and_notices_it_change(redis_client) -> None:
    seed(**{A: [position("AAPL", "10")]})
    before = book.load([A])[A].revision

    diff = book.store_collection({A: [opened_today("AAPL", "10", entry="108")]}, now())

    assert diff.changed == (A,) and book.load([A])[A].revision == before + 1
    assert book.load([A])[A].holdings[0].day_basis == Decimal(1080)
