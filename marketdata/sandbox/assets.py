"""The sandbox's tradable universe: each instrument with its id, price tick and multiplier.

:func:`build_assets` picks ``symbols`` streamable instruments from the shipped universe
(:mod:`.universe`) — a fixed share of crypto pairs and ETFs of each kind, stocks for the rest,
made-up small caps past the shipped list — and adds a few option contracts. Ids derive from
the seed and the symbol, so the same seed lists the same assets with the same ids.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .universe import Instrument, load_universe

#: Option contracts the sandbox lists: (underlying, years to expiry, strike as a share of spot).
OPTION_SERIES = (("AAPL", 1, 1.0), ("MSFT", 1, 1.1), ("SPY", 1, 0.95))


@dataclass(frozen=True)
class Asset:
    """An instrument as the sandbox trades it: the universe row plus id, tick and multiplier."""

    id: uuid.UUID
    symbol: str
    name: str
    asset_class: str  # us_equity | us_option | crypto
    exchange: str
    category: str
    sector: str
    industry: str
    scale: int  # decimal places of a price
    tick_units: int  # minimum price increment, in units of 10**-scale
    multiplier: int  # 100 for an option contract, else 1
    fractionable: bool
    shortable: bool
    reference_price: Decimal
    underlying: str | None = None

    @property
    def is_crypto(self) -> bool:
        return self.asset_class == "crypto"

    def to_decimal(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.scale)

    def to_units(self, price: float) -> int:
        """Nearest tick to ``price``, never below one tick."""
        ticks = max(1, round(price * 10**self.scale / self.tick_units))
        return ticks * self.tick_units


def _price_scale(price: Decimal, asset_class: str) -> tuple[int, int]:
    """Decimal places and tick size (in those places) of a price, as US venues quote them."""
    if asset_class != "crypto":
        return (2, 1) if price >= 1 else (4, 1)
    if price >= 1000:
        return 2, 1
    if price >= 1:
        return 4, 1
    if price >= Decimal("0.01"):
        return 6, 1
    return 9, 1


def _asset_id(seed: int, symbol: str) -> uuid.UUID:
    return uuid.UUID(int=random.Random(f"{seed}:asset:{symbol}").getrandbits(128), version=4)


def _synthetic_stocks(count: int, seed: int, sectors: list[tuple[str, str]]) -> list[Instrument]:
    """Made-up small caps for universes larger than the shipped list; names say they are made up."""
    rng = random.Random(f"{seed}:synthetic")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out: list[Instrument] = []
    seen: set[str] = set()
    while len(out) < count:
        symbol = "".join(rng.choice(letters) for _ in range(rng.choice((3, 4))))
        if symbol in seen:
            continue
        seen.add(symbol)
        sector, industry = sectors[len(out) % len(sectors)]
        price = Decimal(str(round(rng.uniform(3, 180), 2)))
        out.append(
            Instrument(
                symbol=f"X{symbol}",
                name=f"{symbol.title()} Holdings (sandbox)",
                asset_class="us_equity",
                exchange=rng.choice(("NASDAQ", "NYSE")),
                category="stock",
                sector=sector,
                industry=industry,
                reference_price=price,
            )
        )
    return out


def build_assets(symbols: int, seed: int) -> list[Asset]:
    """The sandbox's tradable universe: ``symbols`` streamable instruments plus a few options.

    A fixed share of the slots go to crypto pairs and ETFs of each kind so that every account
    shape can be built at any size; stocks fill the rest, the most widely held first, and
    made-up small caps extend the list past what the shipped table holds.
    """
    universe = load_universe()
    by_category: dict[str, list[Instrument]] = {}
    for instrument in universe:
        by_category.setdefault(instrument.category, []).append(instrument)
    symbols = max(symbols, 40)
    quotas = {
        "crypto": min(len(by_category["crypto"]), max(4, symbols // 15)),
        "etf_broad": min(len(by_category["etf_broad"]), max(4, symbols // 25)),
        "etf_sector": min(len(by_category["etf_sector"]), max(4, symbols // 25)),
        "etf_bond": min(len(by_category["etf_bond"]), max(4, symbols // 25)),
    }
    chosen: list[Instrument] = []
    for category, quota in quotas.items():
        chosen.extend(by_category[category][:quota])
    stock_slots = symbols - len(chosen)
    stocks = _stocks_across_sectors(by_category["stock"], stock_slots)
    if stock_slots > len(stocks):
        sectors = sorted({(s.sector, s.industry) for s in by_category["stock"]})
        stocks += _synthetic_stocks(stock_slots - len(stocks), seed, sectors)
    chosen = stocks + chosen
    assets = [_asset(instrument, seed) for instrument in chosen]
    by_symbol = {a.symbol: a for a in assets}
    assets.extend(_options(by_symbol, seed))
    return assets


def _stocks_across_sectors(stocks: list[Instrument], slots: int) -> list[Instrument]:
    """The most widely held stocks, taken round-robin by sector so small universes stay broad."""
    queues: dict[str, list[Instrument]] = {}
    for stock in stocks:
        queues.setdefault(stock.sector, []).append(stock)
    out: list[Instrument] = []
    while len(out) < slots and any(queues.values()):
        for queue in queues.values():
            if queue and len(out) < slots:
                out.append(queue.pop(0))
    return out


def _asset(instrument: Instrument, seed: int) -> Asset:
    scale, tick = _price_scale(instrument.reference_price, instrument.asset_class)
    if instrument.asset_class != "crypto" and instrument.reference_price >= 1:
        scale, tick = 2, 1
    is_stock = instrument.category == "stock"
    return Asset(
        id=_asset_id(seed, instrument.symbol),
        symbol=instrument.symbol,
        name=instrument.name,
        asset_class=instrument.asset_class,
        exchange=instrument.exchange,
        category=instrument.category,
        sector=instrument.sector,
        industry=instrument.industry,
        scale=scale,
        tick_units=tick,
        multiplier=1,
        fractionable=instrument.asset_class == "crypto" or instrument.reference_price >= 1,
        shortable=is_stock or instrument.category.startswith("etf"),
        reference_price=instrument.reference_price,
    )


def _options(by_symbol: dict[str, Asset], seed: int) -> list[Asset]:
    """Call contracts on a few widely held underlyings, in OCC symbology."""
    out = []
    for underlying, years, moneyness in OPTION_SERIES:
        spot = by_symbol.get(underlying)
        if spot is None:
            continue
        expiry = date(date.today().year + years, 12, 18)
        strike = (spot.reference_price * Decimal(str(moneyness))).quantize(Decimal("5"))
        symbol = f"{underlying}{expiry:%y%m%d}C{int(strike * 1000):08d}"
        premium = max(
            Decimal("0.50"), (spot.reference_price * Decimal("0.08")).quantize(Decimal("0.01"))
        )
        out.append(
            Asset(
                id=_asset_id(seed, symbol),
                symbol=symbol,
                name=f"{underlying} {expiry:%b %d %Y} {strike} Call",
                asset_class="us_option",
                exchange=spot.exchange,
                category="option",
                sector=spot.sector,
                industry=spot.industry,
                scale=2,
                tick_units=1 if premium < 3 else 5,
                multiplier=100,
                fractionable=False,
                shortable=False,
                reference_price=premium,
                underlying=underlying,
            )
        )
    return out
