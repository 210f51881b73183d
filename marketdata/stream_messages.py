"""Alpaca's streamed trades and quotes as alpaca-py hands them over with ``raw_data=True``,
read the way the SDK's own ``Quote``/``Trade`` models read them.

A raw message is the msgpack-decoded dict with Alpaca's short keys — a quote
``{"T": "q", "S", "bp", "bs", "ap", "as", "t", ...}``, a trade ``{"T": "t", "S", "p", "s",
"t", ...}`` — with ``t`` a ``msgpack.Timestamp`` (seconds and nanoseconds). Crypto messages
carry the same keys for what the cache needs (no exchange, conditions or tape; ``tks`` on a
trade), so one reading serves both streams.

The models made every price and size a ``float`` (Alpaca sends sizes as integers, prices as
floats, a zero for a missing side) and the moment ``Timestamp.to_datetime()``: its seconds
and its nanoseconds cut to microseconds. :func:`read_quote` and :func:`read_trade` take
exactly that, and :func:`quote_row` and :func:`trade_row` write it through the price cache's
own field rules and :func:`moments.stored_epoch` (:func:`moments.stored` without the
``datetime``), so the cache holds what the model path wrote, byte for byte. The readers run in
the stream handlers, on every message, so they only check and pick; the formatting waits for
the flush, once per symbol. A message the models refused (a field missing, a number that is
no number, a moment no ``datetime`` holds) reads as None. The models' checks of fields the
cache never reads (exchanges, conditions, tape, trade id) are not repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from msgpack import Timestamp

from . import moments
from .price_cache import quote_fields, trade_fields

#: Whole seconds of the moments a ``datetime`` holds in every time zone (a day's margin at
#: either end of years 1–9999, so the New York day of a trade can always be taken).
_SECONDS = range(-62_135_510_400, 253_402_214_400)

#: What a field that is missing or no number raises on reading (``float()`` refuses what the
#: models' float fields refused: None, lists, text that is no number, ints beyond a float).
_UNREADABLE = (KeyError, TypeError, ValueError, OverflowError)

#: A quote as the handlers keep it: bid, bid size, ask, ask size, moment.
StreamQuote = tuple[float, float, float, float, Timestamp]
#: A trade as the handlers keep it: price, size, moment.
StreamTrade = tuple[float, float, Timestamp]


def _moment(message: Mapping[str, Any]) -> Timestamp:
    stamp = message["t"]
    if stamp.__class__ is not Timestamp or stamp.seconds not in _SECONDS:
        raise ValueError("t is no msgpack Timestamp of years 1-9999")
    return stamp


def read_quote(message: Mapping[str, Any]) -> StreamQuote | None:
    """A raw quote's cached parts; None when the model refused it."""
    try:
        return (
            float(message["bp"]),
            float(message["bs"]),
            float(message["ap"]),
            float(message["as"]),
            _moment(message),
        )
    except _UNREADABLE:
        return None


def read_trade(message: Mapping[str, Any]) -> StreamTrade | None:
    """A raw trade's cached parts; None when the model refused it."""
    try:
        return float(message["p"]), float(message["s"]), _moment(message)
    except _UNREADABLE:
        return None


def traded_size(trade: StreamTrade) -> Decimal:
    """A trade's size as the day's volume adds it up (exactly the float's shortest repr)."""
    return Decimal(repr(trade[1]))


def quote_row(quote: StreamQuote) -> dict[str, str]:
    """The price-cache fields of a quote :func:`read_quote` took."""
    bid, bid_size, ask, ask_size, stamp = quote
    at = moments.stored_epoch(stamp.seconds, stamp.nanoseconds // 1000)
    return quote_fields(bid, bid_size, ask, ask_size, at)


def trade_row(trade: StreamTrade) -> tuple[dict[str, str], str]:
    """The price-cache fields of a trade :func:`read_trade` took, and its New York day (the
    day its size counts towards)."""
    price, size, stamp = trade
    at = moments.stored_epoch(stamp.seconds, stamp.nanoseconds // 1000)
    return trade_fields(price, size, at), moments.new_york_day_epoch(stamp.seconds)
