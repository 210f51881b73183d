"""Risk views benchmark: cold and warm latency of ``/api/portfolio/risk``, ``/frontier`` and
``/performance`` for an account of ``--holdings`` holdings (issue 12: warm p95 <= 50 ms, cold
<= 1 s for 30 holdings).

Everything runs for real, as in :mod:`bench.api`: an embedded Redis, the built-in sandbox (the
``bin/run`` world), a database of its own with one user linked to the first diversified
account, and daphne serving ``clera.asgi`` with throttling off. The account is first brought
to ``--holdings`` holdings by market orders for a tenth of a share of stocks it does not hold
(the sandbox fills them within seconds).

**cold**: ``--cold`` times, Redis is flushed (the answers, the daily closes, the asset
details: nothing cached) and each endpoint is requested once — the first asks Alpaca's data
API for a year of bars of every holding. **warm**: after one warm-up request, ``--rounds``
rounds request ``/health`` (the baseline: database and Redis round trips) and the three
endpoints in turn over one keep-alive connection. Reported per endpoint: median, p95 (nearest
rank) and max in ms, and median and p95 as a ratio of /health's.

Run from the repository root::

    .venv/bin/python -m bench.insights [--holdings 30] [--rounds 300] [--cold 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import redis
import requests

from bench.api import WORLD, api_stack, daphne, nearest_rank, time_rounds
from clera.devstack.harness import SANDBOX_CREDENTIALS

ENDPOINTS = (
    "/api/portfolio/risk",
    "/api/portfolio/frontier",
    "/api/portfolio/performance?period=1Y",
)


def fill_to(sandbox: str, account: str, holdings: int) -> int:
    """Buy a tenth of a share of stocks the account lacks until it holds ``holdings``; how
    many it holds."""
    broker = f"{sandbox}/v1"
    positions = f"{broker}/trading/accounts/{account}/positions"
    held = {
        p["symbol"] for p in requests.get(positions, auth=SANDBOX_CREDENTIALS, timeout=10).json()
    }
    assets = requests.get(f"{broker}/assets", auth=SANDBOX_CREDENTIALS, timeout=10).json()
    stocks = sorted(
        a["symbol"]
        for a in assets
        if a["class"] == "us_equity" and a["tradable"] and a["symbol"] not in held
    )
    wanted = max(0, holdings - len(held))
    for symbol in stocks:
        if wanted == 0:
            break
        order = {
            "symbol": symbol,
            "qty": "0.1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        }
        placed = requests.post(
            f"{broker}/trading/accounts/{account}/orders",
            json=order,
            auth=SANDBOX_CREDENTIALS,
            timeout=10,
        )
        wanted -= placed.ok  # refused: not fractionable, or not enough cash
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        count = len(requests.get(positions, auth=SANDBOX_CREDENTIALS, timeout=10).json())
        if count >= holdings:
            return count
        time.sleep(0.5)
    return count


def summary(values: list[float], base: list[float] | None = None) -> dict:
    median, p95 = statistics.median(values), nearest_rank(values, 0.95)
    figures = {
        "median_ms": round(median * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }
    if base:
        figures["median_x_health"] = round(median / statistics.median(base), 2)
        figures["p95_x_health"] = round(p95 / nearest_rank(base, 0.95), 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdings", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cold", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stop, tempfile.TemporaryDirectory(prefix="bench-insights-") as name:
        folder = Path(name)
        services, env, account, token = api_stack(stop, folder)
        sandbox = services.sandbox.origin
        holdings = fill_to(sandbox, account, args.holdings)
        cache = redis.Redis.from_url(services.redis_url)
        headers = {"Authorization": f"Token {token}"}
        cold: dict[str, list[float]] = {path: [] for path in ENDPOINTS}
        with daphne(env, folder, sandbox) as server, requests.Session() as session:
            session.get(server.origin + "/health", timeout=30).raise_for_status()
            for _ in range(args.cold):
                cache.flushdb()
                for path in ENDPOINTS:
                    started = time.perf_counter()
                    session.get(
                        server.origin + path, headers=headers, timeout=60
                    ).raise_for_status()
                    cold[path].append(time.perf_counter() - started)
            warm = time_rounds(
                session, server.origin, ("/health", *ENDPOINTS), headers, args.rounds
            )
        health = warm["/health"]
        figures = {
            "bench": "insights",
            "world": WORLD,
            "holdings": holdings,
            "rounds": args.rounds,
            "cold_runs": args.cold,
            "cold": {path: summary(values) for path, values in cold.items()},
            "warm": {path: summary(values, health) for path, values in warm.items()},
            "targets": {"warm_p95_ms": 50, "cold_ms": 1000},
            "loadavg": os.getloadavg(),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
