"""Operations counters of the real-time service, per process, and their sum across processes.

**Writing** (every daphne process; the consumers call these — cheap, in memory, no I/O):
:func:`record_connect`, :func:`record_disconnect`, :func:`record_limit_hit`,
:func:`record_message_out`, :func:`record_batch`. The first call inside a running event loop
starts a flusher task that every STATS_FLUSH_INTERVAL seconds

* rewrites ``clera:stats:proc:<process>`` — a JSON snapshot of the process's gauges (live
  connections by user, disconnects in the last minute, start time), TTL STATS_TTL, so a process
  that died drops out of the sums within STATS_TTL — and scores the process in the sorted set
  ``clera:stats:procs`` (listing the live ones needs no key scan);
* adds its counters' increments since the last flush to the hash ``clera:stats:totals`` (totals
  outlive process restarts).

The calculator writes its own figures (``events`` — account changes it saw — and ``pushes``) to
the same totals, and every second a report per partition to ``clera:stats:calculator:<k>``
(TTL STATS_TTL).

**Reading**: :func:`websocket_stats` gives the seed-004 stats JSON summed over the live
processes, plus the market-data pipeline's freshness; :func:`status_of` applies its rules:

* ``disabled`` — ENABLE_REALTIME_PORTFOLIO is off;
* ``offline`` — no live socket anywhere (normal when nobody is online);
* ``degraded`` — disconnects in the last minute above 10 % of the live connections, or batch
  efficiency under 50 % (judged once STATS_MIN_BATCH_EVENTS events were batched: a quiet
  system is not degraded);
* ``healthy`` — otherwise.

Batch efficiency is the share of events that batching saved: ``1 − messages / events`` over
every batch recorded (a calculator coalescing pass is one; a consumer's flush is another).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings

from marketdata import book, moments
from marketdata.price_cache import PriceCache
from marketdata.quotes import consumer_status, stream_kind
from marketdata.store import redis_client

from .redis_loop import loop_client

logger = logging.getLogger(__name__)

PROC_PREFIX = "clera:stats:proc:"
PROCS = "clera:stats:procs"
TOTALS = "clera:stats:totals"
CALCULATOR_PREFIX = "clera:stats:calculator:"
DISCONNECT_WINDOW = 60.0
DEGRADED_DISCONNECT_SHARE = 0.10
DEGRADED_BATCH_EFFICIENCY = 0.50


@dataclass
class ProcessStats:
    """One process's counters; ``pending`` holds total increments not yet flushed."""

    process_id: str
    started_at: float
    by_user: Counter = field(default_factory=Counter)
    disconnect_times: deque = field(default_factory=deque)
    pending: Counter = field(default_factory=Counter)
    flusher: asyncio.Task | None = None

    def snapshot(self, now: float) -> dict[str, Any]:
        while self.disconnect_times and self.disconnect_times[0] < now - DISCONNECT_WINDOW:
            self.disconnect_times.popleft()
        return {
            "process": self.process_id,
            "started_at": self.started_at,
            "flushed_at": now,
            "active": sum(self.by_user.values()),
            "by_user": {user: n for user, n in self.by_user.items() if n > 0},
            "disconnects_last_minute": len(self.disconnect_times),
        }


def _new_process() -> ProcessStats:
    return ProcessStats(
        process_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        started_at=time.time(),
    )


_process = _new_process()


def current() -> ProcessStats:
    return _process


def reset_process() -> ProcessStats:
    """Start this process's counters afresh (tests simulating several processes)."""
    global _process
    if _process.flusher is not None:
        _process.flusher.cancel()
    _process = _new_process()
    return _process


def _ensure_flusher() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # sync code (management commands, tests): flush() is called explicitly
    flusher = _process.flusher
    if flusher is None or flusher.done() or flusher.get_loop() is not loop:
        _process.flusher = loop.create_task(_flush_forever(), name="realtime-stats-flusher")


# --- recording ----------------------------------------------------------------------------


def record_connect(user_id: int | str, resumed: bool = False) -> None:
    """A socket was accepted for ``user_id``; ``resumed`` if it resumed from a sequence."""
    _process.by_user[str(user_id)] += 1
    _process.pending["connects"] += 1
    if resumed:
        _process.pending["reconnects"] += 1
    _ensure_flusher()


def record_disconnect(
    reason: str, user_id: int | str | None = None, seconds: float | None = None
) -> None:
    """A socket closed (``reason``: a close code or word); pass the ``user_id`` given to
    :func:`record_connect` and how long it was open, for the by-user counts and mean duration."""
    if user_id is not None and _process.by_user[str(user_id)] > 0:
        _process.by_user[str(user_id)] -= 1
        if not _process.by_user[str(user_id)]:
            del _process.by_user[str(user_id)]
    _process.disconnect_times.append(time.time())
    _process.pending["disconnects"] += 1
    _process.pending[f"disconnect:{reason}"] += 1
    if seconds is not None:
        _process.pending["closed_connections"] += 1
        _process.pending["connection_ms"] += int(seconds * 1000)
    _ensure_flusher()


def record_limit_hit(kind: str) -> None:
    """A limit refused something: ``per_user``, ``total``, ``symbols``, ``flood``, ``size``…"""
    _process.pending[f"limit:{kind}"] += 1
    _ensure_flusher()


def record_message_out(n: int = 1) -> None:
    """``n`` frames were written to clients."""
    _process.pending["messages_out"] += n
    _ensure_flusher()


def record_batch(size: int, capacity: int) -> None:
    """A batch went out: ``size`` messages sent for ``capacity`` events that arrived in its
    window (``capacity − size`` were merged away; ``size <= capacity``)."""
    _process.pending["batch_messages"] += size
    _process.pending["batch_events"] += capacity
    _ensure_flusher()


# --- flushing -------------------------------------------------------------------------------


def _queue_flush(pipe: Any, stats: ProcessStats, now: float) -> Counter:
    pending, stats.pending = stats.pending, Counter()
    ttl = settings.STATS_TTL
    pipe.set(PROC_PREFIX + stats.process_id, json.dumps(stats.snapshot(now)), ex=ttl)
    pipe.zadd(PROCS, {stats.process_id: now})
    pipe.zremrangebyscore(PROCS, "-inf", now - ttl)
    for name, amount in pending.items():
        if amount:
            pipe.hincrby(TOTALS, name, amount)
    return pending


def flush_sync(client: redis.Redis | None = None) -> None:
    """Write this process's snapshot and pending totals now (from sync code)."""
    pipe = (client or redis_client()).pipeline(transaction=False)
    pending = _queue_flush(pipe, _process, time.time())
    try:
        pipe.execute()
    except redis.RedisError:
        _process.pending.update(pending)
        raise


async def flush() -> None:
    """Write this process's snapshot and pending totals now (shutdown, tests)."""
    pipe = loop_client().pipeline(transaction=False)
    stats = _process
    pending = _queue_flush(pipe, stats, time.time())
    try:
        await pipe.execute()
    except redis.RedisError:
        stats.pending.update(pending)  # counted at the next flush instead
        raise


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(settings.STATS_FLUSH_INTERVAL)
        try:
            await flush()
        except redis.RedisError as problem:
            logger.warning("stats.flush_failed error=%s", type(problem).__name__)


async def add_totals(client: Any, **amounts: int) -> None:
    """Add to the service-wide totals (the calculator's ``events`` and ``pushes``)."""
    pipe = client.pipeline(transaction=False)
    for name, amount in amounts.items():
        if amount:
            pipe.hincrby(TOTALS, name, amount)
    await pipe.execute()


# --- reading --------------------------------------------------------------------------------


def _integer(totals: dict[bytes, bytes], name: str) -> int:
    return int(totals.get(name.encode(), 0))


def _prefixed(totals: dict[bytes, bytes], prefix: str) -> dict[str, int]:
    out = {}
    for name, value in totals.items():
        text = name.decode()
        if text.startswith(prefix):
            out[text[len(prefix) :]] = int(value)
    return out


def _formatted(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60}m"


def _moment(epoch: float | None) -> str | None:
    return None if epoch is None else moments.iso_ms(datetime.fromtimestamp(epoch, UTC))


def status_of(
    enabled: bool, active: int, disconnects_last_minute: int, efficiency: float | None
) -> str:
    """The seed-004 status rules; see the module docstring."""
    if not enabled:
        return "disabled"
    if active == 0:
        return "offline"
    if disconnects_last_minute > DEGRADED_DISCONNECT_SHARE * active:
        return "degraded"
    if efficiency is not None and efficiency < DEGRADED_BATCH_EFFICIENCY:
        return "degraded"
    return "healthy"


def _processes(client: redis.Redis, now: float) -> list[dict[str, Any]]:
    ids = [i.decode() for i in client.zrangebyscore(PROCS, now - settings.STATS_TTL, "+inf")]
    if not ids:
        return []
    raw = client.mget([PROC_PREFIX + process_id for process_id in ids])
    return [json.loads(item) for item in raw if item]


def _price_ages(client: redis.Redis, symbols: list[str], now: datetime) -> float | None:
    """Age in seconds of the stalest streamed price among ``symbols`` (None if none is)."""
    if not symbols:
        return None
    ages = []
    for cached in PriceCache(client).get(symbols).values():
        seen = [m for m in (cached.trade_at, cached.quote_at) if m is not None]
        if seen:
            ages.append((now - max(seen)).total_seconds())
    return round(max(ages), 3) if ages else None


def quote_freshness(client: redis.Redis | None = None) -> dict[str, Any]:
    """Whether the quote consumer keeps prices fresh, for /health and the stats:
    ``ok``; ``idle`` (nothing streamable is tracked); ``not_running`` (no consumer has reported
    for its status TTL); ``stale`` (no market data for HEALTH_QUOTES_MAX_AGE seconds)."""
    client = client or redis_client()
    symbols, _ = book.tracked_symbols(client)
    streamable = sum(1 for s in symbols if stream_kind(s) is not None)
    status = consumer_status(client)
    age = _age(moments.parse_stored(status.get("last_message_at")), datetime.now(UTC))
    if not streamable:
        verdict = "idle"
    elif not status:
        verdict = "not_running"
    elif age is None or age > settings.HEALTH_QUOTES_MAX_AGE:
        verdict = "stale"
    else:
        verdict = "ok"
    return {
        "status": verdict,
        "streamable_symbols": streamable,
        "feeds": status.get("feeds") or None,
        "messages_per_second": float(status.get("messages_per_second") or 0),
        "last_message_age_seconds": age,
    }


def calculator_key(partition: int) -> str:
    return f"{CALCULATOR_PREFIX}{partition}"


def _calculators(reports: list[dict[bytes, bytes]], now: datetime) -> dict[str, Any]:
    """Every partition's last report, and the age of the stalest (None if one is missing)."""
    ages = [_age(moments.parse_stored(report.get(b"at")), now) for report in reports]
    return {
        "running": all(reports),
        "lastPassAgeSeconds": None if not all(reports) else max(ages),
        "partitions": [
            {k.decode(): v.decode() for k, v in report.items() if k != b"at"} for report in reports
        ],
    }


def market_data(client: redis.Redis | None = None) -> dict[str, Any]:
    """The price pipeline's freshness: what is tracked, how fast quotes arrive, how old the
    stalest streamed price is, when symbols were last collected, and the calculator's last
    report."""
    client = client or redis_client()
    now = datetime.now(UTC)
    symbols, complete = book.tracked_symbols(client)
    streamed = sorted(s for s in symbols if stream_kind(s) is not None)
    quotes = quote_freshness(client)
    collection = book.last_collection(client)
    pipe = client.pipeline(transaction=False)
    for partition in range(settings.CALCULATOR_PARTITIONS):
        pipe.hgetall(calculator_key(partition))
    calculators = pipe.execute()
    collected = moments.parse_stored(collection.get("at"))
    return {
        "trackedSymbols": len(symbols),
        "trackedSymbolsComplete": complete,
        "quotesPerSecond": quotes["messages_per_second"],
        "quoteConsumer": quotes,
        "oldestPriceAgeSeconds": _price_ages(client, streamed, now),
        "lastCollectionAt": collection.get("at") or None,
        "lastCollectionAgeSeconds": _age(collected, now),
        "calculator": _calculators(calculators, now),
    }


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


def websocket_stats(client: redis.Redis | None = None) -> dict[str, Any]:
    """The seed-004 stats JSON, summed over every live daphne process, with market data."""
    client = client or redis_client()
    now = time.time()
    processes = _processes(client, now)
    totals = client.hgetall(TOTALS)
    by_user: Counter = Counter()
    for proc in processes:
        by_user.update(proc["by_user"])
    active = sum(proc["active"] for proc in processes)
    disconnects_last_minute = sum(proc["disconnects_last_minute"] for proc in processes)
    events = _integer(totals, "batch_events")
    messages = _integer(totals, "batch_messages")
    efficiency = None
    if events >= settings.STATS_MIN_BATCH_EVENTS:
        efficiency = max(0.0, 1 - messages / events)
    closed = _integer(totals, "closed_connections")
    uptime = int(now - min(proc["started_at"] for proc in processes)) if processes else 0
    enabled = settings.ENABLE_REALTIME_PORTFOLIO
    return {
        "status": status_of(enabled, active, disconnects_last_minute, efficiency),
        "enabled": enabled,
        "activeConnections": active,
        "connectionsByUser": dict(sorted(by_user.items())),
        "processes": len(processes),
        "totalConnections": _integer(totals, "connects"),
        "totalMessagesDelivered": _integer(totals, "messages_out"),
        "totalEventsEmitted": _integer(totals, "events"),
        "totalPushes": _integer(totals, "pushes"),
        "totalDisconnects": _integer(totals, "disconnects"),
        "totalReconnects": _integer(totals, "reconnects"),
        "disconnectsByReason": _prefixed(totals, "disconnect:"),
        "limitHits": _prefixed(totals, "limit:"),
        "performance": {
            "batchEfficiency": None if efficiency is None else f"{efficiency * 100:.1f}%",
            "batchEfficiencyRaw": None if efficiency is None else round(efficiency, 4),
            "avgConnectionDurationSeconds": (
                round(_integer(totals, "connection_ms") / closed / 1000) if closed else None
            ),
            "disconnectRatePerMinute": f"{disconnects_last_minute:.2f}",
        },
        "uptime": {"seconds": uptime, "formatted": _formatted(uptime)},
        "limits": {
            "maxConnectionsPerUser": settings.WS_MAX_CONNECTIONS_PER_USER,
            "maxConnectionsPerProcess": settings.WS_MAX_CONNECTIONS_PER_PROCESS,
            "maxTotalConnections": settings.WS_MAX_CONNECTIONS_TOTAL or None,
        },
        "marketData": market_data(client),
        "timestamp": _moment(now),
    }
