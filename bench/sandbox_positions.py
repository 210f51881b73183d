"""What the bulk positions call costs against a 10,000-account sandbox.

Symbol collection calls ``GET /v1/accounts/positions`` (every account's positions in one
response) every minute. This starts ``manage.py sandbox --accounts 10000 --symbols 1000`` at a
low quote rate on a free port and times that call N times along three paths:

* raw HTTP (``requests``, Basic auth): transport and reading the body;
* ``BrokerClient(raw_data=True).get_all_accounts_positions()``: plus the SDK's JSON decode;
* ``BrokerClient(raw_data=False)``: plus the SDK's pydantic models.

The baseline, timed the same way along the same path in the same run, is ``GET /v1/clock``:
the per-request floor. Each series starts with one untimed warm-up call. The sandbox's CPU
seconds per request come from ``/_sandbox/stats`` deltas around each timed series; they include
the quote pump's background work and are read to the millisecond, so the clock's figure sits
at that floor and gets no ratio.

Run from the repository root::

    .venv/bin/python -m bench.sandbox_positions [--requests 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import requests
from alpaca.broker import BrokerClient
from alpaca.trading.models import AllAccountsPositions

from clera.devstack.harness import SANDBOX_CREDENTIALS, start_sandbox

logger = logging.getLogger("bench.sandbox_positions")

ACCOUNTS = 10_000
SYMBOLS = 1_000
SEED = 42
TIMEOUT = 120.0
ENDPOINTS = {"clock": "/v1/clock", "positions": "/v1/accounts/positions"}

#: One way to make a call: endpoint name in, whatever that path hands its caller out.
Fetch = Callable[[str], Any]


@dataclass(frozen=True)
class Series:
    """One endpoint timed N times along one path."""

    path: str
    endpoint: str
    seconds: list[float]
    size: int | None  # response bytes, where the path sees them
    positions: int | None
    sandbox_cpu: float  # sandbox CPU seconds per request

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        """Nearest-rank 95th percentile (the slowest call when N < 20)."""
        ordered = sorted(self.seconds)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


def describe(answer: Any) -> tuple[int | None, int | None]:
    """Response size and position count of one answer, whatever the path returned."""
    size = len(answer) if isinstance(answer, bytes) else None
    if isinstance(answer, bytes):
        answer = json.loads(answer)
    if isinstance(answer, AllAccountsPositions):
        return size, sum(len(held) for held in answer.positions.values())
    if isinstance(answer, dict) and "positions" in answer:
        return size, sum(len(held) for held in answer["positions"].values())
    return size, None


def raw_fetch(session: requests.Session, origin: str) -> Fetch:
    """Plain HTTP: the timing covers the request and reading the body, not decoding it."""

    def fetch(endpoint: str) -> bytes:
        response = session.get(f"{origin}{ENDPOINTS[endpoint]}", timeout=TIMEOUT)
        response.raise_for_status()
        return response.content

    return fetch


def sdk_fetch(origin: str, raw_data: bool) -> Fetch:
    """The real ``BrokerClient``, as symbol collection uses it."""
    client = BrokerClient(*SANDBOX_CREDENTIALS, raw_data=raw_data, url_override=origin)
    calls = {"clock": client.get_clock, "positions": client.get_all_accounts_positions}
    return lambda endpoint: calls[endpoint]()


def sandbox_cpu(session: requests.Session, origin: str) -> float:
    response = session.get(f"{origin}/_sandbox/stats", timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["cpu_seconds"]


def time_series(
    session: requests.Session, origin: str, path: str, fetch: Fetch, endpoint: str, n: int
) -> Series:
    """One untimed warm-up, then ``n`` timed calls bracketed by sandbox CPU readings."""
    fetch(endpoint)
    cpu_before = sandbox_cpu(session, origin)
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        answer = fetch(endpoint)
        seconds.append(time.perf_counter() - started)
    cpu = (sandbox_cpu(session, origin) - cpu_before) / n
    size, positions = describe(answer)
    return Series(path, endpoint, seconds, size, positions, cpu)


def measure(n: int, quotes_per_second: int) -> list[Series]:
    """Start the sandbox and time both endpoints along every path, baseline first."""
    world = dict(accounts=ACCOUNTS, symbols=SYMBOLS, quotes_per_second=quotes_per_second, seed=SEED)
    with ExitStack() as running, requests.Session() as session:
        sandbox = start_sandbox(running, world, startup_timeout=300)
        session.auth = SANDBOX_CREDENTIALS
        paths = {
            "raw HTTP": raw_fetch(session, sandbox.origin),
            "SDK raw_data=True": sdk_fetch(sandbox.origin, raw_data=True),
            "SDK raw_data=False": sdk_fetch(sandbox.origin, raw_data=False),
        }
        return [
            time_series(session, sandbox.origin, path, fetch, endpoint, n)
            for path, fetch in paths.items()
            for endpoint in ENDPOINTS
        ]


def report(series: list[Series], n: int, quotes_per_second: int) -> None:
    """One row per path and endpoint; ratios are against the clock along the same path."""
    logger.info(
        "%d accounts, %d symbols, %d quotes/s; %d timed calls per row; ratio = / clock, same path",
        ACCOUNTS,
        SYMBOLS,
        quotes_per_second,
        n,
    )
    logger.info(
        "%-19s %-9s %9s %9s %8s %8s %11s %9s %11s",
        "path",
        "endpoint",
        "median s",
        "p95 s",
        "x median",
        "x p95",
        "bytes",
        "positions",
        "sandbox cpu",
    )
    clocks = {s.path: s for s in series if s.endpoint == "clock"}
    for s in series:
        base = clocks[s.path]
        logger.info(
            "%-19s %-9s %9.4f %9.4f %8.1f %8.1f %11s %9s %11.4f",
            s.path,
            s.endpoint,
            s.median,
            s.p95,
            s.median / base.median,
            s.p95 / base.p95,
            "-" if s.size is None else f"{s.size:,}",
            "-" if s.positions is None else f"{s.positions:,}",
            s.sandbox_cpu,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5, help="timed calls per row")
    parser.add_argument("--quotes-per-second", type=int, default=200)
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    series = measure(args.requests, args.quotes_per_second)
    report(series, args.requests, args.quotes_per_second)


if __name__ == "__main__":
    main()
