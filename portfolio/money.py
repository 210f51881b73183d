"""The one JSON representation of amounts, used by the REST API and the WebSocket push alike.

Every amount travels as a JSON **string** holding a plain decimal (no exponent, no thousands
separator), as Alpaca sends them, so no client parses money into a binary float by accident:

* money (values, cash, P/L, cost): US dollars rounded half-even to the cent — ``"1234.50"``;
* prices: as quoted, at least two places — ``"187.20"``, ``"0.000025"``;
* quantities: exact, without trailing zeros — ``"10"``, ``"0.5123"``;
* percentages: percent units rounded half-even to two places — ``"-1.25"`` means −1.25 %;
* ratios without a unit (correlation, beta, Sharpe, Sortino): rounded half-even to four
  places — ``"0.5312"``;
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
RATIO_PLACES = Decimal("0.0001")
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


def share_percent(share: Decimal | float | None) -> str | None:
    """A share or rate (``0.0125``) as a percentage string (``"1.25"``); None stays None, and
    so does a statistic that is not a finite number."""
    exact = exact_statistic(share)
    return None if exact is None else _plain(_rounded(exact * HUNDRED, CENT))


def ratio(value: Decimal | float | None) -> str | None:
    """A ratio without a unit, to four places; None (or not finite) is None."""
    exact = exact_statistic(value)
    return None if exact is None else _plain(_rounded(exact, RATIO_PLACES))


def _rounded(value: Decimal, places: Decimal) -> Decimal:
    """Half-even to ``places``; a statistic that rounds to zero is ``0``, never ``-0``."""
    rounded = value.quantize(places, ROUND_HALF_EVEN)
    return rounded.copy_abs() if rounded == 0 else rounded


def exact_statistic(value: Decimal | float | None) -> Decimal | None:
    """A statistic as an exact Decimal: a float (numpy's too) by its shortest repr, so a
    computed 0.1 stays 0.1; None for None, NaN and infinities."""
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return exact if exact.is_finite() else None


def ratio_percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole``; None when ``whole`` is zero."""
    return None if whole == 0 else part / whole * HUNDRED


def parse_amount(text: object) -> Decimal | None:
    """A client's amount when it is plain decimal text (:data:`AMOUNT_PATTERN`), else None."""
    if isinstance(text, str) and _AMOUNT.fullmatch(text):
        return Decimal(text)
    return None
