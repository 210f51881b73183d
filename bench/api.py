"""REST API benchmark: warm-cache latency of the portfolio page's endpoints, and what a cold
page load costs at Alpaca.

Everything runs for real, started by this script: an embedded Redis, the built-in sandbox (the
world ``bin/run`` serves: ``--accounts 50 --symbols 150 --quotes-per-second 50 --seed 42``), a
database of its own (SQLite in a temporary folder, migrated; one user linked to the first
diversified account, with an API token) and daphne serving ``clera.asgi`` with throttling off.

**calls**: daphne talks to the sandbox through the recording pass-through of the API tests
(``clera/devstack/api_calls.py``), which counts every Broker API request. With Redis flushed,
the page loads once (summary, positions, analytics, history 1M, orders, activities: what the
portfolio page asks for) and then once more, warm.

**latency**: a second daphne talks to the sandbox directly. After one warm-up round, each of
``--rounds`` rounds requests ``/health`` (the baseline: database and Redis round trips, no
broker), summary, positions and analytics in turn, over one keep-alive connection, so any
drift hits them all alike. Reported per endpoint: median, p95 (nearest rank) and max in ms,
and median and p95 as a ratio of /health's. Target: p95 <= 50 ms for the three endpoints.
Summary, positions and analytics each still ask the sandbox for the account and its
positions (prices move; nothing caches them); "warm" means the asset details are cached.

Run from the repository root::

    .venv/bin/python -m bench.api [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import redis
import requests

from clera.devstack.api_calls import PAGE, Recorder
from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.harness import (
    HOST,
    SANDBOX_CREDENTIALS,
    Services,
    django_env,
    start_services,
)
from clera.devstack.local_server import ROOT
from clera.devstack.ports import free_port

WORLD = {"accounts": 50, "symbols": 150, "quotes_per_second": 50, "seed": 42}
TIMED = (
    "/health",
    "/api/portfolio/summary",
    "/api/portfolio/positions",
    "/api/portfolio/analytics",
)

# Migrate a fresh database; one user linked to the given account; print its API token.
SETUP = """
import sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from portfolio.models import BrokerageAccount
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(username="bench")
BrokerageAccount.objects.create(user=user, account_id=sys.argv[1])
print(Token.objects.create(user=user).key)
"""


def nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(share * len(ordered)) - 1]


def daphne(env: dict[str, str], folder: Path, broker_url: str) -> DaphneProcess:
    log = (folder / f"daphne-{free_port()}.log").open("w")
    return DaphneProcess(HOST, free_port(), {**env, "ALPACA_BROKER_URL": broker_url}, log)


def count_calls(env: dict, folder: Path, sandbox: str, token: str, cache: redis.Redis) -> dict:
    """Broker requests of a cold, then a warm, page load."""
    headers = {"Authorization": f"Token {token}"}
    with Recorder(sandbox) as recorder, daphne(env, folder, recorder.url) as server:
        cache.flushdb()
        counts = {}
        for phase in ("cold", "warm"):
            recorder.clear()
            for path in PAGE:
                answer = requests.get(server.origin + path, headers=headers, timeout=30)
                answer.raise_for_status()
            calls = [f"{call.method} {call.path}" for call in recorder.calls]
            counts[phase] = {"calls": len(calls), "requests": sorted(set(calls))}
    return counts


def time_rounds(
    session: requests.Session,
    origin: str,
    paths: Sequence[str],
    headers: dict[str, str],
    rounds: int,
) -> dict[str, list[float]]:
    """Each path's seconds over ``rounds`` rounds requesting ``paths`` in turn, on one keep-alive
    connection so that any drift hits them all alike."""
    seconds: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            started = time.perf_counter()
            answer = session.get(origin + path, headers=headers, timeout=30)
            seconds[path].append(time.perf_counter() - started)
            answer.raise_for_status()
    return seconds


def time_endpoints(env: dict, folder: Path, sandbox: str, token: str, rounds: int) -> dict:
    headers = {"Authorization": f"Token {token}"}
    with daphne(env, folder, sandbox) as server, requests.Session() as session:
        for path in TIMED:  # warm-up: connection, asset cache, imports
            session.get(server.origin + path, headers=headers, timeout=30).raise_for_status()
        seconds = time_rounds(session, server.origin, TIMED, headers, rounds)
    health = seconds["/health"]
    base_median, base_p95 = statistics.median(health), nearest_rank(health, 0.95)
    report = {}
    for path, values in seconds.items():
        median, p95 = statistics.median(values), nearest_rank(values, 0.95)
        report[path] = {
            "median_ms": round(median * 1000, 2),
            "p95_ms": round(p95 * 1000, 2),
            "max_ms": round(max(values) * 1000, 2),
            "median_x_health": round(median / base_median, 2),
            "p95_x_health": round(p95 / base_p95, 2),
        }
    return report


def api_stack(stop: ExitStack, folder: Path) -> tuple[Services, dict[str, str], str, str]:
    """The ``bin/run`` world started (stopped by ``stop``), daphne's environment with throttling
    off, and a database with one user linked to the first diversified account: the services,
    the environment, the account id and the user's API token."""
    services = start_services(stop, WORLD, log=folder / "sandbox.log")
    env = django_env(
        folder / "db.sqlite3",
        **services.settings_env(),
        API_THROTTLE_RATE="none",
        LOG_LEVEL="WARNING",
    )
    account = next(a["id"] for a in services.accounts() if a["shape"] == "diversified")
    token = subprocess.run(
        [sys.executable, "-c", SETUP, account], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=300, check=True,
    ).stdout.split()[-1]  # fmt: skip
    return services, env, account, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with ExitStack() as stop, tempfile.TemporaryDirectory(prefix="bench-api-") as folder_name:
        folder = Path(folder_name)
        services, env, account, token = api_stack(stop, folder)
        sandbox = services.sandbox
        holdings = len(
            requests.get(
                f"{sandbox.origin}/v1/trading/accounts/{account}/positions",
                auth=SANDBOX_CREDENTIALS,
                timeout=10,
            ).json()
        )
        cache = redis.Redis.from_url(services.redis_url)
        calls = count_calls(env, folder, sandbox.origin, token, cache)
        latency = time_endpoints(env, folder, sandbox.origin, token, args.rounds)
        figures = {
            "world": WORLD,
            "account": {"shape": "diversified", "holdings": holdings},
            "rounds": args.rounds,
            "page_load_broker_calls": calls,
            "latency": latency,
            "loadavg": os.getloadavg(),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
