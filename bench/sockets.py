"""WebSocket benchmarks: (d) idle sockets one daphne process holds, and (c) end to end latency.

Everything runs for real, started by this script: an embedded Redis, the built-in sandbox, a
database of its own (SQLite in a temporary folder, one user linked to the accounts used, signed
in), daphne serving ``clera.asgi``, and — in its own process, so its CPU is its own and is
reported — a load generator of aiohttp WebSocket clients that answer the server's pings. The
file-descriptor limit is raised as far as the hard limit allows before anything starts.

**idle** (d): ``--sockets`` clients connect (``--concurrency`` handshakes at a time) and stay
idle for ``--hold`` seconds — past two server heartbeats, so leases, presence and pings run —
then the script counts the sockets still open and reads daphne's resident memory (VmRSS, from
/proc). Memory per socket = (RSS with the sockets − RSS before them) / sockets. Baseline, in the
same go: the same clients against daphne serving a bare Channels consumer that only accepts
(:data:`baseline_application`) — the floor of daphne + Channels per socket. One symbol
collection runs first, so a snapshot comes from the book as in production. Kinds:
``portfolio`` (``/ws/portfolio/<id>``: snapshot at connect, group membership, presence) and
``stream`` (``/ws/stream``).

**e2e** (c): the whole pipeline — sandbox at ``--quotes-per-second`` over ``--accounts``
accounts, one symbol collection, ``consume_quotes``, ``run_calculator`` and daphne — and
``--clients`` sockets, each on its own account. Latency = receipt time − the exchange timestamp
of the newest trade the update is the first to reflect: the newest ``price_at`` among its
holdings, sampled when it is newer than in the client's previous message (an update after a
quote-only tick revalues at the same last trade, and its newest ``price_at`` says nothing about
when that tick happened). Measured for ``--seconds`` after a warm-up.
Reported: p50/p95/p99/max, updates per second, and the CPU of every process. Target: p99 <=
MIN_UPDATE_INTERVAL + 150 ms.

Run from the repository root::

    .venv/bin/python -m bench.sockets idle [--sockets 10000] [--kind portfolio] [--hold 35]
    .venv/bin/python -m bench.sockets e2e [--clients 1000] [--accounts 10000] \\
        [--quotes-per-second 5000] [--seconds 60] [--logs DIR]

Each line printed also says what went wrong, if anything: the clients' first errors and the
server's warnings. The children log at WARNING (``BENCH_LOG_LEVEL=INFO`` for more); ``e2e
--logs DIR`` keeps every process's log.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clera.devstack.daphne_process import APPLICATION as OURS
from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.harness import HOST, django_env, start_services
from clera.devstack.local_server import ROOT, LocalServer, spawn
from clera.devstack.ports import free_port
from clera.devstack.sandbox_process import SandboxProcess

BASELINE = "bench.sockets:baseline_application"
SEED = 7
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Migrate a fresh database; one user linked to the given accounts, signed in.
SETUP = """
import json, sys, django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from portfolio.models import BrokerageAccount
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(username="bench")
BrokerageAccount.objects.bulk_create(
    BrokerageAccount(user=user, account_id=a) for a in json.loads(sys.stdin.read())
)
client = Client()
client.force_login(user)
print(json.dumps({"cookie": client.cookies[settings.SESSION_COOKIE_NAME].value}))
"""

COLLECT = """
import django, time
django.setup()
from realtime.collection import collect_symbols
started = time.monotonic()
print(collect_symbols(), round(time.monotonic() - started, 1))
"""


def collect(env: dict[str, str]) -> None:
    """One symbol collection: every account's positions and balances into the book."""
    collected = subprocess.run(
        [sys.executable, "-c", COLLECT], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=1200, check=True,
    )  # fmt: skip
    print(f"collection: {collected.stdout.strip()[-200:]}", flush=True)


@functools.cache
def _baseline() -> Any:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter

    from clera.asgi import django_asgi_app

    class Accept(AsyncWebsocketConsumer):
        channel_layer_alias = None

    return ProtocolTypeRouter({"http": django_asgi_app, "websocket": Accept.as_asgi()})


async def baseline_application(scope: dict, receive: Any, send: Any) -> None:
    """The baseline for ``idle``: a bare Channels consumer that accepts and does nothing
    (HTTP still reaches Django, for /health)."""
    await _baseline()(scope, receive, send)


# --- processes ------------------------------------------------------------------------------


class Command(LocalServer):
    """A long-running ``manage.py`` command (the quote consumer, the calculator)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(HOST, 0, startup_timeout=0)
        self.name, self.args, self.env, self.log = name, args, env, log

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", *self.args]

    def popen_options(self) -> dict[str, Any]:
        output = self.log.open("w")
        return {"env": self.env, "cwd": ROOT, "stdout": output, "stderr": subprocess.STDOUT}

    def start(self) -> Command:
        self._process = spawn(self.command(), **self.popen_options())
        return self


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def setup_database(env: dict[str, str], account_ids: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SETUP], input=json.dumps(account_ids), env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["cookie"]


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    sandbox: SandboxProcess
    accounts: list[dict] = field(default_factory=list)


@contextmanager
def stack(
    accounts: int, symbols: int, quotes_per_second: int, extra_env: dict[str, str]
) -> Iterator[tuple[Stack, ExitStack]]:
    """Redis, the sandbox and the environment every child shares."""
    with ExitStack() as stop, tempfile.TemporaryDirectory(prefix="bench-sockets-") as folder:
        path = Path(folder)
        world = dict(
            accounts=accounts, symbols=symbols, quotes_per_second=quotes_per_second, seed=SEED
        )
        services = start_services(stop, world, log=path / "sandbox.log", startup_timeout=600)
        env = django_env(
            path / "db.sqlite3",
            **services.settings_env(),
            LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            WS_MAX_CONNECTIONS_PER_USER="1000000",
            WS_MAX_CONNECTIONS_PER_PROCESS="1000000",
            **extra_env,
        )
        yield Stack(path, env, services.sandbox, services.accounts()), stop


def _daphne(
    env: dict[str, str], folder: Path, application: str, log: str = "daphne"
) -> DaphneProcess:
    output = (folder / f"{log}.log").open("w")
    return DaphneProcess(HOST, free_port(), env, output, startup=120, application=application)


# --- the load generator (its own process) ------------------------------------------------------


def _newest_price_at(data: dict) -> float | None:
    stamps = [h["price_at"] for h in data.get("holdings", ()) if h.get("price_at")]
    return max(datetime.fromisoformat(s).timestamp() for s in stamps) if stamps else None


async def _load(
    pipe: Any, urls: list[str], headers: dict[str, str], concurrency: int, answered: bool
) -> None:
    """Open every socket (a heartbeat first; ``answered``: wait for the server's first message),
    then follow the parent's commands: measure, report, stop."""
    import aiohttp

    connected = ready = closed = failed = 0
    measuring = False
    latencies: list[float] = []
    after_valuation: list[float] = []  # from the update's as_of (its valuation) to receipt
    after_due: list[float] = []  # from when coalescing let the update go (see _split_figures)
    interval = float(os.environ.get("MIN_UPDATE_INTERVAL", "1.0"))
    errors: list[str] = []
    updates = 0
    gate = asyncio.Semaphore(concurrency)
    all_ready = asyncio.Event()

    async def client(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal connected, ready, closed, failed, updates
        try:
            async with gate:
                socket = await session.ws_connect(url, headers=headers, autoping=True)
                connected += 1
                await socket.send_str('{"type":"heartbeat"}')
                first = await socket.receive(timeout=120) if answered else None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            failed += 1
            errors.append(f"connect {error!r}"[:200])
            return
        if first is not None and first.type != aiohttp.WSMsgType.TEXT:
            failed += 1
            errors.append(f"first {first.type} {first.data} {socket.close_code}"[:200])
            return
        newest = _newest_price_at(json.loads(first.data).get("data", {})) if first else None
        newest = newest or 0.0
        pushed = None  # the previous update's valuation time
        ready += 1
        if ready + failed == len(urls):
            all_ready.set()
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                errors.append(f"{message.type} {message.data} {message.extra} {socket.close_code}")
                break
            if '"error"' in message.data[:20]:
                errors.append(message.data[:200])
            body = json.loads(message.data)
            if body["type"] == "ping":
                await socket.send_str('{"type":"pong"}')
            elif body["type"] == "update":
                stamp = _newest_price_at(body["data"])
                valued = datetime.fromisoformat(body["data"]["as_of"]).timestamp()
                if measuring:
                    updates += 1
                    if stamp is not None and stamp > newest:
                        received = time.time()
                        latencies.append(received - stamp)
                        after_valuation.append(received - valued)
                        due = stamp if pushed is None else max(stamp, pushed + interval)
                        after_due.append(received - due)
                pushed = valued
                newest = max(newest, stamp or 0.0)
        errors.append(f"closed {socket.close_code} {socket.exception()}")
        closed += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started, cpu = time.perf_counter(), time.process_time()
        tasks = [asyncio.create_task(client(session, url)) for url in urls]
        with suppress(TimeoutError):
            await asyncio.wait_for(all_ready.wait(), 900)
        loop = asyncio.get_running_loop()
        pipe.send({"ready": ready, "failed": failed, "seconds": time.perf_counter() - started,
                   "cpu": time.process_time() - cpu, "errors": errors[:5]})  # fmt: skip
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "measure":
                latencies.clear()
                after_valuation.clear()
                after_due.clear()
                updates, measuring = 0, True
                wall, cpu = time.perf_counter(), time.process_time()
            elif command == "report":
                pipe.send({
                    "open": ready - closed, "closed": closed, "updates": updates,
                    "errors": errors[:5],
                    "latencies": latencies, "after_valuation": after_valuation,
                    "after_due": after_due,
                    "seconds": time.perf_counter() - wall,
                    "cpu": time.process_time() - cpu,
                })  # fmt: skip
                measuring = False
            elif command == "stop":
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _load_main(pipe: Any, *args: Any) -> None:
    raise_fd_limit()
    asyncio.run(_load(pipe, *args))


@contextmanager
def load_generator(
    urls: list[str], headers: dict[str, str], concurrency: int, answered: bool = True
) -> Iterator[Any]:
    with piped_process(_load_main, urls, headers, concurrency, answered) as running:
        yield running


@contextmanager
def piped_process(target: Callable[..., None], *args: Any) -> Iterator[Any]:
    """``target(pipe, *args)`` in a process of its own (spawned); yields ``(pipe, process)``
    and sends it ``"stop"`` when the block ends."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=target, args=(child, *args), daemon=True
    )
    process.start()
    try:
        yield parent, process
    finally:
        parent.send("stop")
        process.join(60)
        if process.is_alive():
            process.kill()


# --- (d) idle sockets -------------------------------------------------------------------------


def _idle_round(
    base: Stack, cookie: str, kind: str, application: str, args: argparse.Namespace
) -> dict:
    name = f"daphne-{kind}-{'ours' if application == OURS else 'baseline'}"
    daphne = _daphne(base.env, base.folder, application, name)
    with daphne:
        origin = daphne.origin
        if kind == "portfolio":
            linked = [a["id"] for a in base.accounts[: args.linked]]
            paths = [f"/ws/portfolio/{linked[i % len(linked)]}" for i in range(args.sockets)]
        else:
            paths = ["/ws/stream"] * args.sockets
        headers = {"Origin": origin, "Cookie": f"sessionid={cookie}"}
        urls = [f"ws://{HOST}:{daphne.port}{p}" for p in paths]
        ours = application == OURS
        with load_generator(urls[:50], headers, 50, ours) as (pipe, _):  # warm code and pools
            pipe.recv()
        time.sleep(2)
        before = rss_kb(daphne.pid)
        cpu_before = _cpu_seconds(daphne.pid)
        with load_generator(urls, headers, args.concurrency, ours) as (pipe, _):
            connect = pipe.recv()
            pipe.send("measure")
            time.sleep(args.hold)
            pipe.send("report")
            held = pipe.recv()
            after = rss_kb(daphne.pid)
        problems = [
            line for line in (base.folder / f"{name}.log").read_text().splitlines()
            if " WARNING " in line or " ERROR " in line
        ]  # fmt: skip
        return {
            "kind": kind,
            "app": "ours" if ours else "baseline",
            "sockets": args.sockets,
            "ready": connect["ready"],
            "failed": connect["failed"],
            "connect_seconds": connect["seconds"],
            "open_after_hold": held["open"],
            "errors": connect["errors"] + held["errors"],
            "server_warnings": len(problems),
            "first_warning": problems[:1],
            "rss_before_mb": before / 1024,
            "rss_after_mb": after / 1024,
            "kb_per_socket": (after - before) / max(1, connect["ready"]),
            "daphne_cpu_s": _cpu_seconds(daphne.pid) - cpu_before,
            "loadgen_cpu_s": connect["cpu"] + held["cpu"],
            "loadavg": loadavg(),
        }


def idle(args: argparse.Namespace) -> None:
    print(f"fd limit raised to {raise_fd_limit()}; loadavg at start {loadavg()}")
    with stack(args.accounts, 150, 50, {}) as (base, _):
        chosen = [a for a in base.accounts if a["shape"] != "empty"]
        base.accounts = chosen
        cookie = setup_database(base.env, [a["id"] for a in chosen[: args.linked]])
        collect(base.env)  # as in production: snapshots come from the book, not the broker
        rounds: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            for kind in args.kind.split(","):
                for application in (BASELINE, OURS):
                    result = _idle_round(base, cookie, kind, application, args)
                    print(f"round {round_number} " + " ".join(
                        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in result.items()
                    ), flush=True)  # fmt: skip
                    rounds.append(result)
    print(json.dumps({"bench": "sockets.idle", "rounds": rounds, "loadavg": os.getloadavg()}))


# --- (c) end to end ---------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _split_figures(after_valuation: list[float], after_due: list[float]) -> dict[str, float]:
    """Where the latency goes. *Due → client*: from when coalescing let the update go — the
    newest trade it reflects, or, when that trade came within MIN_UPDATE_INTERVAL of the
    account's previous update, that interval's end (the previous ``as_of`` + the interval) —
    to receipt: the pipeline's own delay, without the wait the interval imposes by design (an
    account whose holdings trade all the time is pushed at each interval's end, and the newest
    trade then is as old as the gap since it). *Valued → client*: from the update's ``as_of``
    (its valuation) to receipt — publishing, the channel layer, daphne, the socket."""
    figures: dict[str, float] = {}
    for name, values in (("due_to_client", after_due), ("valued_to_client", after_valuation)):
        if values:
            figures[f"{name}_p50_ms"] = 1000 * _percentile(values, 0.50)
            figures[f"{name}_p99_ms"] = 1000 * _percentile(values, 0.99)
    return figures


#: What the pipeline runs with: the SIP feed and no symbol limit, so every symbol streams.
PIPELINE_ENV = {
    "ALPACA_DATA_FEED": "sip",
    "QUOTE_STREAM_SYMBOL_LIMIT": "0",
    "SYMBOL_COLLECTION_INTERVAL": "1200",
    "ACCOUNT_FETCH_CONCURRENCY": "16",
}


@dataclass
class Pipeline:
    """The whole pipeline, running: the user's session cookie, the accounts linked to the user
    (each with holdings), and every process by name."""

    base: Stack
    daphne: DaphneProcess
    cookie: str
    linked: list[str]
    processes: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Origin": self.daphne.origin, "Cookie": f"sessionid={self.cookie}"}

    def url(self, account_id: str) -> str:
        return f"ws://{HOST}:{self.daphne.port}/ws/portfolio/{account_id}"


@contextmanager
def pipeline(
    accounts: int, symbols: int, quotes_per_second: int, linked: int, **settings: str
) -> Iterator[Pipeline]:
    """Redis, the sandbox, a user linked to ``linked`` accounts with holdings, one symbol
    collection, ``consume_quotes``, ``run_calculator`` and daphne (every process with
    ``settings`` in its environment), until the block ends."""
    started = time.monotonic()
    environment = {**PIPELINE_ENV, **settings}
    with stack(accounts, symbols, quotes_per_second, environment) as (base, stop):
        print(f"sandbox up in {time.monotonic() - started:.0f}s", flush=True)
        watched = [a["id"] for a in base.accounts if a["shape"] not in ("empty", "cash_only")]
        watched = watched[:linked]
        cookie = setup_database(base.env, watched)
        collect(base.env)
        quotes = stop.enter_context(
            Command("quotes", ["consume_quotes"], base.env, base.folder / "quotes.log")
        )
        calculator = stop.enter_context(
            Command("calculator", ["run_calculator"], base.env, base.folder / "calculator.log")
        )
        daphne = stop.enter_context(_daphne(base.env, base.folder, OURS))
        processes = {"sandbox": base.sandbox, "quotes": quotes, "calculator": calculator,
                     "daphne": daphne}  # fmt: skip
        yield Pipeline(base, daphne, cookie, watched, processes)


def keep_logs(folder: Path, target: Path) -> None:
    """Copy every process's log from ``folder`` to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        shutil.copy(log, target / log.name)


def e2e(args: argparse.Namespace) -> None:
    print(f"fd limit raised to {raise_fd_limit()}; loadavg at start {loadavg()}")
    with pipeline(args.accounts, args.symbols, args.quotes_per_second, args.clients) as run:
        urls = [run.url(a) for a in run.linked]
        headers, processes = run.headers, run.processes
        rounds: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            with load_generator(urls, headers, args.concurrency) as (pipe, _):
                connect = pipe.recv()
                time.sleep(args.warmup)
                cpu = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
                pipe.send("measure")
                time.sleep(args.seconds)
                pipe.send("report")
                report = pipe.recv()
                used = {name: _cpu_seconds(p.pid) - cpu[name] for name, p in processes.items()}
            latencies = report["latencies"]
            seconds = report["seconds"]
            figures = {
                "clients": connect["ready"],
                "failed": connect["failed"],
                "updates_per_s": report["updates"] / seconds,
                "samples": len(latencies),
                "p50_ms": 1000 * _percentile(latencies, 0.50) if latencies else float("nan"),
                "p95_ms": 1000 * _percentile(latencies, 0.95) if latencies else float("nan"),
                "p99_ms": 1000 * _percentile(latencies, 0.99) if latencies else float("nan"),
                "max_ms": 1000 * max(latencies) if latencies else float("nan"),
                "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
                **_split_figures(report["after_valuation"], report["after_due"]),
                "loadgen_cpu": report["cpu"] / seconds,
                **{f"{name}_cpu": used[name] / seconds for name in processes},
                "loadavg": loadavg(),
            }
            print(f"round {round_number} " + " ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
            ), flush=True)  # fmt: skip
            rounds.append(figures)
        if args.logs:
            keep_logs(run.base.folder, args.logs)
    print(json.dumps({"bench": "sockets.e2e", "rounds": rounds, "loadavg": os.getloadavg()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    idle_parser = commands.add_parser("idle", help="(d) idle sockets per daphne process")
    idle_parser.add_argument("--sockets", type=int, default=10000)
    idle_parser.add_argument("--kind", default="portfolio,stream")
    idle_parser.add_argument("--hold", type=float, default=35.0)
    idle_parser.add_argument("--accounts", type=int, default=200)
    idle_parser.add_argument("--linked", type=int, default=50)
    idle_parser.add_argument("--concurrency", type=int, default=200)
    idle_parser.add_argument("--rounds", type=int, default=1)
    e2e_parser = commands.add_parser("e2e", help="(c) quote-to-screen latency")
    e2e_parser.add_argument("--clients", type=int, default=1000)
    e2e_parser.add_argument("--accounts", type=int, default=10000)
    e2e_parser.add_argument("--symbols", type=int, default=150)
    e2e_parser.add_argument("--quotes-per-second", type=int, default=5000)
    e2e_parser.add_argument("--seconds", type=float, default=60.0)
    e2e_parser.add_argument("--warmup", type=float, default=10.0)
    e2e_parser.add_argument("--concurrency", type=int, default=100)
    e2e_parser.add_argument("--rounds", type=int, default=2)
    e2e_parser.add_argument("--logs", type=Path, help="copy every process's log here at the end")
    args = parser.parse_args()
    idle(args) if args.command == "idle" else e2e(args)


if __name__ == "__main__":
    main()
