"""The classification table: the shipped CSV, symbol forms, options, and operators' own files."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from marketdata.sandbox.universe import load_universe
from portfolio.classification import SHIPPED_CSV, Classification, classify, option_underlying

HEADER = "symbol,name,category,sector,industry\n"


def test_every_sandbox_universe_symbol_has_its_real_sector_and_industry() -> None:
    for instrument in load_universe():
        found = classify(instrument.symbol)
        assert found == Classification(
            instrument.symbol, instrument.sector, instrument.industry, instrument.category
        ), instrument.symbol
        assert found.sector != "Unclassified"


def test_widely_held_names_outside_the_universe_are_classified() -> None:
    universe = {instrument.symbol for instrument in load_universe()}
    extras = {"TSM": "stock", "SOFI": "stock", "SCHG": "etf_broad", "VTEB": "etf_bond"}
    for symbol, category in extras.items():
        assert symbol not in universe
        assert classify(symbol).category == category
    assert classify("IBIT") == Classification(
        "IBIT", "Cryptocurrency", "Spot Bitcoin ETF", "crypto"
    )


def test_crypto_pairs_match_with_or_without_the_slash() -> None:
    for symbol in ("BTC/USD", "BTCUSD", "btc/usd"):
        found = classify(symbol)
        assert (found.symbol, found.category, found.sector) == (symbol, "crypto", "Cryptocurrency")


def test_share_classes_match_any_separator() -> None:
    assert {classify(s).sector for s in ("BRK.B", "BRK/B", "brk-b")} == {"Financials"}


def test_an_option_takes_its_underlyings_sector_and_industry() -> None:
    apple = classify("AAPL")
    call = classify("AAPL261218C00250000")
    assert call == Classification("AAPL261218C00250000", apple.sector, apple.industry, "option")
    assert classify("SPY250620P00400000").sector == "Broad Market"
    assert option_underlying("AAPL1261218C00250000") == "AAPL"  # an adjusted contract
    assert option_underlying("AAPL") is None


def test_an_option_on_an_unknown_underlying_is_still_an_option() -> None:
    assert classify("QQQZZ261218C00250000") == Classification(
        "QQQZZ261218C00250000", "Unclassified", "Unclassified", "option"
    )


def test_unknown_symbols_are_unclassified_never_guessed() -> None:
    for symbol in ("ZZZZQ", "", "AAPL2"):
        assert classify(symbol) == Classification(
            symbol, "Unclassified", "Unclassified", "unclassified"
        )


def test_an_operator_file_replaces_the_table(tmp_path: Path) -> None:
    own = tmp_path / "own.csv"
    own.write_text(HEADER + "ACME,Acme Corp.,stock,Industrials,Machinery\n")
    with override_settings(CLASSIFICATION_CSV=[str(own)]):
        assert classify("acme") == Classification("acme", "Industrials", "Machinery", "stock")
        assert classify("AAPL").category == "unclassified"


def test_an_operator_file_listed_after_the_shipped_one_extends_and_overrides_it(
    tmp_path: Path,
) -> None:
    own = tmp_path / "extra.csv"
    own.write_text(
        HEADER
        + "ACME,Acme Corp.,stock,Industrials,Machinery\n"
        + "AAPL,Apple Inc.,stock,Consumer Discretionary,Household Durables\n"
    )
    with override_settings(CLASSIFICATION_CSV=[str(SHIPPED_CSV), str(own)]):
        assert classify("ACME").sector == "Industrials"
        assert classify("AAPL").sector == "Consumer Discretionary"
        assert classify("MSFT").sector == "Information Technology"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sym,name\nAAPL,Apple\n", "line 1: the header must be"),
        (HEADER + "ACME,Acme,stock,Industrials,Machinery\nBAD,Bad,bond,Fixed Income,X\n", "line 3"),
        (HEADER + "ACME,Acme,stock,,Machinery\n", "line 2: symbol, sector and industry"),
        (HEADER + "ACME,Acme,stock,Industrials\n", "line 2: expected 5 columns"),
        (
            HEADER + "ACME,A,stock,Energy,Oil\n\nacme,B,stock,Energy,Oil\n",
            "line 4: ACME is already",
        ),
    ],
)
def test_a_bad_file_is_a_clear_configuration_error_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with (
        override_settings(CLASSIFICATION_CSV=[str(bad)]),
        pytest.raises(ImproperlyConfigured, match=message) as raised,
    ):
        classify("ACME")
    assert str(bad) in str(raised.value)


def test_a_missing_file_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with (
        override_settings(CLASSIFICATION_CSV=[str(tmp_path / "missing.csv")]),
        pytest.raises(ImproperlyConfigured, match="cannot read .*missing.csv"),
    ):
        classify("AAPL")


def test_the_table_is_read_once_per_process(tmp_path: Path) -> None:
    own = tmp_path / "own.csv"
    own.write_text(HEADER + "ACME,Acme Corp.,stock,Industrials,Machinery\n")
    with override_settings(CLASSIFICATION_CSV=[str(own)]):
        assert classify("ACME").sector == "Industrials"
        own.write_text("not a classification file at all\n")
        assert classify("ACME").sector == "Industrials"
