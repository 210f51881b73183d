"""The analytics definitions: properties pinned with hypothesis, and docs/analytics.md's worked
examples recomputed from the page itself."""

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.sandbox.universe import load_universe
from portfolio.analytics import (
    DIVERSIFICATION_BANDS,
    RISK_BANDS,
    Analytics,
    AnalyzedHolding,
    analytics_json,
    analyze,
)
from portfolio.classification import classify

DOCS = Path(__file__).resolve().parent.parent / "docs" / "analytics.md"
PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UNIVERSE = load_universe()
STOCKS = tuple(i.symbol for i in UNIVERSE if i.category == "stock" and "." not in i.symbol)
SECTORS = tuple(sorted({i.sector for i in UNIVERSE if i.category == "stock"}))
STOCKS_BY_SECTOR = {s: tuple(x for x in STOCKS if classify(x).sector == s) for s in SECTORS}
BROAD = tuple(i.symbol for i in UNIVERSE if i.category == "etf_broad")
SECTOR_FUNDS = tuple(i.symbol for i in UNIVERSE if i.category == "etf_sector")
BONDS = tuple(i.symbol for i in UNIVERSE if i.category == "etf_bond")
COINS = tuple(i.symbol for i in UNIVERSE if i.category == "crypto")
PLAIN = STOCKS + BROAD + SECTOR_FUNDS + BONDS + ("ZZZQ", "QQQZZ")  # two unclassified
ASSET_CLASS = {"crypto": "crypto", "option": "us_option"}

amounts = st.decimals(min_value=1, max_value=100_000, places=2)
cash_amounts = st.decimals(min_value=0, max_value=100_000, places=2)


def option_on(stock: str) -> str:
    return f"{stock}261218C00250000"


def holding(symbol: str, value: Decimal | str) -> AnalyzedHolding:
    found = classify(symbol)
    return AnalyzedHolding(
        symbol, ASSET_CLASS.get(found.category, "us_equity"), Decimal(value), found
    )


def portfolio_of(symbols: list[str], values: list[Decimal]) -> list[AnalyzedHolding]:
    return [holding(s, v) for s, v in zip(symbols, values, strict=False)]


@st.composite
def plain_portfolios(draw: Callable, min_size: int = 1) -> list[AnalyzedHolding]:
    """Long stocks, funds and bond funds (and unclassified symbols), distinct symbols."""
    symbols = draw(st.lists(st.sampled_from(PLAIN), min_size=min_size, max_size=12, unique=True))
    values = draw(st.lists(amounts, min_size=len(symbols), max_size=len(symbols)))
    return portfolio_of(symbols, values)


@st.composite
def any_portfolios(draw: Callable) -> list[AnalyzedHolding]:
    """Anything a book holds: plain holdings plus crypto, options and short positions."""
    held = draw(plain_portfolios(min_size=0))
    extra = draw(
        st.lists(
            st.one_of(
                st.sampled_from(COINS),
                st.sampled_from(STOCKS).map(option_on),
            ),
            max_size=4,
            unique=True,
        )
    )
    held += portfolio_of(extra, draw(st.lists(amounts, min_size=len(extra), max_size=len(extra))))
    shorts = draw(st.lists(st.sampled_from(STOCKS), max_size=2, unique=True))
    held_symbols = {h.symbol for h in held}
    for symbol in shorts:
        if symbol not in held_symbols:
            held.append(holding(symbol, -draw(amounts)))
    return held


def scores(analytics: Analytics) -> tuple[Decimal, Decimal | None]:
    return analytics.risk.value, analytics.diversification.value


# --- properties ---------------------------------------------------------------------------


@PROPERTIES
@given(any_portfolios(), st.decimals(min_value=-50_000, max_value=100_000, places=2))
def test_scores_are_in_range_with_one_decimal_and_the_label_of_their_band(
    held: list[AnalyzedHolding], cash: Decimal
) -> None:
    body = analytics_json(analyze(held, cash))
    invested = any(h.market_value for h in held)
    for name, bands in (("risk", RISK_BANDS), ("diversification", DIVERSIFICATION_BANDS)):
        score = body[name]["score"]
        if not invested:  # nothing to score: its own sentences, tested below
            assert score == ("0.0" if name == "risk" else None)
            continue
        assert re.fullmatch(r"(10|\d)\.\d", score), score
        assert Decimal(0) <= Decimal(score) <= Decimal(10)
        _, label, sentence = next(b for b in bands if Decimal(score) >= b[0])
        assert (body[name]["label"], body[name]["explanation"]) == (label, sentence)


@PROPERTIES
@given(any_portfolios(), st.decimals(min_value=-50_000, max_value=100_000, places=2), amounts)
def test_adding_cash_never_raises_risk_and_lowers_it_when_something_is_invested(
    held: list[AnalyzedHolding], cash: Decimal, more: Decimal
) -> None:
    before, after = analyze(held, cash).risk, analyze(held, cash + more).risk
    assert after.value <= before.value
    assert after.exact <= before.exact
    equity_after = cash + more + sum((h.market_value for h in held), Decimal(0))
    if any(h.market_value for h in held) and before.exact < 10 and equity_after > 0:
        assert after.exact < before.exact


@PROPERTIES
@given(st.sampled_from(STOCKS), amounts)
def test_a_single_stock_is_very_high_risk_and_poor_diversification(
    stock: str, value: Decimal
) -> None:
    analytics = analyze([holding(stock, value)], Decimal(0))
    assert scores(analytics) == (Decimal("7.5"), Decimal("0.0"))
    assert (analytics.risk.label, analytics.diversification.label) == ("Very high", "Poor")


@PROPERTIES
@given(plain_portfolios(), cash_amounts)
def test_no_portfolio_of_stocks_funds_and_cash_is_riskier_than_a_single_stock(
    held: list[AnalyzedHolding], cash: Decimal
) -> None:
    single = analyze([holding("AAPL", "1000")], Decimal(0))
    assert analyze(held, cash).risk.exact <= single.risk.exact


@PROPERTIES
@given(any_portfolios(), st.decimals(min_value=-50_000, max_value=100_000, places=2))
def test_no_portfolio_is_less_diversified_than_a_single_stock(
    held: list[AnalyzedHolding], cash: Decimal
) -> None:
    single = analyze([holding("AAPL", "1000")], Decimal(0)).diversification
    diversification = analyze(held, cash).diversification
    if diversification.value is not None:
        assert diversification.value >= single.value
        assert diversification.exact >= single.exact


@PROPERTIES
@given(st.sampled_from(BROAD), amounts, cash_amounts)
def test_a_broad_index_fund_alone_is_excellently_diversified(
    fund: str, value: Decimal, cash: Decimal
) -> None:
    analytics = analyze([holding(fund, value)], cash)
    assert analytics.diversification.label == "Excellent"
    assert analytics.risk.value <= Decimal("3.6")


@PROPERTIES
@given(
    st.lists(st.sampled_from(BROAD), min_size=1, max_size=3, unique=True),
    st.data(),
    any_portfolios(),
)
def test_a_portfolio_mostly_in_broad_funds_is_well_diversified(
    funds: list[str], data: st.DataObject, rest: list[AnalyzedHolding]
) -> None:
    rest = [h for h in rest if h.classification.category != "etf_broad"]
    exposure = sum((abs(h.market_value) for h in rest), Decimal(0))
    share = [data.draw(amounts) for _ in funds]
    scale = max(Decimal(1), 4 * exposure / sum(share))  # funds ≥ 80 % of the exposure
    held = rest + [holding(f, v * scale) for f, v in zip(funds, share, strict=True)]
    assert analyze(held, Decimal(0)).diversification.value >= Decimal("8.5")


@PROPERTIES
@given(st.sampled_from(SECTOR_FUNDS), amounts)
def test_a_sector_fund_is_many_names_in_one_sector(fund: str, value: Decimal) -> None:
    alone = analyze([holding(fund, value)], Decimal(0))
    assert alone.diversification.value == Decimal("6.0")
    assert alone.risk.value > analyze([holding("VTI", value)], Decimal(0)).risk.value


@PROPERTIES
@given(st.lists(st.sampled_from(BONDS), min_size=1, max_size=5, unique=True), st.data())
def test_bond_funds_and_cash_are_low_risk(funds: list[str], data: st.DataObject) -> None:
    held = [holding(f, data.draw(amounts)) for f in funds]
    assert analyze(held, data.draw(cash_amounts)).risk.label == "Low"


@PROPERTIES
@given(st.data(), st.integers(min_value=8, max_value=11), amounts, cash_amounts)
def test_twenty_equal_stocks_across_eight_or_more_sectors_score_at_least_seven(
    data: st.DataObject, sector_count: int, value: Decimal, cash: Decimal
) -> None:
    sectors = data.draw(st.permutations(SECTORS))[:sector_count]
    # One stock per sector first, so every chosen sector is held, then any split of the rest.
    counts = [1] * sector_count
    for _ in range(20 - sector_count):
        counts[data.draw(st.integers(0, sector_count - 1))] += 1
    symbols = [
        symbol
        for sector, count in zip(sectors, counts, strict=True)
        for symbol in data.draw(
            st.lists(
                st.sampled_from(STOCKS_BY_SECTOR[sector]),
                min_size=count,
                max_size=count,
                unique=True,
            )
        )
    ]
    assert len(symbols) == 20
    analytics = analyze([holding(s, value) for s in symbols], cash)
    assert analytics.diversification.value >= 7


@PROPERTIES
@given(any_portfolios(), cash_amounts, st.data())
def test_splitting_a_holding_across_more_sectors_never_lowers_diversification(
    held: list[AnalyzedHolding], cash: Decimal, data: st.DataObject
) -> None:
    stocks = [h for h in held if h.classification.category == "stock" and h.market_value > 0]
    if not stocks:
        held.append(holding("AAPL", "5000"))
        stocks = held[-1:]
    split = data.draw(st.sampled_from(stocks))
    used = {h.classification.sector for h in held if h.market_value}
    free = [s for s in SECTORS if s not in used]
    if not free:
        return
    new_sectors = data.draw(
        st.lists(st.sampled_from(free), min_size=1, max_size=min(3, len(free)), unique=True)
    )
    # Part of it stays where it was; the rest goes to new companies in sectors not yet held.
    parts = data.draw(
        st.lists(st.integers(1, 100), min_size=len(new_sectors) + 1, max_size=len(new_sectors) + 1)
    )
    values = [split.market_value * p / sum(parts) for p in parts]
    pieces = [holding(split.symbol, values[0])] + [
        holding(data.draw(st.sampled_from(STOCKS_BY_SECTOR[sector])), value)
        for sector, value in zip(new_sectors, values[1:], strict=True)
    ]
    after = [h for h in held if h is not split] + pieces
    before_score = analyze(held, cash).diversification
    after_score = analyze(after, cash).diversification
    assert after_score.exact >= before_score.exact
    assert after_score.value >= before_score.value


@PROPERTIES
@given(plain_portfolios(), cash_amounts, st.data())
def test_swapping_a_stock_for_crypto_or_an_option_raises_risk(
    held: list[AnalyzedHolding], cash: Decimal, data: st.DataObject
) -> None:
    held.append(holding(data.draw(st.sampled_from(STOCKS)), data.draw(amounts)))
    held = list({h.symbol: h for h in held}.values())
    swapped = data.draw(st.sampled_from([h for h in held if h.classification.category == "stock"]))
    held_names = {h.symbol for h in held}
    underlying = data.draw(st.sampled_from([s for s in STOCKS if s not in held_names]))
    replacement = data.draw(st.sampled_from([*COINS, option_on(underlying)]))
    after = [h for h in held if h is not swapped] + [holding(replacement, swapped.market_value)]
    before_risk, after_risk = analyze(held, cash).risk, analyze(after, cash).risk
    assert after_risk.exact > before_risk.exact
    assert after_risk.value >= before_risk.value


# --- allocation ---------------------------------------------------------------------------


@PROPERTIES
@given(any_portfolios(), st.decimals(min_value=-50_000, max_value=100_000, places=2))
def test_allocations_add_up_to_exposure_plus_cash(
    held: list[AnalyzedHolding], cash: Decimal
) -> None:
    allocation = analytics_json(analyze(held, cash))["allocation"]
    whole = sum((abs(h.market_value) for h in held), Decimal(0)) + max(cash, Decimal(0))
    for slices in allocation.values():
        values = [Decimal(s["value"]) for s in slices]
        assert abs(sum(values, Decimal(0)) - whole) <= Decimal("0.005") * len(slices)
        assert values == sorted(values, reverse=True)
        assert ("Cash" in {s["name"] for s in slices}) == (cash > 0)
        if slices:
            total = sum(Decimal(s["percent"]) for s in slices)
            assert abs(total - 100) <= Decimal("0.005") * len(slices)


def test_a_short_counts_by_its_absolute_exposure_in_every_allocation() -> None:
    body = analytics_json(
        analyze([holding("TSLA", "-5000"), holding("AAPL", "5000")], Decimal(10000))
    )
    assert body["allocation"]["by_sector"] == [
        {"name": "Cash", "value": "10000.00", "percent": "50.00"},
        {"name": "Consumer Discretionary", "value": "5000.00", "percent": "25.00"},
        {"name": "Information Technology", "value": "5000.00", "percent": "25.00"},
    ]


def test_allocation_by_asset_class_names_what_a_holding_is() -> None:
    held = [
        holding("AAPL", "100"),
        holding("VTI", "200"),
        holding("XLK", "300"),
        holding("BND", "400"),
        holding("BTCUSD", "500"),
        holding(option_on("MSFT"), "600"),
        AnalyzedHolding("ZZZQ", "us_equity", Decimal(50), classify("ZZZQ")),
    ]
    names = {s.name: s.value for s in analyze(held, Decimal(0)).by_asset_class}
    assert names == {
        "Stocks": Decimal(150),
        "Stock funds": Decimal(500),
        "Bond funds": Decimal(400),
        "Crypto": Decimal(500),
        "Options": Decimal(600),
    }


def test_an_empty_account_is_a_valid_answer() -> None:
    body = analytics_json(analyze([], Decimal(0)))
    assert body["risk"] == {
        "score": "0.0",
        "label": "Low",
        "explanation": "Nothing at risk yet: your account holds no money and no investments.",
    }
    assert body["diversification"]["score"] is None
    assert body["diversification"]["label"] == "Not invested"
    assert body["allocation"] == {"by_asset_class": [], "by_sector": [], "by_industry": []}
    assert body["definitions_url"]


def test_a_cash_only_account_is_all_cash() -> None:
    body = analytics_json(analyze([holding("AAPL", "0")], Decimal("1234.5")))
    assert body["risk"]["score"] == "0.0"
    assert body["risk"]["explanation"].startswith("No risk from the market")
    cash = [{"name": "Cash", "value": "1234.50", "percent": "100.00"}]
    assert all(slices == cash for slices in body["allocation"].values())


def test_margin_and_shorts_raise_risk() -> None:
    fund = analyze([holding("VTI", "10000")], Decimal(0)).risk.exact
    assert analyze([holding("VTI", "15000")], Decimal(-5000)).risk.exact > fund
    assert analyze([holding("VTI", "-10000")], Decimal(20000)).risk.exact > fund


# --- the worked examples in docs/analytics.md ---------------------------------------------


def worked_examples() -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            rows.append(tuple(cells[1:]))
    return rows


def parse_holdings(text: str) -> tuple[list[AnalyzedHolding], Decimal]:
    held, cash = [], Decimal(0)
    for item in text.split(" · "):
        if item.endswith(" each"):
            symbols, value, _ = item.rsplit(" ", 2)
            pairs = [(symbol, value) for symbol in symbols.split("+")]
        else:
            pairs = [tuple(item.split(" "))]
        for symbol, value in pairs:
            if symbol == "cash":
                cash += Decimal(value)
            else:
                held.append(holding(symbol, value))
    return held, cash


def test_the_docs_have_the_worked_examples() -> None:
    assert len(worked_examples()) == 16


@pytest.mark.parametrize("example", worked_examples(), ids=lambda row: row[0])
def test_worked_examples_in_the_docs_match_the_code(example: tuple[str, ...]) -> None:
    _, holdings, risk, risk_label, diversification, diversification_label = example
    body = analytics_json(analyze(*parse_holdings(holdings)))
    assert (body["risk"]["score"], body["risk"]["label"]) == (risk, risk_label)
    expected = None if diversification == "null" else diversification
    assert body["diversification"]["score"] == expected
    assert body["diversification"]["label"] == diversification_label


def test_the_docs_and_the_module_state_the_same_bands_and_sentences() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for _, label, sentence in (*RISK_BANDS, *DIVERSIFICATION_BANDS):
        assert f"| {label} | {sentence} |" in docs
