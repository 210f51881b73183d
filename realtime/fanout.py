"""The push: numbered account updates to every socket watching the account, with a short replay.

Each account has one Channels group, :func:`group_name`. Its consumers receive

* ``{"type": "portfolio.update", "seq": int, "payload": dict}`` — the account's whole state
  (``portfolio.presenters.valuation_json``), numbered by a per-account sequence from Redis
  ``INCR`` so every daphne process sees one order;
* ``{"type": "portfolio.orders" | "portfolio.positions", "events": [dict, ...]}`` — the
  broker's trade events for the account, batched (:mod:`realtime.trade_events`). Every socket in the
  group receives them; a consumer forwards them only if its client subscribed to that channel.

Redis keys, per account: ``clera:seq:<id>`` (the counter) and ``clera:updates:<id>``, a list of
the last UPDATE_HISTORY_LENGTH updates as ``"<seq> <payload JSON>"``, oldest first. Numbering
and recording are one Lua script (for a whole batch of accounts), so the list's order is the
sequence's. Both keys live UPDATE_HISTORY_SECONDS after the last update.

Numbers only grow, even across a Redis that lost its data or a counter that expired: a new
counter starts at the current time in milliseconds, not at 0. An account's numbers grow by
one per update, at most one a second (MIN_UPDATE_INTERVAL), far slower than the clock, so
every number after a restart is above every number before it, and a client that drops numbers
it has already seen (the page does) never mistakes a new update for an old one.

A reconnecting client that saw ``seq`` gets
:func:`updates_since` — the updates it missed, or None when they are no longer all kept (or
``seq`` is from before Redis lost its data), and then the consumer sends a fresh snapshot.
Since every update carries the whole state, the newest one alone is already enough to be right.

Sends are batched: :func:`publish_many` numbers any number of updates in one pipelined round
trip, then hands them to the channel layer at once (``group_send_many`` where the layer has it,
see :mod:`realtime.layers`; else gathered ``group_send`` calls).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from .redis_loop import loop_client

SEQ_PREFIX = "clera:seq:"
UPDATES_PREFIX = "clera:updates:"
GROUP_PREFIX = "portfolio."
UPDATE = "portfolio.update"
EVENT_TYPES = {"orders": "portfolio.orders", "positions": "portfolio.positions"}
#: Channels group names: ASCII letters, digits, hyphens, periods, underscores, under 100 chars.
_GROUP_SAFE = re.compile(r"[A-Za-z0-9._-]{1,80}")
#: Gathered ``group_send`` calls in flight at once on a layer without ``group_send_many``:
#: channels-redis's connection pool size (each call in flight holds a connection).
_GATHER_CHUNK = 100

# Number updates and keep each in its account's capped list, for any number of accounts.
# KEYS: counter and list of each account in turn. ARGV: list length, TTL seconds, the first
# number of a new counter (now, in ms), then each account's payload JSON. Returns the numbers.
_APPEND = """
local length, ttl, start = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local numbers = {}
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], start, 'NX')
  local seq = redis.call('INCR', KEYS[i])
  redis.call('RPUSH', KEYS[i + 1], seq .. ' ' .. ARGV[3 + (i + 1) / 2])
  redis.call('LTRIM', KEYS[i + 1], -length, -1)
  redis.call('EXPIRE', KEYS[i], ttl)
  redis.call('EXPIRE', KEYS[i + 1], ttl)
  numbers[#numbers + 1] = seq
end
return numbers
"""
#: Accounts numbered per script call: bounds how long one call holds Redis (~5 us each).
_APPEND_CHUNK = 500


def group_name(account_id: str) -> str:
    """The account's Channels group; ids that are not group-safe are hashed."""
    if _GROUP_SAFE.fullmatch(account_id):
        return GROUP_PREFIX + account_id
    return GROUP_PREFIX + "h" + hashlib.sha256(account_id.encode()).hexdigest()[:40]


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


async def send_messages(messages: Iterable[tuple[str, dict]]) -> None:
    """``group_send`` each ``(group, message)``, batched where the layer allows it."""
    messages = list(messages)
    if not messages:
        return
    layer = get_channel_layer()
    many = getattr(layer, "group_send_many", None)
    if many is not None:
        await many(messages)
        return
    for start in range(0, len(messages), _GATHER_CHUNK):
        chunk = messages[start : start + _GATHER_CHUNK]
        await asyncio.gather(*(layer.group_send(group, message) for group, message in chunk))


async def number_updates(updates: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Give each account's update its next sequence number and record it for replay (one
    pipelined round trip; one script call per _APPEND_CHUNK accounts)."""
    if not updates:
        return {}
    client = loop_client()
    append = client.register_script(_APPEND)
    head = [settings.UPDATE_HISTORY_LENGTH, settings.UPDATE_HISTORY_SECONDS, _first_number()]
    accounts = list(updates)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(accounts), _APPEND_CHUNK):
        chunk = accounts[start : start + _APPEND_CHUNK]
        keys = [key for a in chunk for key in (SEQ_PREFIX + a, UPDATES_PREFIX + a)]
        await append(keys=keys, args=head + [_dumps(updates[a]) for a in chunk], client=pipe)
    numbers = [int(seq) for chunk in await pipe.execute() for seq in chunk]
    return dict(zip(accounts, numbers, strict=True))


async def publish_many(updates: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Number, record and push one update per account; returns each account's number."""
    numbers = await number_updates(updates)
    await send_messages(
        (
            group_name(account_id),
            {"type": UPDATE, "seq": numbers[account_id], "payload": dict(payload)},
        )
        for account_id, payload in updates.items()
    )
    return numbers


async def publish(account_id: str, payload: Mapping[str, Any]) -> int:
    """Number, record and push one update of the account; returns its sequence number."""
    return (await publish_many({account_id: payload}))[account_id]


async def push_events(batches: Mapping[tuple[str, str], list[dict]]) -> None:
    """Push batched trade events: ``{(account_id, "orders" | "positions"): [event, ...]}``."""
    await send_messages(
        (group_name(account_id), {"type": EVENT_TYPES[kind], "events": events})
        for (account_id, kind), events in batches.items()
        if events
    )


def _first_number() -> int:
    """Where a new counter starts: now, in milliseconds (see the module docstring)."""
    return time.time_ns() // 1_000_000


async def current_seq(account_id: str) -> int:
    """The number of the account's latest update. Before the first one the counter is started
    here, so a snapshot's number is one :func:`updates_since` can resume from."""
    pipe = loop_client().pipeline(transaction=False)
    key = SEQ_PREFIX + account_id
    pipe.set(key, _first_number(), nx=True, ex=settings.UPDATE_HISTORY_SECONDS)
    pipe.get(key)
    _, raw = await pipe.execute()
    return int(raw)


def _parse_entry(raw: bytes) -> tuple[int, dict]:
    seq, _, payload = raw.partition(b" ")
    return int(seq), json.loads(payload)


async def updates_since(account_id: str, seq: int) -> list[tuple[int, dict]] | None:
    """The account's updates numbered after ``seq``, oldest first ([] if none is newer); None
    when some of them are no longer kept or ``seq`` is not one this account has had."""
    pipe = loop_client().pipeline(transaction=False)
    pipe.get(SEQ_PREFIX + account_id)
    pipe.lrange(UPDATES_PREFIX + account_id, 0, -1)
    current, entries = await pipe.execute()
    if current is None or seq < 0 or seq > int(current):
        return None
    if seq == int(current):
        return []
    kept = [_parse_entry(raw) for raw in entries]
    if not kept or kept[0][0] > seq + 1:
        return None
    return [(number, payload) for number, payload in kept if number > seq]
