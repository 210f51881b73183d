"""Sector, industry and fund category of a symbol, from a CSV table the project ships.

Alpaca's assets carry no sector or industry, so the classification is ours: the shipped
``portfolio/data/classification.csv`` covers the sandbox universe (the S&P 500 with GICS
sectors and industries, widely held ETFs, crypto pairs) plus the most widely held US stocks and
ETFs outside it. Columns: ``symbol,name,category,sector,industry``; ``category`` is one of
``stock``, ``etf_broad``, ``etf_sector``, ``etf_bond`` or ``crypto``.

The ``CLASSIFICATION_CSV`` setting lists the files to read, in order: a later file's row
replaces an earlier one for the same symbol, so an operator extends the table by listing the
shipped file and then their own, or replaces it by listing only their own. A malformed file is
an ``ImproperlyConfigured`` at first use naming the file and line. Tables are read once per
process and cached.

Lookups are case-insensitive. A crypto pair matches with or without its slash (Alpaca's
positions say ``BTCUSD``, its assets ``BTC/USD``) and a share class with ``.``, ``/`` or ``-``
(``BRK.B``). An OCC option symbol (``AAPL261218C00250000``) is category ``option`` with its
underlying's sector and industry. Anything else is ``Unclassified``: never guessed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SHIPPED_CSV = Path(__file__).resolve().parent / "data" / "classification.csv"
COLUMNS = ("symbol", "name", "category", "sector", "industry")
#: Categories a table row may carry; ``option`` and ``unclassified`` are derived, never listed.
TABLE_CATEGORIES = ("stock", "etf_broad", "etf_sector", "etf_bond", "crypto")
CATEGORIES = (*TABLE_CATEGORIES, "option", "unclassified")
UNCLASSIFIED = "Unclassified"
#: OCC option symbol: root, expiry YYMMDD, C or P, strike × 1000 in eight digits.
OCC_OPTION = re.compile(r"(?P<root>[A-Z][A-Z0-9.]{0,5})\d{6}[CP]\d{8}")
SHARE_CLASS_SEPARATORS = (".", "/", "-")


@dataclass(frozen=True)
class Classification:
    symbol: str
    sector: str
    industry: str
    category: str


def classify(symbol: str) -> Classification:
    """The classification of ``symbol``; ``Unclassified`` when the table does not know it."""
    key = symbol.strip().upper().replace(" ", "")
    table = _table(_configured_paths())
    found = _lookup(table, key)
    if found is not None:
        return Classification(symbol, found.sector, found.industry, found.category)
    underlying = option_underlying(key)
    if underlying is not None:
        found = _lookup(table, underlying)
        if found is not None:
            return Classification(symbol, found.sector, found.industry, "option")
        return Classification(symbol, UNCLASSIFIED, UNCLASSIFIED, "option")
    return Classification(symbol, UNCLASSIFIED, UNCLASSIFIED, "unclassified")


def option_underlying(symbol: str) -> str | None:
    """The underlying of an OCC option symbol (``AAPL261218C00250000`` → ``AAPL``), else None.

    An adjusted contract's root carries a digit (``AAPL1``); its underlying does not.
    """
    option = OCC_OPTION.fullmatch(symbol.strip().upper().replace(" ", ""))
    return None if option is None else option["root"].rstrip("0123456789")


@dataclass(frozen=True)
class _Row:
    category: str
    sector: str
    industry: str


def _lookup(table: dict[str, _Row], key: str) -> _Row | None:
    if key in table:
        return table[key]
    for separator in SHARE_CLASS_SEPARATORS:
        if separator in key:
            return table.get(key.replace(separator, "."))
    return None


def _configured_paths() -> tuple[Path, ...]:
    configured = settings.CLASSIFICATION_CSV
    entries = [configured] if isinstance(configured, str | Path) else list(configured)
    if not entries:
        raise ImproperlyConfigured("CLASSIFICATION_CSV names no file")
    return tuple(
        path if path.is_absolute() else Path(settings.BASE_DIR) / path
        for path in (Path(entry) for entry in entries)
    )


@cache
def _table(paths: tuple[Path, ...]) -> dict[str, _Row]:
    """Every configured file merged, later files winning; keys are upper-case symbols."""
    table: dict[str, _Row] = {}
    for path in paths:
        for symbol, row in _read(path):
            table[symbol] = row
            if row.category == "crypto" and "/" in symbol:
                table.setdefault(symbol.replace("/", ""), row)
    return table


def _read(path: Path) -> Iterable[tuple[str, _Row]]:
    """The rows of one file, validated; any fault names the file and line."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ImproperlyConfigured(f"CLASSIFICATION_CSV: cannot read {path}: {error}") from None
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != COLUMNS:
        raise ImproperlyConfigured(
            f"CLASSIFICATION_CSV {path}, line 1: the header must be {','.join(COLUMNS)}"
        )
    seen: dict[str, int] = {}
    parsed = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        where = f"CLASSIFICATION_CSV {path}, line {line}"
        if len(cells) != len(COLUMNS):
            raise ImproperlyConfigured(
                f"{where}: expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), got {len(cells)}"
            )
        symbol, _name, category, sector, industry = (cell.strip() for cell in cells)
        symbol = symbol.upper()
        if not symbol or not sector or not industry:
            raise ImproperlyConfigured(f"{where}: symbol, sector and industry are required")
        if category not in TABLE_CATEGORIES:
            raise ImproperlyConfigured(
                f"{where}: category {category!r} is not one of {', '.join(TABLE_CATEGORIES)}"
            )
        if symbol in seen:
            raise ImproperlyConfigured(f"{where}: {symbol} is already on line {seen[symbol]}")
        seen[symbol] = line
        parsed.append((symbol, _Row(category, sector, industry)))
    return parsed
