"""Risk and diversification scores and allocations of a portfolio: the definitions.

``docs/analytics.md`` says the same in plain words, with worked examples; the tests pin both.

Weights. Every holding counts by its absolute market value, its *exposure*: a short position
of −$1,000 is $1,000 of exposure, because it can move your balance as much as a long one.
Allocations are shares of exposure plus cash (when positive), so they add up to 100 %. Risk
weighs exposure against your own money, ``max(equity, exposure)``, so neither a short sale's
proceeds nor a margin loan pass for safe cash.

Look-through (what a holding really holds, by its fund category):

* a stock, an option (by its underlying company) or a crypto coin is one name in one sector
  (crypto's sector is Cryptocurrency);
* a broad-market fund (``etf_broad``) is 500 names spread evenly over the 11 GICS sectors;
* a sector fund (``etf_sector``) is 50 names in its one sector;
* a bond fund (``etf_bond``) is 500 bonds in one bucket, Fixed Income;
* an unclassified symbol is one name in the sector Unclassified: the cautious guess.

Funds of one kind are pooled (SPY and VOO hold the same 500 companies, two sector funds of
one sector the same 50), and so are a stock and the options on it.

Diversification (0–10), over the invested exposure only (cash does not diversify; it lowers
risk, which the risk score shows):

* effective names ``n = 1 / Σ wᵢ²`` over the looked-through names (wᵢ a name's share of the
  exposure): 1 for a single stock, 20 for twenty equal stocks, about 500 for an index fund;
* sector spread ``B = 1 − Σ sₖ²`` over sectors (sₖ a sector's share): 0 when everything is in
  one sector, 0.875 across eight equal sectors, 0.91 across all eleven;
* ``diversification = 10 × (0.6 × min(1, ln n / ln 30) + 0.4 × B)``.

  The names part is full from 30 equal names on, and a fund earns it only through what it
  holds, so stocks spread over many companies and sectors score as well as a fund (the seed's
  engine scored every all-stock portfolio at most 4.6). Twenty equal stocks across eight or
  more sectors score at least 7.5; nothing invested has no score (null, "Not invested").
* Bands: Poor below 4, Fair from 4, Good from 6.5, Excellent from 8.5.

Risk (0–10):

* each holding has a level by category — bond fund 1.5, broad-market fund 3.5, sector fund
  4.5, stock 4.5, unclassified 4.5, crypto 8, option 9 — and a short position at least 7
  (its loss has no ceiling); cash is 0;
* ``risk = Σ (exposureᵢ / max(equity, exposure)) × levelᵢ × (1 + (10 − diversification) / 15)
  + 2 × min(1, (exposure − equity) / exposure when positive)``, capped at 10: the weighted
  level, raised by up to two thirds when the money sits in few names or sectors, plus up to
  two points for borrowed exposure (margin).

  So cash lowers risk, a single stock (7.5) is the riskiest portfolio of stocks, funds and
  cash, and crypto, options, shorts and margin raise it. Nothing invested is 0.
* Bands: Low below 2.5, Moderate from 2.5, High from 5, Very high from 7.5.

Scores are rounded half-even to one decimal; the label and sentence follow the rounded score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from . import money
from .classification import Classification, option_underlying

ZERO = Decimal(0)
ONE = Decimal(1)
TEN = Decimal(10)
TENTH = Decimal("0.1")

DEFINITIONS_URL = "/api/docs#analytics"
CASH = "Cash"
GICS_SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
#: How many names a fund counts as, by category.
LOOK_THROUGH = {"etf_broad": 500, "etf_sector": 50, "etf_bond": 500}
#: From this many effective names on, the names part of diversification is full.
FULL_NAMES = 30
NAMES_PART = Decimal("0.6")
SECTORS_PART = Decimal("0.4")
#: Risk level of a holding by category; cash is 0.
RISK_LEVEL = {
    "etf_bond": Decimal("1.5"),
    "etf_broad": Decimal("3.5"),
    "etf_sector": Decimal("4.5"),
    "stock": Decimal("4.5"),
    "unclassified": Decimal("4.5"),
    "crypto": Decimal(8),
    "option": Decimal(9),
}
SHORT_LEVEL = Decimal(7)
#: Concentration raises risk by up to (10 - 0) / 15 = two thirds.
CONCENTRATION_DIVISOR = Decimal(15)
MARGIN_POINTS = Decimal(2)
#: Friendly asset class by category; unclassified holdings fall back to Alpaca's asset class.
ASSET_CLASS_NAMES = {
    "stock": "Stocks",
    "etf_broad": "Stock funds",
    "etf_sector": "Stock funds",
    "etf_bond": "Bond funds",
    "crypto": "Crypto",
    "option": "Options",
}
ALPACA_CLASS_NAMES = {"us_equity": "Stocks", "crypto": "Crypto", "us_option": "Options"}
OTHER = "Other"

#: (lowest rounded score, label, sentence), highest band first.
RISK_BANDS = (
    (
        Decimal("7.5"),
        "Very high",
        "Very high risk: your money rides on one or two bets, or on crypto, options, shorts or "
        "borrowed money, so it could lose a big part of its value fast. Adding broad index "
        "funds, bonds or cash would bring this down.",
    ),
    (
        Decimal(5),
        "High",
        "High risk: a few companies or a single sector drive your balance, so expect big swings "
        "up and down. Spreading out across more companies and sectors, or keeping some bonds or "
        "cash, would bring this down.",
    ),
    (
        Decimal("2.5"),
        "Moderate",
        "Moderate risk: your portfolio will rise and fall with the stock market, much like an "
        "index fund does. More bonds or cash would lower this; single stocks or crypto would "
        "raise it.",
    ),
    (
        ZERO,
        "Low",
        "Low risk: most of your money is in cash or bonds, so a bad month in the market would "
        "barely dent it, but it also won't grow much. Moving more into stocks would raise this.",
    ),
)
DIVERSIFICATION_BANDS = (
    (
        Decimal("8.5"),
        "Excellent",
        "Excellent diversification: your money is spread over hundreds of companies or across "
        "almost every sector, like a broad index fund, so no single company can sink you.",
    ),
    (
        Decimal("6.5"),
        "Good",
        "Good diversification: your money is spread over many companies and several sectors. "
        "Evening out your biggest sector, or adding a broad index fund, would take it higher.",
    ),
    (
        Decimal(4),
        "Fair",
        "Fair diversification: you own a few things, but they are bunched in a handful of "
        "companies or sectors. Adding companies from sectors you don't own yet, or a broad "
        "index fund, would raise this.",
    ),
    (
        ZERO,
        "Poor",
        "Poor diversification: your money depends on very few companies or one corner of the "
        "market, so one piece of bad news could hurt a lot. Owning more companies in different "
        "sectors, or a broad index fund, would raise this.",
    ),
)
CASH_ONLY_RISK = (
    "No risk from the market: all your money is in cash, so market swings can't shrink it, "
    "but it won't grow with the market either. Investing is what adds risk."
)
EMPTY_RISK = "Nothing at risk yet: your account holds no money and no investments."
NOT_INVESTED = (
    "Not invested",
    "You don't own any investments yet, so there is nothing to diversify. A broad index fund "
    "is the simplest way to start out diversified.",
)


@dataclass(frozen=True)
class AnalyzedHolding:
    symbol: str
    asset_class: str
    market_value: Decimal
    classification: Classification


@dataclass(frozen=True)
class Score:
    """A score rounded to one decimal (None: no such figure), its band's label and sentence."""

    value: Decimal | None
    exact: Decimal | None
    label: str
    explanation: str


@dataclass(frozen=True)
class Slice:
    name: str
    value: Decimal
    percent: Decimal | None


@dataclass(frozen=True)
class Analytics:
    risk: Score
    diversification: Score
    by_asset_class: tuple[Slice, ...]
    by_sector: tuple[Slice, ...]
    by_industry: tuple[Slice, ...]


def analyze(holdings: Sequence[AnalyzedHolding], cash: Decimal) -> Analytics:
    """Scores and allocations of holdings plus cash; see the module docstring for each rule."""
    exposed = [(h, abs(h.market_value)) for h in holdings if h.market_value != 0]
    invested = sum((exposure for _, exposure in exposed), ZERO)
    whole = invested + max(cash, ZERO)
    spread = _diversification(exposed, invested)
    diversification = (
        Score(None, None, *NOT_INVESTED)
        if spread is None
        else _banded(spread, DIVERSIFICATION_BANDS)
    )
    if invested == 0:
        sentence = CASH_ONLY_RISK if cash > 0 else EMPTY_RISK
        risk = Score(ZERO.quantize(TENTH), ZERO, "Low", sentence)
    else:
        equity = cash + sum((h.market_value for h in holdings), ZERO)
        risk = _banded(_risk(exposed, invested, equity, spread), RISK_BANDS)

    def slices(name_of: Callable[[AnalyzedHolding], str]) -> tuple[Slice, ...]:
        return _allocation(((name_of(h), e) for h, e in exposed), cash, whole)

    return Analytics(
        risk=risk,
        diversification=diversification,
        by_asset_class=slices(_asset_class),
        by_sector=slices(lambda h: h.classification.sector),
        by_industry=slices(lambda h: h.classification.industry),
    )


def analytics_json(analytics: Analytics) -> dict:
    """The wire form: scores as one-decimal strings (diversification null when nothing is
    invested), allocation values as money strings and percents per ``portfolio.money``."""
    return {
        "risk": _score_json(analytics.risk),
        "diversification": _score_json(analytics.diversification),
        "allocation": {
            "by_asset_class": [_slice_json(s) for s in analytics.by_asset_class],
            "by_sector": [_slice_json(s) for s in analytics.by_sector],
            "by_industry": [_slice_json(s) for s in analytics.by_industry],
        },
        "definitions_url": DEFINITIONS_URL,
    }


def _diversification(
    exposed: Sequence[tuple[AnalyzedHolding, Decimal]], invested: Decimal
) -> Decimal | None:
    """The exact 0–10 diversification of the invested exposure; None when nothing is invested."""
    if invested == 0:
        return None
    names: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    sectors: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for holding, exposure in exposed:
        weight = exposure / invested
        category = holding.classification.category
        if category in LOOK_THROUGH:
            pool = holding.classification.sector if category == "etf_sector" else ""
            names[(category, pool)] += weight
        else:
            names[("name", _issuer(holding))] += weight
        if category == "etf_broad":
            for sector in GICS_SECTORS:
                sectors[sector] += weight / len(GICS_SECTORS)
        else:
            sectors[holding.classification.sector] += weight
    concentration = sum(
        (weight * weight / LOOK_THROUGH.get(kind, 1) for (kind, _), weight in names.items()),
        ZERO,
    )
    effective_names = ONE / concentration
    # Clamped: a sum of shares may round a hair past 1, and -0.0 is no score.
    names_part = min(ONE, max(ZERO, effective_names.ln() / Decimal(FULL_NAMES).ln()))
    sectors_part = max(ZERO, ONE - sum((share * share for share in sectors.values()), ZERO))
    return TEN * (NAMES_PART * names_part + SECTORS_PART * sectors_part)


def _issuer(holding: AnalyzedHolding) -> str:
    """The company or coin behind a single-name holding: options pool with their underlying."""
    symbol = holding.symbol.strip().upper()
    if holding.classification.category == "option":
        return option_underlying(symbol) or symbol
    return symbol.replace("/", "")


def _risk(
    exposed: Sequence[tuple[AnalyzedHolding, Decimal]],
    invested: Decimal,
    equity: Decimal,
    diversification: Decimal,
) -> Decimal:
    """The exact 0–10 risk of a portfolio with something invested."""
    own = max(equity, invested)
    level = sum((exposure * _level(holding) for holding, exposure in exposed), ZERO) / own
    concentration = ONE + (TEN - diversification) / CONCENTRATION_DIVISOR
    leverage = MARGIN_POINTS * min(ONE, max(invested - equity, ZERO) / invested)
    return min(TEN, level * concentration + leverage)


def _level(holding: AnalyzedHolding) -> Decimal:
    level = RISK_LEVEL.get(holding.classification.category, RISK_LEVEL["unclassified"])
    return max(level, SHORT_LEVEL) if holding.market_value < 0 else level


def _banded(exact: Decimal, bands: tuple[tuple[Decimal, str, str], ...]) -> Score:
    rounded = exact.quantize(TENTH, ROUND_HALF_EVEN)
    _, label, sentence = next(band for band in bands if rounded >= band[0])
    return Score(rounded, exact, label, sentence)


def _asset_class(holding: AnalyzedHolding) -> str:
    category = holding.classification.category
    if category in ASSET_CLASS_NAMES:
        return ASSET_CLASS_NAMES[category]
    return ALPACA_CLASS_NAMES.get(holding.asset_class, OTHER)


def _allocation(
    named: Iterable[tuple[str, Decimal]], cash: Decimal, whole: Decimal
) -> tuple[Slice, ...]:
    """Slices by name, cash its own slice, largest first; percents of exposure plus cash."""
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for name, exposure in named:
        totals[name] += exposure
    if cash > 0:
        totals[CASH] += cash
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Slice(name, value, money.ratio_percent(value, whole)) for name, value in ordered)


def _score_json(score: Score) -> dict:
    return {
        "score": None if score.value is None else format(score.value, "f"),
        "label": score.label,
        "explanation": score.explanation,
    }


def _slice_json(part: Slice) -> dict:
    return {
        "name": part.name,
        "value": money.money(part.value),
        "percent": money.percent(part.percent),
    }
