"""``group_send`` throughput of the channel layers, from one process.

Compares, against one embedded real Redis started for the run, in one go:

* ``channels_redis.core.RedisChannelLayer`` (classic) — the baseline;
* ``channels_redis.pubsub.RedisPubSubChannelLayer`` (pub/sub);
* ``realtime.layers.PubSubChannelLayer.group_send_many`` (pub/sub, pipelined batches).

Each sends one portfolio-update-sized message (a 10-holding valuation) to each of ``--groups``
distinct groups, in three ways: one ``await`` after another; ``asyncio.gather`` in chunks of
100 (the layers' pool size); and (the batched layer only) one ``group_send_many`` per
``--batch`` groups. Two scenarios:
nobody receiving (no group has a member), and every group having one member (a channel of the
same layer kind in a child process, which drains what arrives, so messages really travel).

Run from the repository root::

    .venv/bin/python -m bench.channel_layers [--groups 5000] [--batch 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.harness import setup_django

PAYLOAD_HOLDINGS = 10
GATHER_CHUNK = 100


def _payload() -> dict:
    holding = {
        "symbol": "AAPL",
        "qty": "12.5",
        "price": "187.23",
        "market_value": "2340.38",
        "cost_basis": "2100.00",
        "unrealized_pl": "240.38",
        "unrealized_pl_percent": "11.45",
        "day_change": "12.50",
        "day_change_percent": "0.54",
        "weight_percent": "9.87",
        "price_source": "trade",
        "price_at": "2026-11-20T15:00:00.123456Z",
    }
    return {
        "account_id": "3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b",
        "total_value": "23712.40",
        "cash": "1200.00",
        "positions_value": "22512.40",
        "today_return": "120.11",
        "today_return_percent": "0.51",
        "as_of": "2026-11-20T15:00:00.200000Z",
        "holdings": [holding] * PAYLOAD_HOLDINGS,
    }


def _layers(url: str) -> dict[str, object]:
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from realtime.layers import PubSubChannelLayer

    return {
        "classic": RedisChannelLayer(hosts=[url]),
        "pubsub": RedisPubSubChannelLayer(hosts=[url]),
        "pubsub+batch": PubSubChannelLayer(hosts=[url]),
    }


async def _timed(send: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.perf_counter()
    await send()
    return count / (time.perf_counter() - started)


def _receiver(url: str, kind: str, groups: list[str], ready: object, stop: object) -> None:
    """Child process: one member channel per group, drained until told to stop."""
    setup_django(url)

    async def run() -> None:
        layer = _layers(url)[kind]
        channels = []
        for group in groups:
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            channels.append(channel)
        ready.set()
        if kind == "classic":
            # Members' messages wait in Redis lists (capacity 100 each): nothing to drain.
            while not stop.is_set():
                await asyncio.sleep(0.1)
            return
        receivers = [asyncio.create_task(_drain(layer, c)) for c in channels]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        assert all(not task.done() for task in receivers)

    asyncio.new_event_loop().run_until_complete(run())
    # Leave without the layers' per-channel cleanup (thousands of UNSUBSCRIBEs on the way out,
    # noisy once the loop stops): the process and its connections simply end.
    os._exit(0)


async def _drain(layer: object, channel: str) -> None:
    while True:
        await layer.receive(channel)


async def _scenario(layer: object, groups: list[str], batch: int) -> dict:
    message = {"type": "portfolio.update", "seq": 1, "payload": _payload()}

    async def one_by_one() -> None:
        for group in groups:
            await layer.group_send(group, message)

    async def gathered() -> None:
        # In chunks of the layer's connection pool size (100): the classic layer takes one
        # connection per call in flight and fails beyond that.
        for start in range(0, len(groups), GATHER_CHUNK):
            chunk = groups[start : start + GATHER_CHUNK]
            await asyncio.gather(*(layer.group_send(group, message) for group in chunk))

    async def batched() -> None:
        for start in range(0, len(groups), batch):
            await layer.group_send_many((g, message) for g in groups[start : start + batch])

    results = {
        "one after another": await _timed(one_by_one, len(groups)),
        "gathered": await _timed(gathered, len(groups)),
    }
    if hasattr(layer, "group_send_many"):
        results[f"group_send_many x{batch}"] = await _timed(batched, len(groups))
    await layer.flush()
    return results


def _run(url: str, groups: int, batch: int) -> list[tuple[str, str, str, float]]:
    names = [f"portfolio.bench-{i}" for i in range(groups)]
    rows = []
    for members in (False, True):
        scenario = "one member per group" if members else "nobody receiving"
        for label in _layers(url):
            child = None
            if members:
                context = multiprocessing.get_context("spawn")
                ready, stop = context.Event(), context.Event()
                kind = "classic" if label == "classic" else "pubsub"
                child = context.Process(target=_receiver, args=(url, kind, names, ready, stop))
                child.start()
                ready.wait(120)
            try:
                layer = _layers(url)[label]
                for way, rate in asyncio.run(_scenario(layer, names, batch)).items():
                    rows.append((scenario, label, way, rate))
            finally:
                if child is not None:
                    stop.set()
                    child.join(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    server = EmbeddedRedis(port=0).start()
    setup_django(server.url)
    try:
        with open("/proc/loadavg") as loadavg:
            print(f"loadavg before: {loadavg.read().strip()}")
        for round_number in range(1, options.rounds + 1):
            rows = _run(server.url, options.groups, options.batch)
            baseline = {
                scenario: rate
                for scenario, label, way, rate in rows
                if label == "classic" and way == "one after another"
            }
            print(f"\nround {round_number}: {options.groups} groups, sends/s (× classic serial)")
            for scenario, label, way, rate in rows:
                ratio = rate / baseline[scenario]
                print(f"  {scenario:22} {label:13} {way:22} {rate:>10,.0f}  {ratio:6.1f}×")
            with open("/proc/loadavg") as loadavg:
                print(f"loadavg: {loadavg.read().strip()}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
