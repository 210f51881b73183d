"""Input validation for the portfolio API: every parameter checked, every error naming what
is valid. Responses are not serializers: selectors build them with :mod:`portfolio.money`."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portfolio import money
from portfolio.api import pagination
from portfolio.history import NEW_YORK, PERIODS
from portfolio.insights import PERFORMANCE_PERIODS
from portfolio.selectors import ACTIVITIES_MAX, ACTIVITY_TYPES, ORDERS_MAX

#: A symbol as Alpaca writes one: AAPL, BRK.B, BTC/USD.
SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9.\-]{0,30}(?:/[A-Za-z0-9][A-Za-z0-9.\-]{0,30})?"
SYMBOL = re.compile(SYMBOL_PATTERN)
#: Most symbols one orders filter may name.
MAX_SYMBOLS = 50
SYMBOLS_PATTERN = rf"^{SYMBOL_PATTERN}(?:,{SYMBOL_PATTERN}){{0,{MAX_SYMBOLS - 1}}}$"
#: Printable ASCII without spaces, as the Idempotency-Key header must be.
IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]{1,255}"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def choice(values: tuple[str, ...], **kwargs) -> serializers.ChoiceField:
    """A choice whose error lists the valid values."""
    return serializers.ChoiceField(
        choices=values,
        error_messages={
            "invalid_choice": f'"{{input}}" is not valid; use one of: {", ".join(values)}.'
        },
        **kwargs,
    )


class WholeNumber(serializers.IntegerField):
    """Digits only: ``10``, not ``10.0`` or ``1e1``."""

    def to_internal_value(self, data: object) -> int:
        text = str(data)
        if not (text.isascii() and text.isdigit()):
            self.fail("invalid")
        return super().to_internal_value(data)


def bounded(low: int, high: int, default: int) -> serializers.IntegerField:
    """A whole number in [low, high] whose error says so."""
    message = f"must be a whole number from {low} to {high}."
    return WholeNumber(
        min_value=low,
        max_value=high,
        default=default,
        error_messages={"invalid": message, "min_value": message, "max_value": message},
    )


class CommaList(serializers.CharField):
    """A comma-separated list (``AAPL,MSFT``) as a list of stripped, non-empty items."""

    def to_internal_value(self, data: object) -> list[str]:
        text = super().to_internal_value(data)
        return [item.strip() for item in text.split(",") if item.strip()]


class Moment(serializers.Field):
    """An ISO 8601 date-time with a time zone, or a date (midnight in New York, the market's
    time zone)."""

    default_error_messages = {
        "invalid": "must be a date (2025-01-02) or a date-time with a time zone "
        "(2025-01-02T14:30:00Z).",
    }

    def to_internal_value(self, data: object) -> datetime:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            if len(data) == 10:
                return datetime.combine(date.fromisoformat(data), time(0), NEW_YORK)
            moment = datetime.fromisoformat(data)
        except ValueError:
            self.fail("invalid")
        if moment.tzinfo is None:
            self.fail("invalid")
        return moment

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class AccountQuery(serializers.Serializer):
    account_id = serializers.UUIDField(
        required=False, error_messages={"invalid": "must be an account id (a UUID)."}
    )


#: What a username or password may hold: anything but NUL, which no database stores.
NO_NUL = RegexValidator(r"^[^\x00]*$", "must not contain NUL characters.")


class TokenRequest(serializers.Serializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False, validators=[NO_NUL])
    password = serializers.CharField(max_length=4096, trim_whitespace=False, validators=[NO_NUL])


class Period(serializers.ChoiceField):
    """A chart period, in any case (``ytd`` is ``YTD``)."""

    def __init__(self, periods: tuple[str, ...] = PERIODS, **kwargs) -> None:
        valid = ", ".join(periods)
        messages = {"invalid_choice": f'"{{input}}" is not valid; use one of: {valid}.'}
        super().__init__(choices=periods, error_messages=messages, **kwargs)

    def to_internal_value(self, data: object) -> str:
        return super().to_internal_value(data.strip().upper() if isinstance(data, str) else data)


class Benchmark(serializers.CharField):
    """A symbol to compare with (``SPY``, ``BTC/USD``), in any case."""

    def to_internal_value(self, data: object) -> str:
        text = super().to_internal_value(data)
        if not SYMBOL.fullmatch(text):
            raise serializers.ValidationError(
                f"{text!r} is not a symbol (letters, digits, '.', '-', one '/')."
            )
        return text.upper()


class HistoryQuery(serializers.Serializer):
    period = Period(required=False)
    start = Moment(required=False)
    end = Moment(required=False)
    benchmark = Benchmark(required=False)

    def validate(self, attrs: dict) -> dict:
        has_range = "start" in attrs or "end" in attrs
        if has_range and "period" in attrs:
            raise serializers.ValidationError("give either period or start and end, not both.")
        if has_range and not ("start" in attrs and "end" in attrs):
            raise serializers.ValidationError("start and end go together: give both.")
        if not has_range:
            attrs.setdefault("period", "1M")
        return attrs


class PerformanceQuery(serializers.Serializer):
    period = Period(PERFORMANCE_PERIODS, default="1Y")
    benchmark = Benchmark(required=False)


class OrdersQuery(serializers.Serializer):
    status = choice(("open", "closed", "all"), default="all")
    side = choice(("buy", "sell"), required=False)
    symbols = CommaList(required=False)
    limit = bounded(1, ORDERS_MAX, 50)
    direction = choice(("desc", "asc"), default="desc")
    cursor = serializers.CharField(required=False)

    def validate_symbols(self, symbols: list[str]) -> list[str]:
        if len(symbols) > MAX_SYMBOLS:
            raise serializers.ValidationError(f"name at most {MAX_SYMBOLS} symbols.")
        bad = [symbol for symbol in symbols if not SYMBOL.fullmatch(symbol)]
        if bad:
            raise serializers.ValidationError(
                f"{bad[0]!r} is not a symbol (letters, digits, '.', '-', one '/')."
            )
        return [symbol.upper() for symbol in symbols]

    def validate_cursor(self, value: str) -> object:
        return _cursor(pagination.decode_order_cursor, value)


class ActivitiesQuery(serializers.Serializer):
    type = CommaList(required=False)
    page_size = bounded(1, ACTIVITIES_MAX, 50)
    direction = choice(("desc", "asc"), default="desc")
    cursor = serializers.CharField(required=False)

    def validate_type(self, types: list[str]) -> list[str]:
        unknown = [kind for kind in types if kind not in ACTIVITY_TYPES]
        if unknown:
            raise serializers.ValidationError(
                f'"{unknown[0]}" is not valid; use one or more of: {", ".join(ACTIVITY_TYPES)}.'
            )
        return types

    def validate_cursor(self, value: str) -> object:
        return _cursor(pagination.decode_activity_cursor, value)


class TransfersQuery(serializers.Serializer):
    limit = bounded(1, 100, 50)
    cursor = serializers.CharField(required=False)

    def validate_cursor(self, value: str) -> object:
        return _cursor(pagination.decode_offset_cursor, value)


#: Decimal text with a sign or more places: not an amount, told apart only for a clearer error.
_SIGNED_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@extend_schema_field(
    {
        "type": "string",
        "pattern": money.AMOUNT_PATTERN,
        "example": "250.00",
        "description": "Dollars as plain decimal text (ASCII digits, optionally a point and one "
        "or two more; no sign, exponent, separator or space), more than 0, at most "
        "FUNDS_MAX_AMOUNT (50000 unless configured). A JSON string, never a JSON number.",
    }
)
class Amount(serializers.Field):
    """A deposit amount: plain decimal text by :func:`portfolio.money.parse_amount`, the rule
    the schema above documents; each way to miss it named in its error."""

    default_error_messages = {
        "invalid": 'must be an amount in dollars as plain decimal text, e.g. "250.00" or '
        '"99.5": digits, optionally a point and one or two more (no sign, exponent, '
        "separator or space).",
        "number": 'must be an amount in dollars as a JSON string, e.g. "250.00", not a JSON '
        "number.",
        "cents": "must be in whole cents: at most 2 decimal places.",
        "positive": "must be more than 0.",
    }

    def to_internal_value(self, data: object) -> Decimal:
        amount = money.parse_amount(data)
        if amount is not None:
            return amount
        if isinstance(data, int | float) and not isinstance(data, bool):
            self.fail("number")
        if isinstance(data, str) and _SIGNED_DECIMAL.fullmatch(data):  # a number, not an amount
            self.fail("positive" if data.startswith("-") else "cents")
        self.fail("invalid")

    def to_representation(self, value: Decimal) -> str:
        return money.money(value)


class FundsRequest(serializers.Serializer):
    amount = Amount()

    def validate_amount(self, amount: Decimal) -> Decimal:
        if amount <= 0:
            raise serializers.ValidationError("must be more than 0.")
        limit = settings.FUNDS_MAX_AMOUNT
        if amount > limit:
            raise serializers.ValidationError(f"must be at most {limit:f} per deposit.")
        return amount.quantize(money.CENT)


def idempotency_key(value: str | None) -> str | None:
    """The header's key if well formed, else None."""
    return value if value is not None and IDEMPOTENCY_KEY.fullmatch(value) else None


def _cursor(decode, value: str) -> object:
    try:
        return decode(value)
    except ValueError:
        raise serializers.ValidationError(
            "is not a cursor this API gave out; pass next_cursor from the previous page as is."
        ) from None
