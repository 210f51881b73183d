"""The WebSocket protocol of /ws/portfolio/<account_id> and /ws/stream: frames in, messages out.

Every frame either way is one JSON object with a ``type``. What a client may send:

==================  =========================  ================================================
type                fields                     on
==================  =========================  ================================================
``heartbeat``       (``timestamp``, ignored)   both: answered ``{"type": "heartbeat",
                                               "message": "pong", "server_time": <epoch s>}``
``pong``            —                          both: the answer to the server's ``ping``
``subscribe``       ``symbols``: [str]         /ws/stream
``unsubscribe``     ``symbols``: [str]         /ws/stream
``subscribe``       ``channels``: [str]        /ws/portfolio: ``"orders"``, ``"positions"``
``unsubscribe``     ``channels``: [str]        /ws/portfolio
``resume``          ``last_seq``: int >= 0     /ws/portfolio
==================  =========================  ================================================

``last_seq`` (in ``resume``, or ``?last_seq=N`` when connecting to /ws/portfolio) is a whole
number from 0 to :data:`MAX_SEQ`: a JSON integer in a frame, ASCII digits only in the query
(not ``²``, ``٣``, ``+5``, ``1e3``). Anything else is an ``invalid_message`` error with
``"field": "last_seq"``; in the query it also closes the socket (1008), since the client must
fix it before reconnecting. A ``resume`` that only a snapshot can answer (its number is too old
or one the account never had) costs a snapshot, which may read the broker: a socket gets
WS_MAX_RESUME_SNAPSHOTS of those a minute (:mod:`realtime.limits`); beyond that the resume is
answered ``{"type": "error", "code": "resume_limited", "retry_after": <seconds>}`` and counts
as a bad frame.

What the server sends: ``snapshot`` / ``update`` (``seq``, ``data``; see "Updates" below),
``orders`` / ``positions`` (``events``), ``price_update`` (seed 003's fields, amounts as
decimal strings per :mod:`portfolio.money`), ``system`` (``message`` and whatever it is
about), ``ping`` (``server_time``), the heartbeat answer above, and ``error`` (``code``,
``message``). Any ``close`` is preceded by an ``error`` saying why, because daphne 4.2 drops
close reasons.

**Updates.** A ``snapshot``'s ``data`` is the account's whole state (the REST summary's body
with ``holdings``). An ``update``'s ``data`` is either a whole state too (no ``partial``:
replace yours; sent when the calculator starts pushing the account, and whenever the set or
order of holdings changed, as after a fill) or, with ``"partial": true``, only what changed
since the update before it: ``account_id``, each top-level figure that changed
(``total_value``, ``today_return``, ``as_of``…), and ``holdings``: the holdings that changed
(a price, or only a weight), each whole, matched by ``symbol`` — a partial update never adds,
removes or reorders holdings. Apply updates in ``seq`` order onto the state of the update
before (:func:`apply`). The server never sends a partial update past one it did not send: a
socket whose process missed one gets the missing ones from the kept history (or a snapshot)
first, and a client that reconnects resumes (``last_seq``) the same way.

Close codes are below; a client reconnects (with backoff) after 1001, 1013, 4408 and 4503,
and must fix something first after 4401, 4403 and 1008. 4401 and 4403 also end an open
socket: the server re-checks every socket at each heartbeat (:mod:`realtime.auth`), so one
outlives a sign-out, a deactivated login or an unlinked account by one interval at most.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from marketdata import moments

#: Normal close (the client's own).
NORMAL = 1000
#: The server is going away (SIGTERM, a restart); reconnect.
GOING_AWAY = 1001
GOING_AWAY_MESSAGE = "The server is restarting; reconnect."
#: The client broke the protocol: too many bad frames (not JSON, unknown type, oversized,
#: flooding, resumes over the limit), or a malformed ``?last_seq=``.
POLICY_VIOLATION = 1008
#: A fault of ours (logged); reconnect later.
INTERNAL_ERROR = 1011
#: Over a connection limit, too many handshakes in progress (``server_busy``, with a
#: ``retry_after`` hint in seconds), or a dependency (Redis) unavailable: try again later.
TRY_AGAIN_LATER = 1013
#: Not signed in: no session from a trusted origin, and no valid ticket; on an open socket,
#: signed out (session or API token gone) or the login deactivated.
UNAUTHENTICATED = 4401
#: Signed in, but the account is not linked to this user (or the ticket is for another one);
#: on an open socket, the account was unlinked or moved to another user.
FORBIDDEN = 4403
#: No socket at this path.
NOT_FOUND = 4404
#: The client stayed silent past WS_HEARTBEAT_TIMEOUT.
HEARTBEAT_TIMEOUT = 4408
#: ENABLE_REALTIME_PORTFOLIO is false: use the REST API.
REALTIME_DISABLED = 4503

#: Optional channels of /ws/portfolio (trade events relayed by the calculator).
EVENT_CHANNELS = ("orders", "positions")

#: The largest update number a client may name: sequence numbers are Redis's 64-bit counters.
MAX_SEQ = 2**63 - 1


class ProtocolError(Exception):
    """A frame the server cannot act on; answered with an ``error`` message, never a traceback."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class Command:
    """A client message that passed validation."""

    type: str
    items: tuple[str, ...] = ()
    last_seq: int | None = None


def decode(text: str | None, data: bytes | None) -> dict[str, Any]:
    """One inbound frame as a JSON object with a string ``type``; ProtocolError otherwise."""
    if text is None:
        raise ProtocolError("binary_frame", "Send JSON text frames; binary frames are not read.")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("invalid_json", "The frame is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("invalid_message", 'Send a JSON object with a "type".')
    if not isinstance(message.get("type"), str):
        raise ProtocolError("invalid_message", 'The message has no "type" string.')
    return message


def _string_list(message: dict[str, Any], field: str) -> tuple[str, ...]:
    values = message.get(field)
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(value, str) and value.strip() for value in values)
    ):
        raise ProtocolError(
            "invalid_message",
            f'"{message["type"]}" needs "{field}": a non-empty list of strings.',
            field=field,
        )
    return tuple(dict.fromkeys(value.strip() for value in values))


def portfolio_command(message: dict[str, Any]) -> Command:
    """A /ws/portfolio client message, validated."""
    kind = message["type"]
    if kind in ("heartbeat", "pong"):
        return Command(kind)
    if kind == "resume":
        return Command(kind, last_seq=_last_seq(message.get("last_seq")))
    if kind in ("subscribe", "unsubscribe"):
        channels = _string_list(message, "channels")
        unknown = [c for c in channels if c not in EVENT_CHANNELS]
        if unknown:
            raise ProtocolError(
                "unknown_channel",
                f"Unknown channel(s): {', '.join(unknown)}. Channels: {', '.join(EVENT_CHANNELS)}.",
                channels=unknown,
            )
        return Command(kind, items=channels)
    raise _unknown(kind, ("heartbeat", "pong", "resume", "subscribe", "unsubscribe"))


def query_last_seq(text: str) -> int:
    """``?last_seq=`` of a connect: ASCII digits only (``str.isdigit`` alone would take
    ``²``), within :data:`MAX_SEQ`; ProtocolError otherwise."""
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_SEQ))
    return _last_seq(int(text) if digits else None)


def _last_seq(value: object) -> int:
    """The one rule for ``last_seq``: a whole number from 0 to MAX_SEQ."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise ProtocolError(
            "invalid_message",
            f'"last_seq" must be a whole number from 0 to {MAX_SEQ} (in ASCII digits).',
            field="last_seq",
        )
    return value


def stream_command(message: dict[str, Any]) -> Command:
    """A /ws/stream client message, validated (symbols still unchecked against the universe)."""
    kind = message["type"]
    if kind in ("heartbeat", "pong"):
        return Command(kind)
    if kind in ("subscribe", "unsubscribe"):
        return Command(kind, items=_string_list(message, "symbols"))
    raise _unknown(kind, ("heartbeat", "pong", "subscribe", "unsubscribe"))


def _unknown(kind: str, allowed: tuple[str, ...]) -> ProtocolError:
    return ProtocolError(
        "unknown_type",
        f"Unknown message type {kind[:40]!r}; send one of: {', '.join(allowed)}.",
        allowed=list(allowed),
    )


def timestamp(moment: datetime | None = None) -> str:
    """A moment as ISO 8601 UTC with milliseconds, ``2026-01-27T12:34:56.123Z`` (seed 003)."""
    return moments.iso_ms(moment or datetime.now(UTC))


def snapshot(seq: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "snapshot", "seq": seq, "data": data}


def update(seq: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "update", "seq": seq, "data": data}


def frame(kind: str, seq: int, data: str) -> str:
    """A ``snapshot`` or ``update`` around data already encoded (JSON text): the push encodes
    an update once, in the calculator, and every socket sends that text as it is."""
    return f'{{"type":"{kind}","seq":{seq},"data":{data}}}'


def changes(before: Mapping[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The update ``data`` that turns state ``before`` (what was pushed last; None: nothing)
    into ``after``: partial when the holdings are the same symbols in the same order, else
    ``after`` whole. Holdings are compared by identity first (an unmoved holding keeps its
    dict, see :mod:`portfolio.live_valuation`), then by value."""
    if before is None:
        return after
    old, new = before["holdings"], after["holdings"]
    if len(old) != len(new) or any(
        a["symbol"] != b["symbol"] for a, b in zip(old, new, strict=True)
    ):
        return after
    data: dict[str, Any] = {"partial": True, "account_id": after["account_id"]}
    for field, value in after.items():
        if field != "holdings" and before.get(field) != value:
            data[field] = value
    moved = [b for a, b in zip(old, new, strict=True) if a is not b and a != b]
    if moved:
        data["holdings"] = moved
    return data


def apply(state: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` after the update ``data`` (see "Updates" above). ``state`` may itself be a
    partial update not yet sent: the result is then the one partial update doing both."""
    if not data.get("partial"):
        return dict(data)
    merged = {**state, **{k: v for k, v in data.items() if k not in ("partial", "holdings")}}
    if "holdings" in data:
        holdings = list(state.get("holdings", ()))
        where = {holding["symbol"]: i for i, holding in enumerate(holdings)}
        for holding in data["holdings"]:
            if holding["symbol"] in where:
                holdings[where[holding["symbol"]]] = holding
            else:
                holdings.append(holding)
        merged["holdings"] = holdings
    return merged


def merge_updates(older: str, newer: str) -> str:
    """Two unsent update frames as one (the newer's number): what a slow socket's outbox
    sends instead of both."""
    first, second = orjson.loads(older), orjson.loads(newer)
    return encode(update(second["seq"], apply(first["data"], second["data"])))


def events(channel: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Trade events of one optional channel (``orders`` or ``positions``)."""
    return {"type": channel, "events": items}


def error(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **details}


def system(message: str, **fields: Any) -> dict[str, Any]:
    return {"type": "system", "message": message, **fields, "timestamp": timestamp()}


def ping() -> dict[str, Any]:
    return {"type": "ping", "server_time": round(time.time(), 3)}


def heartbeat_reply() -> dict[str, Any]:
    """Seed 003's answer to a client heartbeat."""
    return {"type": "heartbeat", "message": "pong", "server_time": round(time.time(), 3)}


def encode(message: dict[str, Any] | str) -> str:
    """A message as frame text (one already encoded as it is)."""
    return message if isinstance(message, str) else orjson.dumps(message).decode()
