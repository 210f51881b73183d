"""Opaque page cursors: what a client passes back as ``cursor`` to get the next page.

A cursor is URL-safe base64 of a small JSON object; clients must treat it as opaque. A cursor
that does not decode raises ValueError, which the serializers turn into a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime

from portfolio.selectors import OrderCursor

#: Most order ids an order cursor may carry: Alpaca answers at most 500 orders.
_MAX_SEEN = 500
#: An activity id as Alpaca writes one: a 17-digit time, "::", a UUID.
_ACTIVITY_ID = re.compile(r"[0-9]{17}::[0-9a-fA-F-]{36}")


def _encode(payload: dict) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not a cursor") from None
    if not isinstance(payload, dict):
        raise ValueError("not a cursor")
    return payload


def encode_order_cursor(cursor: OrderCursor | None) -> str | None:
    if cursor is None:
        return None
    return _encode({"at": cursor.at.isoformat(), "seen": list(cursor.seen)})


def decode_order_cursor(cursor: str) -> OrderCursor:
    payload = _decode(cursor)
    at, seen = payload.get("at"), payload.get("seen")
    if not isinstance(at, str) or not isinstance(seen, list) or len(seen) > _MAX_SEEN:
        raise ValueError("not an order cursor")
    if not all(isinstance(item, str) for item in seen):
        raise ValueError("not an order cursor")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError("not an order cursor")
    return OrderCursor(moment, tuple(seen))


def encode_activity_cursor(token: str | None) -> str | None:
    return None if token is None else _encode({"after": token})


def decode_activity_cursor(cursor: str) -> str:
    token = _decode(cursor).get("after")
    if not isinstance(token, str) or not _ACTIVITY_ID.fullmatch(token):
        raise ValueError("not an activity cursor")
    return token


def encode_offset_cursor(offset: int | None) -> str | None:
    return None if offset is None else _encode({"offset": offset})


def decode_offset_cursor(cursor: str) -> int:
    offset = _decode(cursor).get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError("not a transfers cursor")
    return offset
