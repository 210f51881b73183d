"""The push: numbered account updates to every socket watching the account, with a short replay.

Each account has one Channels group, :func:`group_name`. Its consumers receive

* ``{"type": "portfolio.update", "seq": int, "data": str}`` — an update's ``data`` as JSON text,
  encoded once here and sent by every socket as it is (:func:`realtime.protocol.frame`): the
  account's whole state or, ``"partial": true``, what changed since the update numbered before
  it (:mod:`realtime.protocol`, "Updates"). Numbers come from a per-account Redis ``INCR``, so
  every daphne process sees one order;
* ``{"type": "portfolio.orders" | "portfolio.positions", "events": [dict, ...]}`` — the
  broker's trade events for the account, batched (:mod:`realtime.trade_events`). Every socket in the
  group receives them; a consumer forwards them only if its client subscribed to that channel.

Redis keys, per account: ``clera:seq:<id>`` (the counter), ``clera:updates:<id>``, a list of the
last UPDATE_HISTORY_LENGTH updates as ``"<seq> <data JSON>"``, oldest first, and
``clera:state:<id>``, ``"<seq> <state JSON>"``: the newest *whole* update. A new socket's
snapshot is that state with the partial updates kept after it applied (:func:`latest_state`),
so the partial updates that follow apply to exactly what they were computed from; the
calculator sends a whole update at least every UPDATE_HISTORY_LENGTH / 2 pushes, so those are
always kept. Numbering and recording are one Lua script (for a whole batch of accounts), so the
list's order is the sequence's. All three live UPDATE_HISTORY_SECONDS after the last update; the
calculator deletes the state of an account nobody watches any more (:func:`forget_states`),
since it stops following that account's book.

Numbers only grow, even across a Redis that lost its data or a counter that expired: a new
counter starts at the current time in milliseconds, not at 0. An account's numbers grow by
one per update, at most one a second (MIN_UPDATE_INTERVAL), far slower than the clock, so
every number after a restart is above every number before it, and a client that drops numbers
it has already seen (the page does) never mistakes a new update for an old one.

A reconnecting client that saw ``seq`` gets :func:`updates_since` — the updates it missed, to
apply in order, or None when they are no longer all kept (or ``seq`` is from before Redis lost
its data), and then the consumer sends a fresh snapshot.

Sends are batched: :func:`publish_many` numbers any number of updates in one pipelined round
trip, then hands them to the channel layer at once (``group_send_many`` where the layer has it,
see :mod:`realtime.layers`; else gathered ``group_send`` calls).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from channels.layers import get_channel_layer
from django.conf import settings

from . import protocol
from .redis_loop import loop_client

SEQ_PREFIX = "clera:seq:"
UPDATES_PREFIX = "clera:updates:"
STATE_PREFIX = "clera:state:"
GROUP_PREFIX = "portfolio."
UPDATE = "portfolio.update"
EVENT_TYPES = {"orders": "portfolio.orders", "positions": "portfolio.positions"}
#: Channels group names: ASCII letters, digits, hyphens, periods, underscores, under 100 chars.
_GROUP_SAFE = re.compile(r"[A-Za-z0-9._-]{1,80}")
#: Gathered ``group_send`` calls in flight at once on a layer without ``group_send_many``:
#: channels-redis's connection pool size (each call in flight holds a connection).
_GATHER_CHUNK = 100

# Number updates, keep each in its account's capped list and a whole one as the account's
# state, for any number of accounts. KEYS: counter, list and state of each account in turn.
# ARGV: list length, TTL seconds, the first number of a new counter (now, in ms), then each
# account's data JSON and "1" when it is a whole state ("" when partial). Returns the numbers.
_APPEND = """
local length, ttl, start = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local numbers = {}
for i = 1, #KEYS, 3 do
  local data, whole = ARGV[4 + (i - 1) / 3 * 2], ARGV[5 + (i - 1) / 3 * 2]
  redis.call('SET', KEYS[i], start, 'NX')
  local seq = redis.call('INCR', KEYS[i])
  redis.call('RPUSH', KEYS[i + 1], seq .. ' ' .. data)
  redis.call('LTRIM', KEYS[i + 1], -length, -1)
  if whole == '1' then
    redis.call('SET', KEYS[i + 2], seq .. ' ' .. data, 'EX', ttl)
  end
  redis.call('EXPIRE', KEYS[i], ttl)
  redis.call('EXPIRE', KEYS[i + 1], ttl)
  numbers[#numbers + 1] = seq
end
return numbers
"""
#: Accounts numbered per script call: bounds how long one call holds Redis (~5 us each).
_APPEND_CHUNK = 500


@functools.lru_cache(maxsize=100_000)
def group_name(account_id: str) -> str:
    """The account's Channels group; ids that are not group-safe are hashed. Remembered: the
    calculator names thousands of groups a second."""
    if _GROUP_SAFE.fullmatch(account_id):
        return GROUP_PREFIX + account_id
    return GROUP_PREFIX + "h" + hashlib.sha256(account_id.encode()).hexdigest()[:40]


def _dumps(data: Mapping[str, Any]) -> str:
    return orjson.dumps(data).decode()


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


async def number_updates(updates: Mapping[str, str], whole: Iterable[str] = ()) -> dict[str, int]:
    """Give each account's update (its ``data`` JSON) its next sequence number and record it for
    replay — and as the account's state when the account is in ``whole`` — in one pipelined
    round trip, one script call per _APPEND_CHUNK accounts."""
    if not updates:
        return {}
    whole = set(whole)
    client = loop_client()
    append = client.register_script(_APPEND)
    head = [settings.UPDATE_HISTORY_LENGTH, settings.UPDATE_HISTORY_SECONDS, _first_number()]
    accounts = list(updates)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(accounts), _APPEND_CHUNK):
        chunk = accounts[start : start + _APPEND_CHUNK]
        keys = [
            key for a in chunk for key in (SEQ_PREFIX + a, UPDATES_PREFIX + a, STATE_PREFIX + a)
        ]
        texts = [text for a in chunk for text in (updates[a], "1" if a in whole else "")]
        await append(keys=keys, args=head + texts, client=pipe)
    numbers = [int(seq) for chunk in await pipe.execute() for seq in chunk]
    return dict(zip(accounts, numbers, strict=True))


async def publish_many(updates: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Number, record and push one update per account (its ``data``: a whole state, or a
    partial one, ``"partial": true``); returns each account's number."""
    texts = {account_id: _dumps(data) for account_id, data in updates.items()}
    whole = [account_id for account_id, data in updates.items() if not data.get("partial")]
    numbers = await number_updates(texts, whole)
    await send_messages(
        (group_name(account_id), {"type": UPDATE, "seq": numbers[account_id], "data": text})
        for account_id, text in texts.items()
    )
    return numbers


async def publish(account_id: str, data: Mapping[str, Any]) -> int:
    """Number, record and push one update of the account; returns its number."""
    return (await publish_many({account_id: data}))[account_id]


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


async def latest_state(account_id: str) -> tuple[int, str] | None:
    """The account's newest update number and its whole state then (JSON text): the newest
    whole update with the partial ones kept after it applied; None when no whole update is
    kept or some update after it is not."""
    pipe = loop_client().pipeline(transaction=False)
    pipe.get(SEQ_PREFIX + account_id)
    pipe.get(STATE_PREFIX + account_id)
    pipe.lrange(UPDATES_PREFIX + account_id, 0, -1)
    current, state, entries = await pipe.execute()
    if current is None or state is None:
        return None
    seq, _, text = state.partition(b" ")
    base, newest = int(seq), int(current)
    if base == newest:
        return base, text.decode()
    after = [(number, raw) for number, _, raw in (e.partition(b" ") for e in entries)]
    after = [(int(number), raw) for number, raw in after if int(number) > base]
    if [number for number, _ in after] != list(range(base + 1, newest + 1)):
        return None
    whole = orjson.loads(text)
    for _number, raw in after:
        whole = protocol.apply(whole, orjson.loads(raw))
    return newest, _dumps(whole)


async def forget_states(account_ids: Iterable[str]) -> None:
    """Drop the kept states of accounts whose updates stop (nobody watches them): a later
    snapshot is valued afresh instead of from a state the book may since have moved past."""
    keys = [STATE_PREFIX + account_id for account_id in account_ids]
    if keys:
        await loop_client().delete(*keys)


async def updates_since(account_id: str, seq: int) -> list[tuple[int, str]] | None:
    """The account's updates numbered after ``seq`` (numbers and data JSON, as published),
    oldest first ([] if none is newer); None when some of them are no longer kept or ``seq``
    is not one this account has had. Only the numbers are parsed: a storm of resumes costs
    no JSON."""
    pipe = loop_client().pipeline(transaction=False)
    pipe.get(SEQ_PREFIX + account_id)
    pipe.lrange(UPDATES_PREFIX + account_id, 0, -1)
    current, entries = await pipe.execute()
    if current is None or seq < 0 or seq > int(current):
        return None
    if seq == int(current):
        return []
    kept = [(int(number), data) for number, _, data in (e.partition(b" ") for e in entries)]
    if not kept or kept[0][0] > seq + 1:
        return None
    return [(number, data.decode()) for number, data in kept if number > seq]
