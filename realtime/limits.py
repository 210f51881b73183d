"""Connection limits and inbound frame policing: what keeps one user or one client from taking
a daphne process (or all of them) down.

Connections — three caps, each a setting; one more socket is closed with 1013 and a reason:

* per user, across every process: WS_MAX_CONNECTIONS_PER_USER (default 5);
* per daphne process: WS_MAX_CONNECTIONS_PER_PROCESS (counted in memory by the hub);
* across all processes: WS_MAX_CONNECTIONS_TOTAL (0, the default, means no overall cap).

The cross-process counts are leases in Redis: ``clera:ws:user:<user_id>`` and ``clera:ws:all``
are sorted sets of connection ids scored by when their lease ends. A socket takes its leases
in one Lua script (expired ones are dropped first, so the check and the take are one atomic
step), renews them on every server heartbeat and gives them back when it closes; a process
that dies without closing loses its leases :data:`LEASE_SLACK` seconds after two missed
heartbeats, so a crash never locks a user out for long. ``clera:ws:all`` is only kept while an
overall cap is set.

Frames — :class:`FrameGuard`, one per socket: a frame over WS_MAX_MESSAGE_BYTES, or beyond
WS_MAX_MESSAGES_PER_SECOND, is not acted on. Every bad frame (those two, and frames that are
not JSON or have an unknown type) is a strike; the client hears about each (about flooding
once per second, so answering cannot amplify a flood), and WS_MAX_BAD_FRAMES strikes within a
minute close the socket with 1008.

Snapshots a ``resume`` forces (they may read the broker) come from a token bucket per socket,
also in the FrameGuard: WS_MAX_RESUME_SNAPSHOTS at once, refilled at that many a minute. A
resume beyond it is answered with when to retry, and is a strike.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from django.conf import settings

from .redis_loop import loop_client

USER_LEASES_PREFIX = "clera:ws:user:"
ALL_LEASES = "clera:ws:all"
#: Seconds a lease outlives two missed heartbeats.
LEASE_SLACK = 5.0
#: The window WS_MAX_BAD_FRAMES counts strikes in, seconds.
STRIKE_WINDOW = 60.0
#: Seconds in which WS_MAX_RESUME_SNAPSHOTS snapshots refill.
SNAPSHOT_REFILL = 60.0

# Take a connection's leases unless a cap is reached.
# KEYS: user set, all set. ARGV: connection id, now, lease end, per-user cap, overall cap
# (0 = none), key TTL seconds. Returns 'ok', 'user' or 'total'.
_ACQUIRE = """
local total_cap = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 'user' end
if total_cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
  if redis.call('ZCARD', KEYS[2]) >= total_cap then return 'total' end
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return 'ok'
"""


class LimitHit(Exception):
    """A connection cap is reached; ``kind`` is ``user``, ``process`` or ``total``."""

    MESSAGES = {
        "user": "You have {limit} live connections already, the most one user may have; "
        "close one (another tab?) and reconnect.",
        "process": "This server is at its connection limit ({limit}); try again shortly.",
        "total": "The service is at its connection limit ({limit}); try again shortly.",
    }

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        super().__init__(self.MESSAGES[kind].format(limit=limit))


def user_key(user_id: int | str) -> str:
    return f"{USER_LEASES_PREFIX}{user_id}"


def lease_seconds() -> float:
    return 2 * settings.WS_HEARTBEAT_INTERVAL + LEASE_SLACK


async def acquire(user_id: int | str, connection_id: str, process_count: int) -> None:
    """Take the connection's leases, or raise LimitHit; ``process_count`` is this process's
    open sockets, this one excluded."""
    if process_count >= settings.WS_MAX_CONNECTIONS_PER_PROCESS:
        raise LimitHit("process", settings.WS_MAX_CONNECTIONS_PER_PROCESS)
    now = time.time()
    ttl = lease_seconds()
    verdict = await loop_client().eval(
        _ACQUIRE,
        2,
        user_key(user_id),
        ALL_LEASES,
        connection_id,
        now,
        now + ttl,
        settings.WS_MAX_CONNECTIONS_PER_USER,
        settings.WS_MAX_CONNECTIONS_TOTAL,
        int(ttl) + 1,
    )
    verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
    if verdict == "user":
        raise LimitHit("user", settings.WS_MAX_CONNECTIONS_PER_USER)
    if verdict == "total":
        raise LimitHit("total", settings.WS_MAX_CONNECTIONS_TOTAL)


def queue_release(pipe: Any, connections: Iterable[tuple[int | str, str]]) -> None:
    """Queue giving back the leases of closed ``(user_id, connection_id)`` pairs (two
    commands per user, one for the overall set)."""
    by_user = _by_user(connections)
    for user_id, connection_ids in by_user.items():
        pipe.zrem(user_key(user_id), *connection_ids)
    if by_user:
        pipe.zrem(ALL_LEASES, *(c for ids in by_user.values() for c in ids))


async def release(user_id: int | str, connection_id: str) -> None:
    """Give one closed socket's leases back."""
    pipe = loop_client().pipeline(transaction=False)
    queue_release(pipe, [(user_id, connection_id)])
    await pipe.execute()


def queue_renew(pipe: Any, connections: Iterable[tuple[int | str, str]]) -> None:
    """Queue extending the leases of open ``(user_id, connection_id)`` pairs (writing them
    again if Redis lost them in a restart): two commands per user, two for the overall set,
    whatever the number of sockets."""
    end = time.time() + lease_seconds()
    ttl = int(lease_seconds()) + 1
    by_user = _by_user(connections)
    for user_id, connection_ids in by_user.items():
        pipe.zadd(user_key(user_id), dict.fromkeys(connection_ids, end))
        pipe.expire(user_key(user_id), ttl)
    if by_user and settings.WS_MAX_CONNECTIONS_TOTAL > 0:
        pipe.zadd(ALL_LEASES, {c: end for ids in by_user.values() for c in ids})
        pipe.expire(ALL_LEASES, ttl)


def _by_user(connections: Iterable[tuple[int | str, str]]) -> dict[int | str, list[str]]:
    by_user: dict[int | str, list[str]] = defaultdict(list)
    for user_id, connection_id in connections:
        by_user[user_id].append(connection_id)
    return by_user


class Verdict(Enum):
    """What to do with an inbound frame."""

    READ = "read"  # act on it
    OVERSIZED = "oversized"  # answer an error, do not act
    FLOODING = "flooding"  # first frame over the rate this second: answer an error
    DROP = "drop"  # more of the same flood: ignore silently


@dataclass(slots=True)
class FrameGuard:
    """One socket's inbound limits: size, rate, and strikes (see the module docstring)."""

    max_bytes: int
    per_second: int
    max_strikes: int
    max_snapshots: int
    _second: float = field(default=0.0, init=False)
    _frames: int = field(default=0, init=False)
    #: Made at the first strike: there are many sockets, and few ever strike.
    _strikes: deque[float] | None = field(default=None, init=False)
    #: Resume snapshots left, as of ``_snapshots_at``; None until the first (a full bucket).
    _snapshots: float | None = field(default=None, init=False)
    _snapshots_at: float = field(default=0.0, init=False)

    @classmethod
    def from_settings(cls) -> FrameGuard:
        return cls(
            settings.WS_MAX_MESSAGE_BYTES,
            settings.WS_MAX_MESSAGES_PER_SECOND,
            settings.WS_MAX_BAD_FRAMES,
            max(1, settings.WS_MAX_RESUME_SNAPSHOTS),
        )

    def admit(self, text: str | None, data: bytes | None) -> Verdict:
        now = time.monotonic()
        if now - self._second >= 1.0:
            self._second, self._frames = now, 0
        self._frames += 1
        if self._frames > self.per_second:
            return Verdict.FLOODING if self._frames == self.per_second + 1 else Verdict.DROP
        size = len(data) if data is not None else len((text or "").encode())
        return Verdict.OVERSIZED if size > self.max_bytes else Verdict.READ

    def strike(self) -> bool:
        """Count a bad frame; True when the socket must now be closed (1008)."""
        now = time.monotonic()
        strikes = self._strikes = self._strikes if self._strikes is not None else deque()
        strikes.append(now)
        while strikes and now - strikes[0] > STRIKE_WINDOW:
            strikes.popleft()
        return len(strikes) >= self.max_strikes

    def snapshot_wait(self) -> float:
        """Take one resume snapshot from the bucket: 0 when it may be sent now, else the
        seconds until one may (nothing taken)."""
        now = time.monotonic()
        per_second = self.max_snapshots / SNAPSHOT_REFILL
        left = self.max_snapshots if self._snapshots is None else self._snapshots
        left = min(self.max_snapshots, left + (now - self._snapshots_at) * per_second)
        self._snapshots_at = now
        if left >= 1:
            self._snapshots = left - 1
            return 0.0
        self._snapshots = left
        return (1 - left) / per_second
