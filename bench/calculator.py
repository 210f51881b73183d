"""Calculator ticks per second at 1k, 10k and 100k accounts, against the seed-002 design.

A *tick* is one changed symbol named on ``clera:changes`` and processed end to end: the watched
accounts holding it revalued and published (coalesced: at most one push per account per
MIN_UPDATE_INTERVAL, the last state always delivered).

For each book size, one embedded Redis (emptied between sizes) holds:

* the account book, populated through ``marketdata/book/``'s own API (``store_collection``,
  ``store_balances``): ``--symbols`` symbols, ``--positions`` random holdings per account;
* the price cache: a fresh trade and a previous close for every symbol;
* ``--live`` accounts with a live socket (``presence.join``, with a day's PRESENCE_TTL as no
  heartbeat refreshes them) — the same number at every size,
  so the figures show what the size of the book costs. (The issue's end-to-end scenario has
  1,000 sockets over 10,000 accounts.) ``--live 0`` watches every account.

**Ours**: ``realtime.calculator.Calculator`` in this process, pass after pass, while a producer
*process* writes trades exactly as the quote consumer does (``PriceCache.write_batch``: the
price hashes and one ``clera:changes`` entry per flush) at ``--rates`` ticks/s for
``--seconds`` (``--names-only``: a stress test writing only the ``clera:changes`` entries,
prices unchanged, so the producer is no longer the limit). ``--partitions N`` runs N calculator
processes (``Calculator(k, N)``) instead of one in this process. Reported: ticks consumed per
second, pushes per second, the lag from an entry's stream id to the end of the pass that read
it (p50/p99/max, after the first WARM_UP seconds), and the calculators' CPU (the producer runs
elsewhere). A rate is *sustained* when every tick written was consumed and the p99 lag stayed
under MIN_UPDATE_INTERVAL.

**Seed baseline** (seed 002's ``listen_for_price_updates``, run faithfully against the same
Redis, in this process, one tick after another): per tick ``KEYS account_positions:*``, a
``GET`` and ``json.loads`` of every account to find the holders, then for each holder not
updated within 2 s ``calculate_portfolio_value`` — its positions ``GET`` again, one
``GET price:<symbol>`` per position, and the cash (the seed asks the broker's REST API; here a
Redis ``GET``, which only flatters the baseline) — and a ``PUBLISH``. Run for
``--baseline-seconds`` (at least one tick).

Run from the repository root::

    .venv/bin/python -m bench.calculator [--sizes 1000,10000,100000] [--live 1000] \\
        [--rates 5000,20000,50000] [--seconds 8] [--partitions 1] [--names-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.harness import setup_django

# Nobody heartbeats here: the watched accounts must stay watched for the whole run.
os.environ.setdefault("PRESENCE_TTL", "86400")

SEED = 7
FLUSH_SECONDS = 0.05  # the quote consumer's QUOTE_FLUSH_SECONDS default
SEED_MIN_UPDATE_INTERVAL = 2.0  # seed 002's min_update_interval
#: Seconds of each run whose lags are not counted: every watched account is due at once when
#: the ticks start (they were all pushed by the full pass just before), a burst that steady
#: operation spreads over the interval.
WARM_UP = 2.0


@dataclass
class OursResult:
    rate: int
    ticks_per_second: float
    offered_per_second: float
    pushes_per_second: float
    lag_p50: float
    lag_p99: float
    lag_max: float
    cpu_cores: float
    sustained: bool


def _symbols(count: int) -> list[str]:
    return [f"S{i:04d}" for i in range(count)]


def _account_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def _price(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(500, 50_000)) / 100


def populate(accounts: int, symbols: int, positions: int, live: int) -> list[str]:
    """Fill the book, the price cache, presence and the seed's own keys; returns live ids."""
    from marketdata import book
    from marketdata.price_cache import PriceCache, trade_fields
    from marketdata.store import redis_client
    from marketdata.types import Position
    from realtime import presence

    rng = random.Random(SEED)
    names = _symbols(symbols)
    now = datetime.now(UTC)
    client = redis_client()
    book_positions = {}
    seed_pipe = client.pipeline(transaction=False)
    for index in range(accounts):
        account_id = _account_id(index)
        held = []
        for symbol in rng.sample(names, positions):
            price = _price(rng)
            qty = Decimal(rng.randint(1, 300))
            held.append(
                Position(account_id, "asset", symbol, "us_equity", "NASDAQ", "long", qty,
                         price, qty * price, qty * price, price, price, None, None, None, None,
                         qty)
            )  # fmt: skip
        book_positions[account_id] = held
        seed_pipe.set(
            f"account_positions:{account_id}",
            json.dumps([{"symbol": p.symbol, "qty": str(p.qty),
                         "current_price": str(p.current_price)} for p in held]),
        )  # fmt: skip
        seed_pipe.set(f"account_cash:{account_id}", "1000.00")
        if index % 5000 == 4999:
            seed_pipe.execute()
    seed_pipe.execute()
    book.store_collection(book_positions, now, client=client)  # one collection, as in production
    for account_id in book_positions:
        book.store_balances(account_id, Decimal("1000.00"), Decimal("250000.00"), now, 1, 0)
    cache = PriceCache(client)
    trades = {symbol: trade_fields(_price(rng), 100, now) for symbol in names}
    cache.write_batch({}, trades, {})
    cache.set_prev_close({symbol: _price(rng) for symbol in names})
    seed_pipe = client.pipeline(transaction=False)
    for symbol, fields in trades.items():
        seed_pipe.set(f"price:{symbol}", fields["trade_price"])
    seed_pipe.execute()
    ids = list(book_positions)
    watched = ids if live == 0 else rng.sample(ids, min(live, accounts))
    for account_id in watched:
        presence.join(account_id, "bench")
    assert len(book.accounts_holding(names, client)) == accounts, "the book lost holdings"
    return watched


def holders_path_seconds(symbols: int) -> float:
    """What finding the watched holders of every symbol costs through Redis: the holders
    index (``book.accounts_holding``, one SUNION) and presence (``presence.live``, one
    ZMSCORE) — the per-pass cost when the whole market moves, were the calculator to ask Redis
    instead of its in-memory index of the watched accounts."""
    from marketdata import book
    from realtime import presence

    began = time.perf_counter()
    presence.live(book.accounts_holding(_symbols(symbols)))
    return time.perf_counter() - began


def _producer(
    url: str,
    symbols: int,
    rate: int,
    seconds: float,
    names_only: bool,
    barrier: object,
    produced: object,
) -> None:
    """Child process: write random trades as the quote consumer does (or, ``names_only``, just
    the ``clera:changes`` entries naming them), at ``rate`` ticks/s or as fast as it can;
    counts the ticks written in ``produced``."""
    setup_django(url)
    from marketdata.price_cache import PriceCache, add_changes, trade_fields
    from marketdata.store import redis_client

    rng = random.Random(SEED + rate)
    names = _symbols(symbols)
    per_flush = min(symbols, max(1, round(rate * FLUSH_SECONDS)))
    every = per_flush / rate
    cache = PriceCache()
    client = redis_client()
    barrier.wait(120)  # every calculator has done its full pass
    begin = time.perf_counter()
    flushes = 0
    while time.perf_counter() - begin < seconds:
        chosen = rng.sample(names, per_flush)
        if names_only:
            add_changes(client, symbols=chosen)
        else:
            now = datetime.now(UTC)
            cache.write_batch({}, {s: trade_fields(_price(rng), 10, now) for s in chosen}, {})
        flushes += 1
        produced.value += per_flush
        pause = begin + flushes * every - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


async def _calculate(partition: int, partitions: int, barrier: object, done: object) -> dict:
    """Run one calculator: its full pass, then (all at ``barrier``) until ``done`` and the
    stream is drained."""
    from realtime.calculator import Calculator

    calculator = Calculator(partition, partitions)
    await calculator.start()
    while (await calculator.step(block_ms=50)).waiting:
        pass  # the full pass: warms connections and caches
    await asyncio.to_thread(barrier.wait, 120)
    wall, cpu = time.perf_counter(), time.process_time()
    ticks = pushes = quiet = 0
    lags = []
    while not done.is_set() or quiet < 3:
        report = await calculator.step(block_ms=200)
        ticks += report.ticks
        pushes += report.pushed
        if report.lag is not None and time.perf_counter() - wall > WARM_UP:
            lags.append(report.lag)
        busy = report.entries or report.waiting or not done.is_set()
        quiet = 0 if busy else quiet + 1
    return {
        "ticks": ticks,
        "pushes": pushes,
        "lags": lags,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
    }


def _calculator_child(
    url: str, partition: int, partitions: int, barrier: object, done: object, results: object
) -> None:
    setup_django(url)
    results.put(asyncio.run(_calculate(partition, partitions, barrier, done)))


def run_ours(
    url: str, symbols: int, rate: int, seconds: float, partitions: int, names_only: bool
) -> OursResult:
    """The producer and ``partitions`` calculators (partition 0 in this process when alone)."""
    from django.conf import settings

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(partitions + 1)
    done = context.Event()
    produced = context.Value("q", 0)
    results = context.Queue()
    producer = context.Process(
        target=_producer, args=(url, symbols, rate, seconds, names_only, barrier, produced)
    )
    children = [
        context.Process(target=_calculator_child, args=(url, k, partitions, barrier, done, results))
        for k in range(partitions if partitions > 1 else 0)
    ]
    for child in children:
        child.start()

    async def alone() -> dict:
        async def finish() -> None:
            await asyncio.to_thread(producer.join)
            done.set()

        watcher = asyncio.create_task(finish())
        result = await _calculate(0, 1, barrier, done)
        await watcher
        return result

    producer.start()
    if partitions > 1:
        producer.join()
        done.set()
        runs = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join()
    else:
        runs = [asyncio.run(alone())]
    offered = produced.value
    ticks = min(run["ticks"] for run in runs)  # every partition reads every tick
    wall = max(run["wall"] for run in runs)
    lags = sorted(lag for run in runs for lag in run["lags"])
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
    return OursResult(
        rate=rate,
        ticks_per_second=ticks / seconds,
        offered_per_second=offered / seconds,
        pushes_per_second=sum(run["pushes"] for run in runs) / wall,
        lag_p50=statistics.median(lags) if lags else 0.0,
        lag_p99=p99,
        lag_max=lags[-1] if lags else 0.0,
        cpu_cores=sum(run["cpu"] for run in runs) / wall,
        sustained=ticks >= 0.98 * offered and p99 < settings.MIN_UPDATE_INTERVAL,
    )


def run_baseline(symbols: int, seconds: float) -> tuple[float, int]:
    """Seed 002's calculator, tick after tick, for ``seconds`` (at least one tick)."""
    from marketdata.store import redis_client

    client = redis_client()
    rng = random.Random(SEED)
    names = _symbols(symbols)
    last_update: dict[str, float] = {}

    def accounts_for_symbol(symbol: str) -> list[str]:
        holders = []
        for key in client.keys("account_positions:*"):
            account_id = key.decode().split(":")[1]
            raw = client.get(key)
            if raw and any(p["symbol"] == symbol for p in json.loads(raw)):
                holders.append(account_id)
        return holders

    def calculate_portfolio_value(account_id: str) -> dict:
        positions = json.loads(client.get(f"account_positions:{account_id}"))
        value = float(client.get(f"account_cash:{account_id}"))
        for position in positions:
            latest = client.get(f"price:{position['symbol']}")
            price = float(latest) if latest else float(position["current_price"])
            value += float(position["qty"]) * price
        return {"account_id": account_id, "total_value": f"${value:.2f}"}

    ticks = 0
    begin = time.perf_counter()
    while ticks == 0 or time.perf_counter() - begin < seconds:
        symbol = rng.choice(names)
        now = time.monotonic()
        for account_id in accounts_for_symbol(symbol):
            if now - last_update.get(account_id, -math.inf) > SEED_MIN_UPDATE_INTERVAL:
                data = calculate_portfolio_value(account_id)
                client.publish("portfolio_updates", json.dumps(data))
                last_update[account_id] = now
        ticks += 1
    return ticks / (time.perf_counter() - begin), ticks


def _loadavg() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--live", type=int, default=1000)
    parser.add_argument("--rates", default="5000,20000,50000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--names-only", action="store_true")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    rates = [int(r) for r in options.rates.split(",")]
    print(f"loadavg at start: {_loadavg()}")
    best: dict[int, float] = {}
    figures: list[dict] = []
    server = EmbeddedRedis(port=0).start()
    setup_django(server.url)
    from marketdata.store import redis_client

    try:
        for size in sizes:
            redis_client().flushall()
            began = time.perf_counter()
            watched = populate(size, options.symbols, options.positions, options.live)
            print(
                f"\n{size:,} accounts, {options.symbols:,} symbols, {options.positions} "
                f"positions each, {len(watched):,} watched (populated in "
                f"{time.perf_counter() - began:.0f} s)"
            )
            holders = min(holders_path_seconds(options.symbols) for _ in range(3))
            print(f"  holders index + presence for every symbol: {holders * 1000:,.0f} ms a pass")
            base_rate, base_ticks = run_baseline(options.symbols, options.baseline_seconds)
            print(f"  seed baseline: {base_rate:,.2f} ticks/s ({base_ticks} ticks)  "
                  f"loadavg {_loadavg()}")  # fmt: skip
            for rate in rates:
                result = run_ours(
                    server.url,
                    options.symbols,
                    rate,
                    options.seconds,
                    options.partitions,
                    options.names_only,
                )
                if result.sustained:
                    best[size] = max(best.get(size, 0.0), result.ticks_per_second)
                figures.append(
                    {
                        "accounts": size,
                        "watched": len(watched),
                        "rate": rate,
                        "ticks_per_second": round(result.ticks_per_second),
                        "baseline_ticks_per_second": round(base_rate, 2),
                        "ratio": round(result.ticks_per_second / base_rate),
                        "pushes_per_second": round(result.pushes_per_second),
                        "pushes_per_core": round(result.pushes_per_second / result.cpu_cores),
                        "lag_ms": [round(result.lag_p50 * 1000), round(result.lag_p99 * 1000)],
                        "cores": round(result.cpu_cores, 2),
                        "sustained": result.sustained,
                    }
                )
                print(
                    f"  ours @ {rate:>6,}/s asked, {result.offered_per_second:>7,.0f}/s written: "
                    f"{result.ticks_per_second:>7,.0f} ticks/s "
                    f"({result.ticks_per_second / base_rate:>10,.0f}x baseline), "
                    f"{result.pushes_per_second:>6,.0f} pushes/s, lag p50/p99/max "
                    f"{result.lag_p50 * 1000:.0f}/{result.lag_p99 * 1000:.0f}/"
                    f"{result.lag_max * 1000:.0f} ms, calculator CPU "
                    f"{result.cpu_cores:.2f} cores, "
                    f"{'sustained' if result.sustained else 'NOT sustained'}  "
                    f"loadavg {_loadavg()}"
                )
    finally:
        server.stop()
    if len(best) == len(sizes) and sizes:
        smallest, largest = min(sizes), max(sizes)
        print(
            "\nhighest sustained rate: "
            + ", ".join(f"{size:,}: {best[size]:,.0f}/s" for size in sizes)
            + f"; {largest:,} vs {smallest:,}: {best[smallest] / best[largest]:.2f}x slower"
        )
    print(
        json.dumps(
            {"bench": "calculator", "partitions": options.partitions, "runs": figures,
             "loadavg": os.getloadavg()}
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
