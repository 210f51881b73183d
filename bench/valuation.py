"""One push's valuation in-process: incremental (``LiveAccount``) against from scratch.

**Baseline**: what the calculator did before issue 11 for each push — ``entry_inputs`` +
``value_account`` + ``valuation_json`` (Decimal, from scratch). **Ours**:
``LiveAccount.value`` (exact integers, only the holdings whose price moved recomputed) plus
``protocol.changes`` and the orjson encoding of the update and the whole state, as the
calculator does — which applies the price rule once per moved symbol for all its holders
(here ``--accounts`` accounts hold the same ``--holdings`` symbols in random quantities). Along
``--steps`` random price paths ``--moving`` of the symbols move between two pushes (all of
them: the worst case; one: a quiet market), and every account is pushed each step. Best of
``--repeat`` runs each, alternating; no I/O, no Redis (the price rule's setting comes from the
embedded defaults).

Run from the repository root::

    .venv/bin/python -m bench.valuation [--holdings 10] [--accounts 100] [--steps 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from clera.devstack.harness import setup_django

SEED = 11


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option, default in (("holdings", 10), ("accounts", 100), ("steps", 60), ("repeat", 5)):
        parser.add_argument(f"--{option}", type=int, default=default)
    args = parser.parse_args()
    setup_django("redis://127.0.0.1:1/0")  # never connected: nothing here reads Redis
    import orjson

    from marketdata.book import CachedAccount, CachedHolding
    from marketdata.moments import iso
    from marketdata.price_cache import CachedPrice
    from portfolio.live_valuation import LiveAccount, symbol_price
    from portfolio.presenters import valuation_json
    from portfolio.pricing import entry_inputs
    from portfolio.valuation import value_account
    from realtime.protocol import changes

    rng = random.Random(SEED)
    symbols = [f"S{i:03d}" for i in range(args.holdings)]
    entries = [
        CachedAccount(
            f"bench-{n}",
            tuple(
                CachedHolding(
                    symbol,
                    Decimal(rng.randint(1, 400)),
                    Decimal("100.25"),
                    1,
                    "us_equity",
                    Decimal("101.50"),
                    Decimal("100.00"),
                )
                for symbol in symbols
            ),
            Decimal("1000.00"),
            Decimal("60000.00"),
            1,
            None,
            None,
            None,
            None,
        )  # fmt: skip
        for n in range(args.accounts)
    ]
    pushes = args.accounts * args.steps
    now = datetime.now(UTC)
    traded = now - timedelta(seconds=1)

    def path(moving: int) -> list[dict[str, CachedPrice]]:
        prices = {s: Decimal("100.00") for s in symbols}
        steps = []
        for _ in range(args.steps):
            for symbol in rng.sample(symbols, moving):
                prices[symbol] = Decimal(rng.randint(9000, 11000)) / 100
            steps.append(
                {
                    s: CachedPrice(s, trade_price=p, trade_at=traded, prev_close=Decimal(100))
                    for s, p in prices.items()
                }
            )
        return steps

    def baseline(steps: list[dict[str, CachedPrice]]) -> float:
        began = time.perf_counter()
        for cached in steps:
            for entry in entries:
                valuation_json(value_account(entry_inputs(entry, cached, now), now))
        return (time.perf_counter() - began) / pushes

    def ours(steps: list[dict[str, CachedPrice]]) -> float:
        accounts = [LiveAccount(entry) for entry in entries]
        before: list = [None] * len(accounts)
        quotes: dict = {}
        read: dict = {}
        as_of = iso(now)
        began = time.perf_counter()
        for cached in steps:
            for symbol, price in cached.items():  # the rule once per moved symbol, for all
                if read.get(symbol) != price.trade_price:
                    read[symbol] = price.trade_price
                    quotes[symbol] = symbol_price(price, now)
            for n, account in enumerate(accounts):
                state = account.value(quotes, as_of)
                orjson.dumps(changes(before[n], state))
                orjson.dumps(state)
                before[n] = state
        return (time.perf_counter() - began) / pushes

    figures = []
    for moving in sorted({args.holdings, 1}, reverse=True):
        steps = path(moving)
        base = min(baseline(steps) for _ in range(args.repeat))
        live = min(ours(steps) for _ in range(args.repeat))
        print(
            f"{moving} of {args.holdings} holdings moving: from scratch {base * 1e6:,.1f} µs, "
            f"incremental {live * 1e6:,.1f} µs a push ({base / live:.1f}x)"
        )
        figures.append(
            {
                "moving": moving,
                "value": round(live * 1e6, 1),
                "unit": "us_per_push",
                "baseline": round(base * 1e6, 1),
                "ratio": round(base / live, 2),
            }
        )
    print(
        json.dumps(
            {"bench": "valuation", "holdings": args.holdings, "accounts": args.accounts,
             "runs": figures,
             "loadavg": os.getloadavg()}
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
