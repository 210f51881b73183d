"""The sandbox's static market universe.

The instruments are real listed names: roughly the S&P 500 constituents,
about sixty widely held ETFs (broad-market, sector and bond funds) and a
couple of dozen USD-quoted crypto pairs. Stocks carry a GICS-style
classification (sector and industry); ETFs carry their focus as the sector
and a short fund category as the industry; crypto pairs use the sector
"Cryptocurrency". Each row also carries a plausible reference price that the
sandbox uses as its starting point.

The data lives in ``data/universe.csv`` next to this module. Besides feeding
the sandbox, code elsewhere (for example issue/instrument handling) may reuse
it as a plain symbol-to-classification table.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

UNIVERSE_CSV = Path(__file__).resolve().parent / "data" / "universe.csv"


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument of the sandbox universe."""

    symbol: str
    name: str
    asset_class: str  # "us_equity" or "crypto"
    exchange: str  # NYSE, NASDAQ, ARCA, AMEX, BATS, NYSEARCA or CRYPTO
    category: str  # stock, etf_broad, etf_sector, etf_bond or crypto
    sector: str
    industry: str
    reference_price: Decimal


@cache
def load_universe() -> tuple[Instrument, ...]:
    """Return every instrument of the universe, in file order (most widely held first)."""
    with UNIVERSE_CSV.open(newline="", encoding="utf-8") as fh:
        return tuple(
            Instrument(
                symbol=row["symbol"],
                name=row["name"],
                asset_class=row["asset_class"],
                exchange=row["exchange"],
                category=row["category"],
                sector=row["sector"],
                industry=row["industry"],
                reference_price=Decimal(row["reference_price"]),
            )
            for row in csv.DictReader(fh)
        )
