"""Reconnect storm: every socket of a daphne process that is restarted comes back, resumed.

Everything runs for real, as ``bench.sockets e2e`` starts it (:func:`bench.sockets.pipeline`):
an embedded Redis, the sandbox at ``--quotes-per-second`` over ``--accounts`` accounts, a user
linked to ``min(--sockets, accounts with holdings)`` accounts, one symbol collection,
``consume_quotes``, ``run_calculator`` and daphne. A load generator, in its own process, opens
``--sockets`` clients on ``/ws/portfolio/<id>`` (``--concurrency`` handshakes at a time, spread
round-robin over the linked accounts; a heartbeat first, ``ping`` answered with ``pong``), each
remembering the highest ``seq`` it has seen (snapshot, update, system).

After ``--warmup`` seconds of updates, each round: daphne gets SIGTERM (every socket is closed
with 1001 after a drain, :mod:`realtime.serving`); once it has exited a new daphne starts on the
same port, with the same environment. Each client does what the page does
(``static/portfolio/js/connection.js``): after a close it reconnects to the same URL with
``?last_seq=<seq>`` after ``BACKOFF[attempts]`` halved plus up to as much again at random, the
attempts counting up while it gets no snapshot, update or numbered system message (connection
refused, a draining server's 1001), and starting over once it does. It is *resumed* when the
``system`` message "Resumed after update N: k missed." arrives, *snapshotted* when a snapshot
does instead (its update is no longer kept).

Measured, per round, from the SIGTERM: each client's seconds until it is back (resumed or
snapshotted) — p50/p95/p99, the first and the last one (target: the last within 30 s for 10,000
sockets) — and those never back within ``--timeout``; the drain (SIGTERM to exit), the restart
to /health answering 200, the last 1001's arrival; reconnects refused (nothing listening) and
cut (daphne drops a handshake its application has not accepted within 5 s); updates replayed
and received; the new daphne's CPU (start-up, then the storm), the load generator's, and the
server's warnings. The page's summary polls while it is down are not made.

Run from the repository root::

    .venv/bin/python -m bench.reconnect_storm [--sockets 10000] [--accounts 10000] \\
        [--quotes-per-second 1000] [--concurrency 200] [--rounds 1] [--logs DIR]

Each round prints one line; the end is one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.sockets import (
    _cpu_seconds,
    _percentile,
    keep_logs,
    loadavg,
    piped_process,
    pipeline,
    raise_fd_limit,
)
from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.harness import HOST

SYMBOLS = 150
#: The page's reconnect delays (connection.js BACKOFF_MS), in seconds.
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Closes after which the page gives up (signed out, not your account).
FOR_GOOD = (4401, 4403)
#: A snapshot or update frame starts so (realtime.protocol.frame): read without parsing.
FRAME = re.compile(r'\{"type":"(snapshot|update)","seq":(\d+),')
RESUMED = re.compile(r"Resumed after update \d+: (\d+) missed")
HEARTBEAT = '{"type":"heartbeat"}'
DRAIN_TIMEOUT = 60.0


def page_delay(attempts: int) -> float:
    """connection.js scheduleReconnect: half the backoff step plus a random share of it."""
    base = BACKOFF[min(attempts, len(BACKOFF) - 1)]
    return base / 2 + random.random() * base / 2


@dataclass
class Client:
    url: str
    seq: int | None = None
    attempts: int = 0
    open: bool = False
    dropped: bool = False  # closed during the current round
    back_at: float | None = None  # wall-clock time it was resumed or snapshotted this round
    how: str = ""


class Storm:
    """The load generator's clients and the round in progress."""

    def __init__(self, urls: list[str], headers: dict[str, str], concurrency: int) -> None:
        self.clients = [Client(url) for url in urls]
        self.headers = headers
        self.gate = asyncio.Semaphore(concurrency)
        self.ready = self.failed = self.pending = self.missed = self.updates = 0
        self.refused = self.cut = 0
        self.armed = False
        self.last_close = 0.0
        self.errors: list[str] = []
        self.all_ready = asyncio.Event()
        self.all_back = asyncio.Event()

    def arm(self) -> None:
        for client in self.clients:
            client.dropped, client.back_at, client.how = not client.open, None, ""
        self.pending = self.ready
        self.refused = self.cut = self.missed = self.updates = 0
        self.last_close = 0.0
        self.all_back.clear()
        self.armed = True
        if not self.pending:
            self.all_back.set()

    def error(self, text: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(text[:200])

    def _back(self, client: Client, how: str) -> None:
        if self.armed and client.dropped and client.back_at is None:
            client.back_at, client.how = time.time(), how
            self._settled()

    def _settled(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.all_back.set()

    def _take(self, client: Client, text: str) -> bool:
        """Handle one message; whether it says the socket is established (as the page's)."""
        found = FRAME.match(text)
        if found:
            kind, seq = found[1], int(found[2])
            client.seq = seq if kind == "snapshot" or client.seq is None else max(client.seq, seq)
            if kind == "snapshot":
                self._back(client, "snapshot")
            else:
                self.updates += 1
            return True
        body = json.loads(text)
        if body["type"] == "system" and isinstance(body.get("seq"), int):
            client.seq = max(client.seq or 0, body["seq"])
            resumed = RESUMED.match(body["message"])
            if resumed:
                self.missed += int(resumed[1])
                self._back(client, "resumed")
            return True
        if body["type"] == "error":
            self.error(text)
        return False

    async def _listen(self, socket: Any, client: Client) -> tuple[int, bool]:
        """Read until the socket closes: its close code, and whether it was established."""
        client.open = True
        established = False
        try:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                if message.data.startswith('{"type":"ping"'):
                    await socket.send_str('{"type":"pong"}')
                elif self._take(client, message.data):
                    established = True
        except (aiohttp.ClientError, OSError) as error:
            self.error(f"listen {error!r}")
        client.open = False
        return socket.close_code or 1006, established

    async def follow(self, session: aiohttp.ClientSession, client: Client) -> None:
        """One client for the whole run: connect, then reconnect as the page does."""
        first = True
        while True:
            url = client.url if client.seq is None else f"{client.url}?last_seq={client.seq}"
            socket = None
            try:
                async with self.gate if first else nullcontext():
                    socket = await session.ws_connect(url, headers=self.headers)
                    await socket.send_str(HEARTBEAT)
                    if first:
                        message = await socket.receive(timeout=120)
                        if message.type != aiohttp.WSMsgType.TEXT:
                            raise aiohttp.ClientError(f"first {message.type} {message.data}")
                        self._take(client, message.data)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if socket is not None:
                    await socket.close()
                if first:
                    self.failed += 1
                    self.error(f"connect {error!r}")
                    self._initial_done()
                    return
                if isinstance(error, aiohttp.ClientConnectorError):
                    self.refused += 1
                else:  # accepted, but no handshake: daphne's own timeout, say
                    self.cut += 1
                    self.error(f"handshake {error!r}")
                code, established = 1006, False
            else:
                if first:
                    self.ready += 1
                    self._initial_done()
                    first = False
                code, established = await self._listen(socket, client)
            if self.armed and not client.dropped:
                client.dropped = True
                self.last_close = max(self.last_close, time.time())
            if code in FOR_GOOD:
                self.error(f"closed for good {code}")
                if self.armed and client.back_at is None:
                    self._settled()
                return
            if established:
                client.attempts = 0
            await asyncio.sleep(page_delay(client.attempts))
            client.attempts += 1

    def _initial_done(self) -> None:
        if self.ready + self.failed == len(self.clients):
            self.all_ready.set()

    def report(self, cpu: float) -> dict[str, Any]:
        back = [c for c in self.clients if c.back_at is not None]
        return {
            "back_at": [c.back_at for c in back],
            "resumed": sum(c.how == "resumed" for c in back),
            "snapshotted": sum(c.how == "snapshot" for c in back),
            "never_back": self.pending,
            "last_close": self.last_close,
            "refused": self.refused,
            "cut": self.cut,
            "missed": self.missed,
            "updates": self.updates,
            "errors": self.errors[:5],
            "cpu": cpu,
        }


async def _storm_load(
    pipe: Any, urls: list[str], headers: dict[str, str], concurrency: int
) -> None:
    """Connect every client, report; then per round: ``arm`` (answered), and a report once
    every client is back or on ``report``, whichever comes first; ``stop`` ends it."""
    storm = Storm(urls, headers, concurrency)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started, cpu = time.perf_counter(), time.process_time()
        tasks = [asyncio.create_task(storm.follow(session, c)) for c in storm.clients]
        await storm.all_ready.wait()
        pipe.send({"ready": storm.ready, "failed": storm.failed, "errors": storm.errors[:5],
                   "seconds": time.perf_counter() - started,
                   "cpu": time.process_time() - cpu})  # fmt: skip
        reported: asyncio.Task | None = None

        async def report_when_back() -> None:
            await storm.all_back.wait()
            pipe.send(storm.report(time.process_time() - cpu))

        while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
            if command == "arm":
                pipe.send({"updates_before": storm.updates})
                storm.arm()
                cpu = time.process_time()
                reported = asyncio.create_task(report_when_back())
            elif command == "report" and reported is not None and not reported.done():
                reported.cancel()
                pipe.send(storm.report(time.process_time() - cpu))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _storm_main(pipe: Any, *args: Any) -> None:
    raise_fd_limit()
    asyncio.run(_storm_load(pipe, *args))


def storm_round(
    pipe: Any, old: DaphneProcess, restarts: ExitStack, folder: Path, number: int, timeout: float
) -> tuple[DaphneProcess, dict[str, Any]]:
    """SIGTERM ``old``, start its replacement on the same port, wait for every client: the
    replacement and the round's figures."""
    pipe.send("arm")
    warmup = pipe.recv()
    signalled, started = time.time(), time.monotonic()
    old.terminate()
    try:
        old.wait(DRAIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        old.stop()  # a second SIGTERM, then SIGKILL
    drained = time.monotonic() - started
    log = folder / f"daphne-restart-{number}.log"
    new = DaphneProcess(HOST, old.port, old.env, log.open("w"), startup=120)
    restarts.enter_context(new)
    healthy = time.monotonic() - started - drained
    startup_cpu = _cpu_seconds(new.pid)
    if not pipe.poll(max(0.0, timeout - (time.monotonic() - started))):
        pipe.send("report")
    report = pipe.recv()
    back = sorted(at - signalled for at in report["back_at"])
    problems = [line for line in log.read_text().splitlines() if " WARNING " in line
                or " ERROR " in line]  # fmt: skip
    figures = {
        "sockets": report["resumed"] + report["snapshotted"] + report["never_back"],
        "resumed": report["resumed"],
        "snapshotted": report["snapshotted"],
        "never_back": report["never_back"],
        "seconds_to_last": back[-1] if back else float("nan"),
        "first_back_s": back[0] if back else float("nan"),
        **{f"p{p}_s": _percentile(back, p / 100) if back else float("nan") for p in (50, 95, 99)},
        "drain_s": drained,
        "restart_to_healthy_s": healthy,
        "last_1001_s": report["last_close"] - signalled if report["last_close"] else float("nan"),
        "refused_attempts": report["refused"],
        "failed_handshakes": report["cut"],
        "missed_updates": report["missed"],
        "updates_before": warmup["updates_before"],
        "updates_after": report["updates"],
        "daphne_startup_cpu_s": startup_cpu,
        "daphne_storm_cpu_s": _cpu_seconds(new.pid) - startup_cpu,
        "loadgen_cpu_s": report["cpu"],
        "server_warnings": len(problems),
        "first_warning": problems[:1],
        "errors": report["errors"],
        "loadavg": loadavg(),
    }
    return new, figures


def reconnect_storm(args: argparse.Namespace) -> dict[str, Any]:
    print(f"fd limit raised to {raise_fd_limit()}; loadavg at start {loadavg()}", flush=True)
    qps = args.quotes_per_second
    with (
        pipeline(args.accounts, SYMBOLS, qps, min(args.sockets, args.accounts)) as run,
        ExitStack() as restarts,
    ):
        urls = [run.url(run.linked[i % len(run.linked)]) for i in range(args.sockets)]
        rounds: list[dict[str, Any]] = []
        with piped_process(_storm_main, urls, run.headers, args.concurrency) as (pipe, _):
            connect = pipe.recv()
            print(f"connect, {len(run.linked)} accounts: {connect}", flush=True)
            daphne = run.daphne
            for number in range(1, args.rounds + 1):
                time.sleep(args.warmup)
                daphne, figures = storm_round(
                    pipe, daphne, restarts, run.base.folder, number, args.timeout
                )
                print(f"round {number} " + " ".join(
                    f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in figures.items()
                ), flush=True)  # fmt: skip
                rounds.append(figures)
        if args.logs:
            keep_logs(run.base.folder, args.logs)
    return {"bench": "reconnect_storm", "sockets": args.sockets, "accounts": args.accounts,
            "linked": len(run.linked), "quotes_per_second": qps, "connect": connect,
            "rounds": rounds, "loadavg": os.getloadavg()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--accounts", type=int, default=10000)
    parser.add_argument("--quotes-per-second", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of updates first")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a round may take")
    parser.add_argument("--logs", type=Path, help="copy every process's log here at the end")
    print(json.dumps(reconnect_storm(parser.parse_args())))


if __name__ == "__main__":
    main()
