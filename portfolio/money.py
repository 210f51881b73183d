"""The one JSON representation of amounts, used by the REST API and the WebSocket push alike.

Every amount travels as a JSON **string** holding a plain decimal (no exponent, no thousands
separator), as Alpaca sends them, so no client parses money into a binary float by accident:

* money (values, cash, P/L, cost): US dollars rounded half-even to the cent — ``"1234.50"``;
* prices: as quoted, at least two places — ``"187.20"``, ``"0.000025"``;
* quantities: exact, without trailing zeros — ``"10"``, ``"0.5123"``;
* percentages: percent units rounded half-even to two places — ``"-1.25"`` means −1.25 %;
* ``null`` where a figure does not exist (today's return % of an account with no equity
  at the last close, say).

Amounts a client sends (a deposit) follow the same rule, strictly: :data:`AMOUNT_PATTERN`,
ASCII digits with optionally a point and one or two more — no sign, exponent, separator,
space or other script's digits, and no JSON number (it would be a binary float by the time
we saw it). The API's validation and its OpenAPI schema both use this one pattern.
"""

import re
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
#: An amount as a client writes one: ``250``, ``250.5``, ``250.00``. ``[0-9]``, not ``\d``:
#: Python's ``\d`` also matches ``٣`` (JSON Schema's is ASCII already).
AMOUNT_PATTERN = r"^[0-9]+(?:\.[0-9]{1,2})?$"
_AMOUNT = re.compile(AMOUNT_PATTERN)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def money(value: Decimal) -> str:
    return _plain(value.quantize(CENT, ROUND_HALF_EVEN))


def price(value: Decimal) -> str:
    if value == value.quantize(CENT):
        return _plain(value.quantize(CENT))
    return _plain(value.normalize())


def quantity(value: Decimal) -> str:
    normalized = value.normalize()
    return _plain(normalized if normalized != 0 else Decimal(0))


def percent(value: Decimal | None) -> str | None:
    """A percentage (already in percent units) rounded to two places."""
    return None if value is None else _plain(value.quantize(CENT, ROUND_HALF_EVEN))


def ratio_percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole``; None when ``whole`` is zero."""
    return None if whole == 0 else part / whole * HUNDRED


def parse_amount(text: object) -> Decimal | None:
    """A client's amount when it is plain decimal text (:data:`AMOUNT_PATTERN`), else None."""
    if isinstance(text, str) and _AMOUNT.fullmatch(text):
        return Decimal(text)
    return None
