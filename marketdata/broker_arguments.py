"""The gateway's arguments checked and put in the form Alpaca takes, before anything is sent.

Each function returns the value ready for the wire or raises
:class:`~marketdata.errors.BrokerRejected` with a message that names the argument, so an
invalid call never reaches the broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from .errors import BrokerRejected

T = TypeVar("T")

# A symbol such as AAPL, BRK.B or BTC/USD: the SDK puts it in the URL path unescaped, so
# nothing that could become another path (.., ?, #, %, a second slash) gets through.
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*(/[A-Za-z0-9][A-Za-z0-9.\-]*)?")


def account_id(value: str | UUID) -> str:
    """An account id in canonical UUID form."""
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:
        raise BrokerRejected("account id must be a UUID") from None


def symbol(value: str) -> str:
    """A symbol that is safe to put in the URL path."""
    if not isinstance(value, str) or not _SYMBOL.fullmatch(value):
        raise BrokerRejected("not a valid symbol")
    return value


def asset_key(value: str | UUID) -> str:
    """An asset id in canonical form, or a symbol that is safe to put in the URL path."""
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        return symbol(value)


def wire_amount(name: str, value: Decimal | int | str, step: Decimal | None = None) -> str:
    """A positive amount as a plain decimal string, in whole ``step``s if given.

    Floats are refused and nothing is rounded: a wrong amount is the caller's to fix.
    """
    try:
        if isinstance(value, float | bool):
            raise TypeError(value)
        amount = Decimal(str(value)) if isinstance(value, int | str) else value
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise ValueError(value)
    except (TypeError, ValueError, ArithmeticError):
        raise BrokerRejected(f"{name} must be a positive Decimal") from None
    if step is not None and amount != amount.quantize(step):
        raise BrokerRejected(f"{name} must be a whole multiple of {step}")
    return format(amount, "f")


def choice(name: str, value: str, allowed: type[Enum]) -> str:
    """One of the SDK enum's values."""
    try:
        return allowed(value).value
    except ValueError:
        choices = ", ".join(member.value for member in allowed)
        raise BrokerRejected(f"{name} must be one of {choices}") from None


def sdk_request(model: Callable[..., T], **fields: Any) -> T:
    """An SDK request model from our arguments, those that are None left out."""
    try:
        return model(**{name: value for name, value in fields.items() if value is not None})
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'request'}: {error['msg']}"
            for error in invalid.errors()
        )
        raise BrokerRejected(f"invalid request: {problems}"[:300]) from None
    except ValueError as invalid:
        raise BrokerRejected(f"invalid request: {invalid}"[:300]) from None
