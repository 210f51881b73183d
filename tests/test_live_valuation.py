"""The calculator's incremental valuation equals the full one, string for string.

``LiveAccount`` (exact integers, recomputing only what moved) against
``valuation_json(value_account(entry_inputs(...)))`` (Decimal, from scratch) over random books,
price paths (trades and quotes fresh and stale, missing symbols), day rolls (a new previous close
in the cache), and fills and cash events (the calculator builds a new ``LiveAccount`` from the
changed book entry, so a path of entries is a path of rebuilt accounts valued at the same prices).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from marketdata.book import CachedAccount, CachedHolding
from marketdata.moments import iso
from marketdata.price_cache import CachedPrice
from portfolio import money
from portfolio.live_valuation import LiveAccount, symbol_price
from portfolio.presenters import valuation_json
from portfolio.pricing import entry_inputs
from portfolio.valuation import value_account

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "TSLA", "BTC/USD", "SPY")

quantities = st.one_of(
    st.decimals(min_value=-10_000, max_value=10_000, places=0),
    st.decimals(min_value=Decimal("-5000"), max_value=Decimal("5000"), places=9),
)
share_prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("90000"), places=4)
prices = st.one_of(
    share_prices, st.decimals(min_value=Decimal("1E-9"), max_value=Decimal(1), places=9)
)
cash = st.decimals(min_value=-1_000_000, max_value=1_000_000, places=2)
ages = st.floats(min_value=0, max_value=600, allow_nan=False)


@st.composite
def holdings(draw: st.DrawFn, symbol: str) -> CachedHolding:
    qty = draw(quantities)
    lastday = draw(st.none() | prices)
    basis = draw(st.none() | st.builds(lambda p: qty * p, prices))
    return CachedHolding(
        symbol=symbol,
        qty=qty,
        avg_entry_price=draw(prices),
        multiplier=draw(st.sampled_from((1, 1, 100))),
        asset_class="us_equity",
        last_price=draw(prices),
        lastday_price=lastday,
        day_basis=basis,
    )


@st.composite
def entries(draw: st.DrawFn, revision: int = 1) -> CachedAccount:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=len(SYMBOLS)))
    return CachedAccount(
        account_id="acct",
        holdings=tuple(draw(holdings(symbol)) for symbol in symbols),
        cash=draw(cash),
        last_equity=draw(st.sampled_from((Decimal(0),)) | cash.map(abs)),
        revision=revision,
        positions_as_of=None,
        balances_at=None,
        balances_day=None,
        balances_roll=None,
    )


@st.composite
def caches(draw: st.DrawFn) -> dict[str, CachedPrice]:
    """One moment of the price cache: any symbol may be missing, any part stale or absent."""
    cached = {}
    for symbol in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):
        bid, ask = draw(st.none() | prices), draw(st.none() | prices)
        cached[symbol] = CachedPrice(
            symbol=symbol,
            trade_price=draw(st.none() | prices),
            trade_at=NOW - timedelta(seconds=draw(ages)),
            bid=bid,
            ask=ask,
            quote_at=NOW - timedelta(seconds=draw(ages)),
            prev_close=draw(st.none() | prices),
        )
    return cached


def _full(entry: CachedAccount, cached: dict[str, CachedPrice]) -> dict:
    return valuation_json(value_account(entry_inputs(entry, cached, NOW), NOW))


def _live(account: LiveAccount, cached: dict[str, CachedPrice]) -> dict:
    quotes = {symbol: symbol_price(cached.get(symbol), NOW) for symbol in account.symbols}
    return account.value(quotes, iso(NOW))


@hypothesis_settings(max_examples=300, deadline=None)
@given(entry=entries(), path=st.lists(caches(), min_size=1, max_size=6))
def test_incremental_values_equal_full_revaluations(entry, path) -> None:
    account = LiveAccount(entry)
    for cached in path:
        assert _live(account, cached) == _full(entry, cached)


@hypothesis_settings(max_examples=100, deadline=None)
@given(path=st.lists(st.tuples(entries(), caches()), min_size=1, max_size=5))
def test_fills_and_cash_events_rebuild_to_the_full_value(path) -> None:
    for revision, (entry, cached) in enumerate(path, start=1):
        account = LiveAccount(entry)  # what the calculator does when the book entry moves
        assert account.revision == entry.revision
        assert _live(account, cached) == _full(entry, cached), revision


def test_an_unmoved_holding_keeps_its_dict_and_a_moved_one_gets_a_new_one() -> None:
    entry = CachedAccount(
        "acct",
        (
            CachedHolding("AAPL", Decimal(10), Decimal(150), 1, "us_equity", Decimal(190), None),
            CachedHolding("TSLA", Decimal(-2), Decimal(260), 1, "us_equity", Decimal(250), None),
        ),
        Decimal("1000.00"), Decimal("2000.00"), 1, None, None, None, None,
    )  # fmt: skip
    account = LiveAccount(entry)
    fresh = NOW - timedelta(seconds=1)
    first = _live(account, {"AAPL": CachedPrice("AAPL", trade_price=Decimal(191), trade_at=fresh)})
    # A move in TSLA small enough to leave every weight as it was: AAPL's dict is the same one.
    second = _live(
        account,
        {
            "AAPL": CachedPrice("AAPL", trade_price=Decimal(191), trade_at=fresh),
            "TSLA": CachedPrice("TSLA", trade_price=Decimal("250.01"), trade_at=fresh),
        },
    )
    assert second["holdings"][0] is first["holdings"][0]
    assert second["holdings"][1] is not first["holdings"][1]
    assert second["holdings"][1]["price"] == "250.01"
    assert second["holdings"][1]["price_source"] == "trade"


def test_a_price_with_more_places_than_the_unit_is_refused() -> None:
    """The caller values such an account with value_account instead."""
    cached = CachedPrice("AAPL", trade_price=Decimal("1.00000000001"), trade_at=NOW)
    with pytest.raises(ValueError):
        symbol_price(cached, NOW)


@given(
    part=st.integers(-(10**30), 10**30),
    whole=st.integers(-(10**30), 10**30).filter(bool),
)
def test_percentages_from_units_round_as_decimal_does(part, whole) -> None:
    """Within the ratios money meets (Decimal divides to 28 digits; the units are exact)."""
    assume(abs(part) <= abs(whole) * 10**6)
    expected = money.percent(money.ratio_percent(Decimal(part), Decimal(whole)))
    assert money.percent_from_units(part, whole) == expected


@given(amount=st.integers(-(10**25), 10**25), places=st.integers(2, 19))
def test_amounts_from_units_round_as_decimal_does(amount, places) -> None:
    value = Decimal(amount).scaleb(-places)
    assert money.money_from_units(amount, places) == money.money(value)
    assert money.quantity_from_units(amount, places) == money.quantity(value)
    if amount > 0:
        assert money.price_from_units(amount, places) == money.price(value)


def test_freshness_follows_the_setting() -> None:
    stale = NOW - timedelta(seconds=settings.TRADE_FRESHNESS_SECONDS + 1)
    cached = CachedPrice("AAPL", trade_price=Decimal(5), trade_at=stale, prev_close=Decimal(4))
    quote = symbol_price(cached, NOW)
    assert quote.price is None and quote.source == "position" and quote.prev_close == 4 * 10**10
