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
  at the last close, say);
* a figure that rounds to zero is ``"0.00"``, never ``"-0.00"``.

The same texts come from exact integers of a decimal unit (``*_from_units``: an amount ×
10**places), which the real-time calculator values in (:mod:`portfolio.live_valuation`):
rounded by the same rule, string for string.

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
    return _plain(_rounded(value, CENT))


def price(value: Decimal) -> str:
    if value == value.quantize(CENT):
        return _plain(value.quantize(CENT))
    return _plain(value.normalize())


def quantity(value: Decimal) -> str:
    normalized = value.normalize()
    return _plain(normalized if normalized != 0 else Decimal(0))


def percent(value: Decimal | None) -> str | None:
    """A percentage (already in percent units) rounded to two places."""
    return None if value is None else _plain(_rounded(value, CENT))


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


def to_units(value: Decimal, places: int) -> int:
    """``value`` × 10**places as an exact integer; ValueError when it has more places."""
    numerator, denominator = value.as_integer_ratio()
    units, rest = divmod(numerator * 10**places, denominator)
    if rest:
        raise ValueError(f"{value} has more than {places} decimal places")
    return units


#: 10**n for the unit conversions below (computed once: they run tens of thousands of times a
#: second in the calculator).
_TENS = tuple(10**n for n in range(40))


def _half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator > 0) rounded half-even to an integer."""
    quotient, twice = divmod(numerator, denominator)
    twice += twice
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


def _hundredths(count: int) -> str:
    """``count`` hundredths as ``"12.34"`` (``"-0.05"``, ``"0.00"``)."""
    if count < 0:
        digits = str(-count).zfill(3)
        return f"-{digits[:-2]}.{digits[-2:]}"
    digits = str(count).zfill(3)
    return f"{digits[:-2]}.{digits[-2:]}"


def money_from_units(amount: int, places: int) -> str:
    """:func:`money` of ``amount`` × 10**-places."""
    return _hundredths(_half_even(amount, _TENS[places - 2]))


def percent_from_units(part: int, whole: int) -> str | None:
    """:func:`percent` of :func:`ratio_percent`: ``part`` as a percentage of ``whole`` (any
    sign, same unit), from the exact ratio; None when ``whole`` is zero."""
    if whole == 0:
        return None
    if whole < 0:
        part, whole = -part, -whole
    return _hundredths(_half_even(part * 10_000, whole))


def _digits(units: int, places: int) -> str:
    whole, part = divmod(abs(units), _TENS[places])
    sign = "-" if units < 0 else ""
    if not part:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{part:0{places}d}".rstrip("0")


def price_from_units(units: int, places: int) -> str:
    """:func:`price` of ``units`` × 10**-places."""
    cent = _TENS[places - 2]
    return _hundredths(units // cent) if units % cent == 0 else _digits(units, places)


def quantity_from_units(units: int, places: int) -> str:
    """:func:`quantity` of ``units`` × 10**-places."""
    return _digits(units, places)


def parse_amount(text: object) -> Decimal | None:
    """A client's amount when it is plain decimal text (:data:`AMOUNT_PATTERN`), else None."""
    if isinstance(text, str) and _AMOUNT.fullmatch(text):
        return Decimal(text)
    return None
