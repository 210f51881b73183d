"""Which accounts have a live WebSocket, across every daphne process.

The calculator pushes only to accounts somebody is watching; this module is how it knows.

Redis layout (scores are expiry moments, Unix seconds):

``clera:presence:<account_id>``
    sorted set of that account's connection ids, each scored by its expiry. The truth.
``clera:presence``
    sorted set of account ids, each scored by the latest expiry among its connections. An
    index: ``live()`` asks it for many accounts in one ``ZMSCORE``, and ``live_accounts()``
    lists every watched account in one ``ZRANGEBYSCORE`` — neither touches the per-account
    sets, and neither scans keys.

``clera:presence-process:<process id>``
    a daphne process's mark, written with its sockets' presence on every heartbeat (TTL
    PRESENCE_TTL). Its absence tells the process that Redis lost what it had written (a
    restart, even an empty one): it writes its sockets' presence again at once, rather than at
    its next heartbeat (:mod:`realtime.hub`).

A socket calls :func:`join` when it opens, :func:`refresh` on every server heartbeat and
:func:`leave` when it closes. Each entry expires PRESENCE_TTL seconds after its last join or
refresh (a little over two heartbeat intervals), so the sockets of a process that crashed
without leaving vanish on their own. Every write is one Lua script, so the index never
disagrees with the per-account sets. Functions come in pairs — sync for views, management
commands and tests, ``a``-prefixed async for consumers and the calculator — over the same
scripts and arguments.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
import redis.asyncio
from django.conf import settings

from marketdata.store import redis_client

from .redis_loop import loop_client

PRESENCE_PREFIX = "clera:presence:"
PRESENCE_INDEX = "clera:presence"
PROCESS_PREFIX = "clera:presence-process:"

# Add or refresh connections; drop their accounts' expired connections and expired accounts
# from the index. KEYS: the index, then each connection's account set. ARGV: expiry, now, key
# TTL in ms, then each connection's id and account id.
_JOIN = """
local expiry, now, ttl = ARGV[1], ARGV[2], ARGV[3]
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], expiry, ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('PEXPIRE', KEYS[i], ttl)
  redis.call('ZADD', KEYS[1], 'GT', expiry, ARGV[2 * i + 1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return 1
"""

# Remove connections; the index keeps the latest expiry of what each account has left, or
# forgets the account. KEYS: the index, then each connection's account set. ARGV: now, then
# each connection's id and account id.
_LEAVE = """
local now = ARGV[1]
for i = 2, #KEYS do
  local account = ARGV[2 * i - 1]
  redis.call('ZREM', KEYS[i], ARGV[2 * i - 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local top = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], account)
  else
    redis.call('ZADD', KEYS[1], top[2], account)
  end
end
return 1
"""

#: ``(account id, connection id)``: one socket on one account.
Connection = tuple[str, str]


def presence_key(account_id: str) -> str:
    return PRESENCE_PREFIX + account_id


def mark_process(process_id: str, client: redis.asyncio.client.Pipeline) -> None:
    """Queue the process's mark (see the module docstring) on a pipeline."""
    client.set(PROCESS_PREFIX + process_id, 1, ex=max(1, int(settings.PRESENCE_TTL)))


def unmark_process(process_id: str, client: redis.asyncio.client.Pipeline) -> None:
    client.delete(PROCESS_PREFIX + process_id)


async def process_marked(process_id: str, client: redis.asyncio.Redis | None = None) -> bool:
    """Whether Redis still has the process's mark (one ``EXISTS``)."""
    return bool(await (client or loop_client()).exists(PROCESS_PREFIX + process_id))


def _join_call(connections: list[Connection]) -> tuple[list[str], list[object]]:
    now = time.time()
    ttl = settings.PRESENCE_TTL
    keys: list[str] = [PRESENCE_INDEX]
    args: list[object] = [now + ttl, now, int(ttl * 1000) + 1000]
    for account_id, connection_id in connections:
        keys.append(presence_key(account_id))
        args += (connection_id, account_id)
    return keys, args


def _leave_call(connections: list[Connection]) -> tuple[list[str], list[object]]:
    keys: list[str] = [PRESENCE_INDEX]
    args: list[object] = [time.time()]
    for account_id, connection_id in connections:
        keys.append(presence_key(account_id))
        args += (connection_id, account_id)
    return keys, args


def _live_of(account_ids: list[str], scores: list[float | None]) -> set[str]:
    now = time.time()
    return {a for a, score in zip(account_ids, scores, strict=True) if score and score > now}


def _decoded(members: Iterable[bytes]) -> set[str]:
    return {member.decode() for member in members}


# --- sync -------------------------------------------------------------------------------------


def join(account_id: str, connection_id: str, client: redis.Redis | None = None) -> None:
    """Count ``connection_id`` as a live socket on the account for PRESENCE_TTL seconds."""
    keys, args = _join_call([(account_id, connection_id)])
    (client or redis_client()).eval(_JOIN, len(keys), *keys, *args)


def refresh(account_id: str, connection_id: str, client: redis.Redis | None = None) -> None:
    """Extend the connection's life by PRESENCE_TTL (every server heartbeat)."""
    join(account_id, connection_id, client)


def leave(account_id: str, connection_id: str, client: redis.Redis | None = None) -> None:
    """The socket closed: the account stays live only if another connection remains."""
    keys, args = _leave_call([(account_id, connection_id)])
    (client or redis_client()).eval(_LEAVE, len(keys), *keys, *args)


def live(account_ids: Iterable[str], client: redis.Redis | None = None) -> set[str]:
    """The subset of ``account_ids`` with at least one live socket (one round trip)."""
    account_ids = list(account_ids)
    if not account_ids:
        return set()
    return _live_of(account_ids, (client or redis_client()).zmscore(PRESENCE_INDEX, account_ids))


def live_accounts(client: redis.Redis | None = None) -> set[str]:
    """Every account with a live socket."""
    client = client or redis_client()
    return _decoded(client.zrangebyscore(PRESENCE_INDEX, f"({time.time()}", "+inf"))


# --- async ------------------------------------------------------------------------------------


async def ajoin(
    account_id: str, connection_id: str, client: redis.asyncio.Redis | None = None
) -> None:
    """:func:`join` for async code."""
    await arefresh_many([(account_id, connection_id)], client)


async def aleave(
    account_id: str, connection_id: str, client: redis.asyncio.Redis | None = None
) -> None:
    """:func:`leave` for async code."""
    await aleave_many([(account_id, connection_id)], client)


async def arefresh_many(
    connections: Iterable[Connection], client: redis.asyncio.Redis | None = None
) -> None:
    """:func:`refresh` every connection in one script call (a heartbeat over thousands of
    sockets: one command to build and parse, not one per socket)."""
    connections = list(connections)
    if connections:
        keys, args = _join_call(connections)
        await (client or loop_client()).eval(_JOIN, len(keys), *keys, *args)


async def aleave_many(
    connections: Iterable[Connection], client: redis.asyncio.Redis | None = None
) -> None:
    """:func:`leave` for every connection in one script call."""
    connections = list(connections)
    if connections:
        keys, args = _leave_call(connections)
        await (client or loop_client()).eval(_LEAVE, len(keys), *keys, *args)


async def alive(account_ids: Iterable[str], client: redis.asyncio.Redis | None = None) -> set[str]:
    """:func:`live` for async code."""
    account_ids = list(account_ids)
    if not account_ids:
        return set()
    scores = await (client or loop_client()).zmscore(PRESENCE_INDEX, account_ids)
    return _live_of(account_ids, scores)


async def alive_accounts(client: redis.asyncio.Redis | None = None) -> set[str]:
    """:func:`live_accounts` for async code."""
    client = client or loop_client()
    return _decoded(await client.zrangebyscore(PRESENCE_INDEX, f"({time.time()}", "+inf"))
