"""Soak: the end-to-end pipeline for ``--minutes`` with clients coming and going — does
anything grow that should not?

**What it measures.** Every ``--sample-seconds`` (a minute unless told), one line: the resident
memory (VmRSS, kB, from /proc) of every process of the run — Redis, the sandbox,
``consume_quotes``, ``run_calculator``, daphne, the load generator, and any other process this
one started; Redis's ``used_memory`` (and ``used_memory_dataset``, ``mem_clients_normal``) and
``DBSIZE``; Redis's keys by family, with their bytes (``MEMORY USAGE``); the entries of the
sets that count connections; the channel layer's subscriptions; what daphne reports
(``clera:stats:*``: live sockets, disconnects so far by close code); and the load — updates
the clients received per second, clients open, and how clients left and came back.

Key families, counted in one ``SCAN`` pass per sample (never ``KEYS``), by the names the
product defines: ``presence`` (``clera:presence:<account>``, each a sorted set of connection
ids; ``presence_entries`` sums their sizes; ``presence_index_entries`` is the size of the
index ``clera:presence``), ``leases`` (``clera:ws:user:<user>`` and ``clera:ws:all``;
``lease_entries`` sums their sizes), ``tickets`` (``clera:ws:ticket:*``), ``updates``
(``clera:updates:*``), ``seq`` (``clera:seq:*``), ``stats`` (``clera:stats:*``), ``asgi``
(``asgi*``) and ``changes`` (the stream ``clera:changes``; ``changes_entries`` is its length);
any other key counts under ``other`` (and, in the JSON, under its first two ``:``-separated
parts). The channel layer is channels-redis's pub/sub layer: it keeps no keys, so its groups
are counted where they live, as Redis pub/sub channels (``PUBSUB CHANNELS asgi*``):
``pubsub_groups`` (``…__group__…``, one per watched account) and ``pubsub_channels`` (one per
socket).

**How.** :func:`bench.sockets.pipeline` starts the whole pipeline for real, as ``bench.sockets
e2e`` does, with the same defaults: 10,000 accounts, 150 symbols, 5,000 quotes/s, 1,000
clients (that load used about one core of the two in the e2e runs, so it can run for ten
minutes here). The user is linked to ``--clients`` + ``--spare-accounts`` accounts. The load
generator, in its own process, opens one socket per account for ``--clients`` of them (answering
pings), then — evenly spread — ``--churn-per-minute`` times a minute one open client leaves and
a new one arrives. Leaving takes turns among three ways: ``clean`` (a WebSocket close),
``abort`` (the TCP connection shut with no close frame, SO_LINGER 0 so it ends in a reset) and
``silent`` (the client stops reading and answering, as when its network vanishes: the server
must time it out, 4408; the client lets go after ``--silent-hold`` seconds and records how the
socket ended). Arriving alternates too: ``resume`` takes the account left most recently and
connects with ``?last_seq=`` the number its last client saw (missed updates replayed, or a
snapshot when they are no longer kept); ``fresh`` takes the account free the longest and starts
from a snapshot. The first sample is taken ``--warmup`` seconds after every client is open.
``--server-env NAME=VALUE`` sets a setting in every process (shorter heartbeats make a short
check see silent clients timed out).

**Flat.** For every memory and key series, a line is fitted (``numpy.polyfit``) over the
samples of the second half (at least the last three). A series is ``flat`` when its slope per
minute is within ``--tolerance`` % of its mean or within a floor (:data:`FLOORS`: 1 key or
entry, 256 kB of RSS, 256 KiB of Redis memory); the verdict is ``flat`` when none is
``growing``. The changes stream grows by design until CHANGES_MAXLEN entries (20 a second, so
over an hour): its series are ``capped`` rather than growing, and Redis's totals are judged
without it (``…_less_changes``); the end says when it reaches its cap and at what size. The
load, daphne's counters and the load generator get a slope, not a verdict.

Bounded, so not a leak: an account's ``seq`` and ``updates`` keys live UPDATE_HISTORY_SECONDS
(an hour) after its last update, the list holding the last UPDATE_HISTORY_LENGTH whole states —
so they grow by one pair per newly watched account, up to the accounts watched within the
hour. Here the linked accounts (``--clients`` + ``--spare-accounts``) bound them: with the
defaults each has been watched after the first minutes, and they stay.

Run from the repository root::

    .venv/bin/python -m bench.soak [--minutes 10] [--clients 1000] [--accounts 10000] \\
        [--quotes-per-second 5000] [--churn-per-minute 100] [--sample-seconds 60] [--logs DIR]

It prints the loadavg at the start and at the end, each sample's line, the slopes and the
verdict, and ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import time
from collections import Counter, defaultdict, deque
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import redis

from bench.sockets import (
    SEED,
    keep_logs,
    loadavg,
    piped_process,
    pipeline,
    raise_fd_limit,
    rss_kb,
)
from marketdata.price_cache import CHANGES_MAXLEN, CHANGES_STREAM
from realtime.fanout import SEQ_PREFIX, UPDATES_PREFIX
from realtime.limits import ALL_LEASES, USER_LEASES_PREFIX
from realtime.presence import PRESENCE_INDEX, PRESENCE_PREFIX
from realtime.stats import PROC_PREFIX, PROCS, TOTALS
from realtime.tickets import TICKET_PREFIX

LEAVING = ("clean", "abort", "silent")
#: What a socket that is closing or closed reads.
CLOSED = (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
#: Key families: these exact names, then the first prefix that matches; the rest is
#: ``other:<first two parts>``.
EXACT = {PRESENCE_INDEX: "presence_index", ALL_LEASES: "leases", CHANGES_STREAM: "changes"}
PREFIXES = (
    ("presence", PRESENCE_PREFIX),
    ("leases", USER_LEASES_PREFIX),
    ("tickets", TICKET_PREFIX),
    ("updates", UPDATES_PREFIX),
    ("seq", SEQ_PREFIX),
    ("stats", "clera:stats:"),  # realtime/stats.py: the process list, each process, totals
    ("asgi", "asgi"),
)
NAMED = (
    "presence", "presence_index", "leases", "tickets", "updates", "seq", "stats", "asgi",
    "changes",
)  # fmt: skip
#: The slope floors (per minute) of the flat verdict, by what a series counts.
FLOORS = {"rss_kb": 256.0, "redis": 256.0 * 1024, "bytes": 256.0 * 1024, "keys": 1.0}
#: Series that get a slope but no verdict: the load (``load.*``), the load generator (not
#: ours to run), and Redis's totals — judged without the changes stream (``…_less_changes``),
#: which grows by design until CHANGES_MAXLEN entries (20 a second: over an hour).
NO_VERDICT = {"rss_kb.loadgen", "redis.used_memory", "redis.used_memory_dataset", "rss_kb.redis"}
#: Series that may grow toward a cap: the changes stream.
CAPPED = ("keys.changes_entries", "bytes.changes")


# --- the load generator (its own process) ------------------------------------------------------


@dataclass
class _Client:
    account: str
    resume_from: int | None
    seq: int = 0
    socket: Any = None
    leaving: str | None = None
    task: asyncio.Task | None = None


@dataclass
class _Tally:
    joined: int = 0
    failed: int = 0
    updates: int = 0
    left: Counter[str] = field(default_factory=Counter)
    #: How resuming clients were answered: replayed, snapshot, limited.
    resumes: Counter[str] = field(default_factory=Counter)
    #: Closes no client asked for, by close code.
    dropped: Counter[str] = field(default_factory=Counter)
    #: How silent sockets ended (see _Churn._how_it_ended).
    silent_ends: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(text[:200])


def _abort(ws: Any) -> None:
    """Drop the TCP connection with no WebSocket close: shut it, and reset it when it closes."""
    raw = ws.get_extra_info("socket")
    if raw is None:
        return
    try:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


class _Churn:
    """Clients by account, the free accounts, and the last number each left account saw."""

    def __init__(
        self, session: Any, urls: dict[str, str], headers: dict[str, str], clients: int,
        concurrency: int, silent_hold: float,
    ) -> None:  # fmt: skip
        accounts = list(urls)
        self.session, self.urls, self.headers, self.clients = session, urls, headers, clients
        self.silent_hold = silent_hold
        self.gate = asyncio.Semaphore(concurrency)
        self.free = deque(accounts[clients:])
        self.live: dict[str, _Client] = {}
        self.last_seq: dict[str, int] = {}
        self.background: set[asyncio.Task] = set()
        self.lingering = 0
        self.arrivals = self.departures = 0
        self.tally = _Tally()
        self.all_in = asyncio.Event()
        for account in accounts[:clients]:
            self._start(_Client(account, None))

    def _start(self, client: _Client) -> None:
        self.live[client.account] = client
        client.task = asyncio.create_task(self._run(client))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.tally.error(f"{task.get_coro().__qualname__} {task.exception()!r}")

    def _gone(self, client: _Client) -> None:
        self.live.pop(client.account, None)
        if client.seq:
            self.last_seq[client.account] = client.seq
        self.free.append(client.account)

    def _counted(self) -> None:
        if self.tally.joined + self.tally.failed >= self.clients:
            self.all_in.set()

    async def _run(self, client: _Client) -> None:
        url = self.urls[client.account]
        if client.resume_from is not None:
            url += f"?last_seq={client.resume_from}"
        try:
            async with self.gate:
                client.socket = await self.session.ws_connect(url, headers=self.headers)
            await client.socket.send_str('{"type":"heartbeat"}')
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            self.tally.failed += 1
            self.tally.error(f"connect {error!r}")
            self._gone(client)
            self._counted()
            return
        self.tally.joined += 1
        self._counted()
        resuming = client.resume_from is not None
        ws = client.socket
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                body = json.loads(message.data)
                kind = body["type"]
                if kind == "ping":
                    await ws.send_str('{"type":"pong"}')
                elif kind in ("update", "snapshot"):
                    client.seq = max(client.seq, body["seq"])
                    self.tally.updates += kind == "update"
                    if resuming and kind == "snapshot":
                        self.tally.resumes["snapshot"] += 1
                        resuming = False
                elif kind == "system" and resuming and body["message"].startswith("Resumed"):
                    self.tally.resumes["replayed"] += 1
                    resuming = False
                elif kind == "error":
                    if body.get("code") == "resume_limited":
                        self.tally.resumes["limited"] += 1
                    self.tally.error(message.data)
        except (aiohttp.ClientError, OSError) as error:
            self.tally.error(f"read {error!r}")
        if client.leaving is None:
            self.tally.dropped[str(ws.close_code)] += 1
            self.tally.error(f"closed {ws.close_code} {ws.exception()!r}")
            self._gone(client)

    def depart(self, client: _Client) -> None:
        """One open client leaves, the next of :data:`LEAVING` ways."""
        how = client.leaving = LEAVING[self.departures % len(LEAVING)]
        self.departures += 1
        self.tally.left[how] += 1
        self._gone(client)
        if how == "clean":
            self._spawn(client.socket.close())
        elif how == "abort":
            _abort(client.socket)
        else:
            client.task.cancel()
            self._spawn(self._linger(client.socket))

    async def _linger(self, ws: Any) -> None:
        """A silent client: hold the socket unread, then see whether the server closed it."""
        self.lingering += 1
        try:
            await asyncio.sleep(self.silent_hold)
            self.tally.silent_ends[await self._how_it_ended(ws)] += 1
            _abort(ws)
        finally:
            self.lingering -= 1

    @staticmethod
    async def _how_it_ended(ws: Any) -> str:
        """Read what a silent socket kept: the server's close code if its close frame is there,
        ``told_timeout`` if only its heartbeat_timeout error is (the connection was dropped
        after it), ``dropped`` for neither, ``still_open`` when nothing ended it."""
        told = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=1)
            except TimeoutError:
                return "still_open"
            except (aiohttp.ClientError, OSError):
                break
            if message.type == aiohttp.WSMsgType.CLOSE:
                return str(message.data)
            if message.type in CLOSED:
                break
            told = told or '"heartbeat_timeout"' in str(message.data)
        return "told_timeout" if told else "dropped"

    def arrive(self) -> None:
        """A new client: every other one resumes on the account left most recently."""
        resume = self.arrivals % 2 == 0
        self.arrivals += 1
        account = self.free.pop() if resume else self.free.popleft()
        self._start(_Client(account, self.last_seq.get(account) if resume else None))

    async def churn(self, per_minute: float) -> None:
        """Evenly spread, ``per_minute`` times a minute: one leaves, one arrives."""
        if per_minute <= 0:
            return
        loop = asyncio.get_running_loop()
        interval, due = 60.0 / per_minute, loop.time()
        rng = random.Random(SEED)
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            open_ = [c for c in self.live.values() if c.socket is not None and not c.socket.closed]
            if open_:
                self.depart(rng.choice(open_))
            while len(self.live) < self.clients and self.free:
                self.arrive()

    def report(self) -> dict:
        tally = self.tally
        return {
            "open": sum(c.socket is not None and not c.socket.closed for c in self.live.values()),
            "lingering": self.lingering, "joined": tally.joined, "failed": tally.failed,
            "updates": tally.updates, "left": dict(tally.left), "resumes": dict(tally.resumes),
            "dropped": dict(tally.dropped), "silent_ends": dict(tally.silent_ends),
            "errors": tally.errors, "error_count": tally.error_count,
            "cpu_s": time.process_time(),
        }  # fmt: skip

    async def stop(self) -> None:
        tasks = [c.task for c in self.live.values() if c.task] + list(self.background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _soak_load(
    pipe: Any, urls: dict[str, str], headers: dict[str, str], clients: int, concurrency: int,
    churn_per_minute: float, silent_hold: float,
) -> None:  # fmt: skip
    """Open the clients, tell the parent, then churn and answer ``sample`` until ``stop``."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started = time.perf_counter()
        load = _Churn(session, urls, headers, clients, concurrency, silent_hold)
        with suppress(TimeoutError):
            await asyncio.wait_for(load.all_in.wait(), 900)
        pipe.send({**load.report(), "seconds": time.perf_counter() - started})
        churning = asyncio.create_task(load.churn(churn_per_minute))
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
            if command == "sample":
                pipe.send(load.report())
        churning.cancel()
        await load.stop()


def _soak_load_main(pipe: Any, *args: Any) -> None:
    raise_fd_limit()
    asyncio.run(_soak_load(pipe, *args))


# --- the samples --------------------------------------------------------------------------------


def _family(key: str) -> str:
    if key in EXACT:
        return EXACT[key]
    for name, prefix in PREFIXES:
        if key.startswith(prefix):
            return name
    return "other:" + ":".join(key.split(":", 2)[:2])


def redis_figures(client: redis.Redis) -> dict[str, int]:
    """Redis's memory; its keys by family (one SCAN pass), with their bytes (MEMORY USAGE);
    the connection sets' entries; the changes stream's length; the pub/sub channels."""
    by_family: dict[str, list[str]] = defaultdict(list)
    for raw in client.scan_iter(count=1000):
        key = raw.decode()
        by_family[_family(key)].append(key)
    keys = [(family, key) for family, names in by_family.items() for key in names]
    sizes: Counter[str] = Counter()
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        pipe = client.pipeline(transaction=False)
        for family, key in chunk:
            # The stream's size is what the totals are judged without: measured whole
            # (SAMPLES 0), since a sampled estimate of a stream runs high.
            pipe.memory_usage(key, samples=0 if family == "changes" else 5)
        for (family, _), size in zip(chunk, pipe.execute(), strict=True):
            sizes[family] += size or 0  # None: expired meanwhile
    pipe = client.pipeline(transaction=False)
    for key in by_family["presence"] + by_family["leases"]:
        pipe.zcard(key)
    entries = pipe.execute()
    presence = len(by_family["presence"])
    channels = [c.decode() for c in client.pubsub_channels("asgi*")]
    groups = sum("__group__" in c for c in channels)
    memory = client.info("memory")
    others = sorted(name for name in by_family if name.startswith("other:"))
    return {
        "redis.used_memory": int(memory["used_memory"]),
        "redis.used_memory_dataset": int(memory["used_memory_dataset"]),
        "redis.mem_clients_normal": int(memory["mem_clients_normal"]),
        "keys.dbsize": int(client.dbsize()),
        **{f"keys.{name}": len(by_family[name]) for name in NAMED},
        "keys.presence_entries": sum(entries[:presence]),
        "keys.presence_index_entries": int(client.zcard(PRESENCE_INDEX)),
        "keys.lease_entries": sum(entries[presence:]),
        "keys.changes_entries": int(client.xlen(CHANGES_STREAM)),
        "keys.pubsub_groups": groups,
        "keys.pubsub_channels": len(channels) - groups,
        "keys.other": sum(len(by_family[name]) for name in others),
        **{f"keys.{name}": len(by_family[name]) for name in others},
        **{f"bytes.{name}": sizes[name] for name in NAMED},
        "bytes.other": sum(sizes[name] for name in others),
        **{f"bytes.{name}": sizes[name] for name in others},
    }


def server_figures(client: redis.Redis) -> dict[str, int]:
    """What the daphne processes say (realtime/stats.py): their live sockets, and their
    disconnects so far by close code."""
    ids = [raw.decode() for raw in client.zrange(PROCS, 0, -1)]
    snapshots = client.mget([PROC_PREFIX + i for i in ids]) if ids else []
    totals = client.hgetall(TOTALS)
    return {
        "server.active": sum(json.loads(raw)["active"] for raw in snapshots if raw),
        **{
            f"server.{name.decode()}": int(count)
            for name, count in sorted(totals.items())
            if name.startswith(b"disconnect:")
        },
    }


def _descendants(root: int) -> dict[int, str]:
    """Every process under ``root`` (not itself), by pid, with its command name."""
    parents: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        parents[int(stat.parent.name)] = (int(text.rsplit(")", 1)[1].split()[1]), name)
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, (parent, name) in parents.items():
            if parent == pid and child not in found:
                found[child] = name
                frontier.append(child)
    return found


def processes(named: dict[str, int]) -> dict[int, str]:
    """Every named process and every other process this one started: pid → name."""
    by_pid = {pid: name for name, pid in named.items()}
    for pid, command in _descendants(os.getpid()).items():
        by_pid.setdefault(pid, f"{command}-{pid}")
    return by_pid


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "(gone)"


def rss_figures(named: dict[str, int]) -> dict[str, int]:
    """RSS in kB of every named process and of every other process this one started."""
    figures = {}
    for pid, name in processes(named).items():
        try:
            figures[f"rss_kb.{name}"] = rss_kb(pid)
        except (OSError, RuntimeError):
            continue  # gone, or a zombie
    return figures


# --- the verdict --------------------------------------------------------------------------------


def slopes(samples: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Each series' slope per minute and mean over the second half (at least three samples)."""
    last = samples[-1]["minute"]
    half = [s for s in samples if s["minute"] >= last / 2]
    half = half if len(half) >= 3 else samples[-3:]
    minutes = np.array([s["minute"] for s in half], dtype=float)
    names = sorted({k for s in samples for k in s if k != "minute"})
    fitted, means = {}, {}
    for name in names:
        values = np.array([float(s.get(name, 0)) for s in half])
        fitted[name] = float(np.polyfit(minutes, values, 1)[0]) if len(half) > 1 else 0.0
        means[name] = float(values.mean())
    return fitted, means


def judge(name: str, slope: float, mean: float, tolerance: float) -> str | None:
    """``flat``, ``capped`` (the changes stream, growing to its MAXLEN), ``growing``,
    ``falling`` (shrinking: no leak, but worth a look), or None (no verdict: see
    :data:`NO_VERDICT`)."""
    if name in NO_VERDICT or name.startswith(("load.", "server.")):
        return None
    if abs(slope) <= max(tolerance / 100 * abs(mean), FLOORS[name.split(".", 1)[0]]):
        return "flat"
    if slope < 0:
        return "falling"
    return "capped" if name in CAPPED else "growing"


def changes_stream(last: dict, fitted: dict[str, float]) -> dict[str, float]:
    """Where the changes stream is heading: minutes until its cap, and its size there."""
    entries, rate = last["keys.changes_entries"], fitted["keys.changes_entries"]
    per_entry = last["bytes.changes"] / max(1, entries)
    return {
        "entries": entries,
        "entries_per_minute": rate,
        "cap": CHANGES_MAXLEN,
        "minutes_to_cap": (CHANGES_MAXLEN - entries) / rate if rate > 0 else 0.0,
        "bytes_per_entry": per_entry,
        "bytes_at_cap": per_entry * CHANGES_MAXLEN,
    }


# --- the run ------------------------------------------------------------------------------------


def _line(sample: dict, load: dict) -> str:
    parts = [f"minute {sample['minute']:.1f}"]
    for group in ("rss_kb", "redis", "keys", "bytes", "load", "server"):
        items = [
            f"{k.split('.', 1)[1]}={v:.1f}" if isinstance(v, float) else f"{k.split('.', 1)[1]}={v}"
            for k, v in sample.items()
            if k.startswith(group + ".") and ".other:" not in k
        ]
        parts.append(f"{group}: " + " ".join(items))
    parts.append(
        "churn: " + " ".join(f"{k}={load[k]}" for k in ("lingering", "joined", "failed", "left",
                                                          "resumes", "dropped", "silent_ends"))
    )  # fmt: skip
    return " | ".join(parts)


def _log_problems(folder: Path) -> dict[str, dict]:
    problems = {}
    for log in sorted(folder.glob("*.log")):
        lines = [
            line for line in log.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]  # fmt: skip
        if lines:
            problems[log.stem] = {"count": len(lines), "first": lines[0][:300]}
    return problems


def sample_figures(named: dict[str, int], client: redis.Redis) -> dict[str, float]:
    """One sample's RSS and Redis figures, with those that leave the changes stream out."""
    figures = {**rss_figures(named), **redis_figures(client), **server_figures(client)}
    stream = figures["bytes.changes"]
    figures["redis.used_memory_less_changes"] = figures["redis.used_memory"] - stream
    figures["redis.used_memory_dataset_less_changes"] = (
        figures["redis.used_memory_dataset"] - stream
    )
    figures["rss_kb.redis_less_changes"] = figures["rss_kb.redis"] - stream // 1024
    return figures


def soak(args: argparse.Namespace) -> dict:
    started_load = loadavg()
    print(f"fd limit raised to {raise_fd_limit()}; loadavg at start {started_load}", flush=True)
    linked = args.clients + args.spare_accounts
    settings = dict(item.split("=", 1) for item in args.server_env)
    with pipeline(args.accounts, args.symbols, args.quotes_per_second, linked, **settings) as run:
        client = redis.Redis.from_url(run.base.env["REDIS_URL"])
        named = {name: p.pid for name, p in run.processes.items()}
        named["redis"] = int(client.info("server")["process_id"])
        urls = {a: run.url(a) for a in run.linked}
        load_args = (urls, run.headers, args.clients, args.concurrency, args.churn_per_minute,
                     args.silent_hold)  # fmt: skip
        samples: list[dict] = []
        with piped_process(_soak_load_main, *load_args) as (pipe, process):
            named["loadgen"] = process.pid
            ready = pipe.recv()
            for pid, name in processes(named).items():
                print(f"process {name}: pid {pid}, {command_line(pid)[:160]}", flush=True)
            print(f"clients: {ready['joined']} open, {ready['failed']} failed in "
                  f"{ready['seconds']:.0f}s {ready['errors'][:2]}", flush=True)  # fmt: skip
            previous, previous_at = ready, time.monotonic()
            time.sleep(args.warmup)
            begin = time.monotonic()
            count = max(1, round(args.minutes * 60 / args.sample_seconds))
            for index in range(count + 1):
                time.sleep(max(0.0, begin + index * args.sample_seconds - time.monotonic()))
                pipe.send("sample")
                load = pipe.recv()
                now = time.monotonic()
                sample = {"minute": index * args.sample_seconds / 60,
                          **sample_figures(named, client)}  # fmt: skip
                sample["load.updates_per_s"] = (load["updates"] - previous["updates"]) / (
                    now - previous_at
                )
                sample["load.open"] = load["open"]
                samples.append(sample)
                previous, previous_at = load, now
                print(_line(sample, load), flush=True)
        problems = _log_problems(run.base.folder)
        if args.logs:
            keep_logs(run.base.folder, args.logs)
    fitted, means = slopes(samples)
    verdicts = {name: judge(name, fitted[name], means[name], args.tolerance) for name in fitted}
    for name, slope in fitted.items():
        mark = (verdicts[name] or "").upper() if verdicts[name] == "growing" else verdicts[name]
        print(f"slope {name}: {slope:+.2f}/min (mean {means[name]:.1f}) {mark or ''}".rstrip())
    growing = sorted(name for name, v in verdicts.items() if v == "growing")
    verdict = "not flat" if growing else "flat"
    stream = changes_stream(samples[-1], fitted)
    ended_load = loadavg()
    print(f"verdict: {verdict} (|slope| per minute <= {args.tolerance}% of the mean, or the "
          f"floor {FLOORS}){'; growing: ' + ', '.join(growing) if growing else ''}")  # fmt: skip
    print(f"changes stream: {stream['entries']} entries, {stream['entries_per_minute']:+.0f}"
          f"/min; its cap, {CHANGES_MAXLEN}, in {stream['minutes_to_cap']:.0f} min, at about "
          f"{stream['bytes_at_cap'] / 2**20:.0f} MiB")  # fmt: skip
    print(f"clients: {load['joined']} joined, {load['failed']} failed, left {load['left']}, "
          f"resumes {load['resumes']}, dropped {load['dropped']}, silent ended "
          f"{load['silent_ends']}, {load['error_count']} errors {load['errors'][:3]}")  # fmt: skip
    print(f"loadavg at end {ended_load}; server log problems: {problems or 'none'}", flush=True)
    return {
        "bench": "soak", **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "loadavg_start": started_load, "loadavg_end": ended_load,
        "samples": samples, "slopes_per_minute": fitted, "means": means,
        "floors": FLOORS, "verdicts": verdicts, "verdict": verdict, "growing": growing,
        "changes_stream": stream, "load": load, "server_log_problems": problems,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10000)
    parser.add_argument("--symbols", type=int, default=150)
    parser.add_argument("--quotes-per-second", type=int, default=5000)
    parser.add_argument(
        "--churn-per-minute", type=float, default=100, help="clients that leave (and as many "
        "that arrive) each minute; 100 = a tenth of the default clients",
    )  # fmt: skip
    parser.add_argument(
        "--spare-accounts", type=int, default=None,
        help="linked accounts beyond --clients (default: --churn-per-minute)",
    )  # fmt: skip
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time")
    parser.add_argument(
        "--tolerance", type=float, default=0.5, help="flat: |slope| per minute within this "
        "percentage of the mean (or the floor)",
    )  # fmt: skip
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="a setting for every process of the pipeline (shorter heartbeats for a short run)",
    )  # fmt: skip
    parser.add_argument(
        "--silent-hold", type=float, default=None,
        help="seconds a silent client holds its socket (default: the server's heartbeat "
        "timeout + interval + 15 s)",
    )  # fmt: skip
    parser.add_argument("--logs", type=Path, help="copy every process's log here at the end")
    args = parser.parse_args()
    if args.spare_accounts is None:
        args.spare_accounts = max(1, round(args.churn_per_minute))
    if args.silent_hold is None:
        server = dict(item.split("=", 1) for item in args.server_env)
        args.silent_hold = (float(server.get("WS_HEARTBEAT_TIMEOUT", 30))
                            + float(server.get("WS_HEARTBEAT_INTERVAL", 15)) + 15)  # fmt: skip
    print(json.dumps(soak(args)))


if __name__ == "__main__":
    main()
