"""Quotes per second one consumer process writes into the Redis price cache.

Everything runs against an embedded Redis of its own, with no network in the measured loops:
the messages are built up front as Alpaca's stream sends them (msgpack-shaped dicts with
msgpack ``Timestamp`` times) for ``--symbols`` symbols, 80 % quotes and 20 % trades.

1. **SDK included** — the figure: the messages packed into frames of ``--frame`` messages and
   handed to the consumer's own stream (``marketdata.quotes.stock_stream``: a real
   ``StockDataStream`` with ``raw_data=True``) as its receive loop does — ``msgpack.unpackb``,
   then ``_dispatch`` — into ``QuoteBatcher.on_quote``/``on_trade`` while its writer thread
   flushes to Redis every QUOTE_FLUSH_SECONDS (or once QUOTE_FLUSH_SYMBOLS wait); the clock
   stops when the last batch is in Redis, and the cache is then checked against the messages.
   This is what one consumer process can take off a socket (less the socket's own reads).
2. **baseline** — the seed-002 design on the same messages: one ``SET price:<symbol> EX 3600``
   per quote (the ask), a round trip each.
3. **over a socket** — the same frames sent by a local websockets server in a process of its
   own (Alpaca's handshake, then every frame as fast as it goes) to the consumer's own
   ``FeedStream``: the SDK's whole receive loop (``_run_forever``, ``_consume``: the socket
   reads, ``wait_for`` per frame, the staleness clock per message) in front of the same
   handlers and writer. The clock starts when the stream starts (connect and handshake
   included). On a 2-core machine the sender shares the other core with Redis.
4. **handlers** — the same decoded messages awaited straight through the handlers and the
   writer, without the SDK: our own share. The SDK's share is timed alone too, into handlers
   that do nothing, with ``raw_data=True`` and with the pydantic models it builds without it.

The inputs are built before the clock starts and frozen out of the garbage collector's way.
Wall-clock rates move with the machine's load; process CPU per message is given beside them.
The run ends with one JSON line of its figures (the SDK-included rate against the baseline's).

Run from the repository root::

    .venv/bin/python -m bench.quote_ingest [--messages 300000] [--symbols 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgpack

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.harness import setup_django
from marketdata import compat

logger = logging.getLogger("bench.quote_ingest")

#: Messages per second one consumer process must take through the SDK (issue 11, target 4).
TARGET = 150_000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _messages(count: int, symbols: int, seed: int = 7) -> list[dict]:
    """Stream messages as msgpack decodes them: quotes and trades with Timestamp times, sizes
    as integers (as Alpaca sends stock sizes)."""
    rng = random.Random(seed)
    names = [f"S{i:04d}" for i in range(symbols)]
    prices = {name: rng.uniform(5, 500) for name in names}
    start = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        name = rng.choice(names)
        prices[name] *= 1 + rng.gauss(0, 0.0005)
        mid = round(prices[name], 2)
        at = msgpack.Timestamp.from_datetime(start + timedelta(microseconds=i * 20))
        if rng.random() < 0.8:
            out.append(
                {
                    "T": "q", "S": name, "bx": "V", "bp": round(mid - 0.01, 2),
                    "bs": rng.randint(1, 20) * 100, "ax": "V", "ap": round(mid + 0.01, 2),
                    "as": rng.randint(1, 20) * 100, "c": ["R"], "z": "C", "t": at,
                }
            )  # fmt: skip
        else:
            out.append(
                {
                    "T": "t", "S": name, "i": i, "x": "V", "p": mid,
                    "s": rng.randint(1, 500), "c": ["@"], "z": "C", "t": at,
                }
            )  # fmt: skip
    return out


@dataclass
class Figure:
    messages: int
    seconds: float
    cpu: float
    redis_cpu: float
    flushes: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_rate(self) -> float:
        """Messages per CPU-second of this process (its threads together): load-independent."""
        return self.messages / self.cpu


def _redis_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _consumer(client, messages: list[dict] | None, frames: list[bytes] | None = None) -> Figure:
    """Feed the real handlers — through the consumer's own raw stream when given ``frames``,
    else the decoded ``messages`` straight — while the real writer thread flushes."""
    from marketdata.price_cache import PriceCache
    from marketdata.quotes import QuoteBatcher, stock_stream

    client.flushdb()
    batcher = QuoteBatcher(PriceCache(client))
    stop = threading.Event()
    writer = threading.Thread(target=batcher.run, args=(stop,), name="writer")

    async def feed() -> None:
        on_quote, on_trade = batcher.on_quote, batcher.on_trade
        for message in messages:
            await (on_quote if message["T"] == "q" else on_trade)(message)

    async def through_sdk() -> None:
        stream = stock_stream("sip", None)
        stream.subscribe_quotes(batcher.on_quote, "*")
        stream.subscribe_trades(batcher.on_trade, "*")
        for frame in frames:
            for message in msgpack.unpackb(frame):
                await compat.dispatch_stream_message(stream, message)

    redis_before, cpu_before = _redis_cpu(client), _cpu()
    started = time.perf_counter()
    writer.start()
    asyncio.run(through_sdk() if frames else feed())
    stop.set()
    writer.join()
    seconds = time.perf_counter() - started
    count = batcher.messages
    return Figure(
        count, seconds, _cpu() - cpu_before, _redis_cpu(client) - redis_before, batcher.flushes
    )


# A stand-in for Alpaca's stream: its handshake, then the frames in the file given, at once.
_SENDER = """
import asyncio, sys, msgpack, websockets
frames = msgpack.unpackb(open(sys.argv[1], "rb").read())
async def send(socket):
    await socket.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
    await socket.recv()
    await socket.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
    await socket.recv()
    for frame in frames:
        await socket.send(frame)
    await socket.wait_closed()
async def main():
    async with websockets.serve(send, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def _over_socket(client, frames: list[bytes], messages: list[dict]) -> Figure:
    """The frames over a real websocket into the consumer's own stream thread and writer."""
    from functools import partial

    from django.test import override_settings

    from marketdata.price_cache import PriceCache
    from marketdata.quotes import FeedStream, QuoteBatcher, stock_stream

    client.flushdb()
    with tempfile.NamedTemporaryFile(suffix=".msgpack") as file:
        file.write(msgpack.packb(frames))
        file.flush()
        sender = subprocess.Popen(
            [sys.executable, "-c", _SENDER, file.name], stdout=subprocess.PIPE, text=True
        )
        try:
            url = f"ws://127.0.0.1:{sender.stdout.readline().strip()}"
            batcher = QuoteBatcher(PriceCache(client))
            stop = threading.Event()
            writer = threading.Thread(target=batcher.run, args=(stop,), name="writer")
            feed = FeedStream("sip", partial(stock_stream, "sip", None), batcher)
            symbols = frozenset(m["S"] for m in messages)
            with override_settings(ALPACA_STREAM_URL=url):
                redis_before, cpu_before = _redis_cpu(client), _cpu()
                started = time.perf_counter()
                writer.start()
                feed.set_symbols(symbols)
                while batcher.messages < len(messages):  # it moves as each batch is written
                    if time.perf_counter() - started > 120:
                        raise RuntimeError(f"{batcher.messages} messages arrived in 120 s")
                    time.sleep(0.001)
                seconds = time.perf_counter() - started
                cpu = _cpu() - cpu_before
            stop.set()
            writer.join()
            feed.stop()
        finally:
            sender.kill()
            sender.wait()
    redis_cpu = _redis_cpu(client) - redis_before
    return Figure(len(messages), seconds, cpu, redis_cpu, batcher.flushes)


def _sdk_alone(frames: list[bytes], raw_data: bool) -> Figure:
    """The SDK's own share: unpack and dispatch to a handler that does nothing."""
    from alpaca.data.live import StockDataStream

    async def ignore(message: object) -> None:
        return None

    stream = StockDataStream("key", "secret", raw_data=raw_data)
    stream.subscribe_quotes(ignore, "*")
    stream.subscribe_trades(ignore, "*")

    async def run() -> int:
        count = 0
        for frame in frames:
            for message in msgpack.unpackb(frame):
                await compat.dispatch_stream_message(stream, message)
                count += 1
        return count

    cpu_before, started = _cpu(), time.perf_counter()
    count = asyncio.run(run())
    return Figure(count, time.perf_counter() - started, _cpu() - cpu_before, 0.0)


def _baseline(client, messages: list[dict]) -> Figure:
    """The seed design: one SET (with its 1 h expiry) per quote, as its quote handler did."""
    client.flushdb()
    quotes = [m for m in messages if m["T"] == "q"]
    redis_before, cpu_before = _redis_cpu(client), _cpu()
    started = time.perf_counter()
    for quote in quotes:
        client.set(f"price:{quote['S']}", str(quote["ap"]), ex=3600)
    seconds = time.perf_counter() - started
    return Figure(len(quotes), seconds, _cpu() - cpu_before, _redis_cpu(client) - redis_before)


def _check(client, messages: list[dict]) -> None:
    """Every symbol's cache holds its last quote's bid and ask, its last trade's price and the
    sum of its trades' sizes, exactly."""
    from marketdata.price_cache import PriceCache

    quotes = {m["S"]: m for m in messages if m["T"] == "q"}
    trades = {m["S"]: m for m in messages if m["T"] == "t"}
    volumes: dict[str, Decimal] = {}
    for message in messages:
        if message["T"] == "t":
            volumes[message["S"]] = volumes.get(message["S"], 0) + Decimal(repr(message["s"]))
    cached = PriceCache(client).get(quotes.keys() | trades.keys())
    for symbol, message in quotes.items():
        assert cached[symbol].bid == Decimal(repr(message["bp"])), symbol
        assert cached[symbol].ask == Decimal(repr(message["ap"])), symbol
    for symbol, message in trades.items():
        assert cached[symbol].trade_price == Decimal(repr(message["p"])), symbol
        assert cached[symbol].volume == volumes[symbol], symbol


def _json_line(sdk: Figure, baseline: Figure, socket: Figure) -> str:
    """The run's figures as every bench ends: name, value, unit, baseline, ratio, loadavg."""
    return json.dumps(
        {
            "name": "quote_ingest",
            "value": round(sdk.rate),
            "unit": "messages/s",
            "baseline": round(baseline.rate),
            "ratio": round(sdk.rate / baseline.rate, 1),
            "messages_per_cpu_s": round(sdk.cpu_rate),
            "baseline_messages_per_cpu_s": round(baseline.cpu_rate),
            "cpu_ratio": round(sdk.cpu_rate / baseline.cpu_rate, 1),
            "over_socket_messages_per_s": round(socket.rate),
            "over_socket_messages_per_cpu_s": round(socket.cpu_rate),
            "target": TARGET,
            "loadavg": os.getloadavg(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--baseline-messages", type=int, default=30_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frame", type=int, default=100, help="messages per stream frame")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    server = EmbeddedRedis(port=0).start()
    setup_django(server.url)
    import redis
    from django.conf import settings

    try:
        client = redis.Redis.from_url(server.url)
        logger.info("loadavg at start: %s", " ".join(f"{x:.2f}" for x in os.getloadavg()))
        raw = _messages(args.messages, args.symbols)
        frames = [msgpack.packb(raw[i : i + args.frame]) for i in range(0, len(raw), args.frame)]

        # The inputs stay alive for the whole run, which no consumer does: keep the garbage
        # collector from walking them again and again.
        gc.freeze()

        sdk = _consumer(client, None, frames)
        _check(client, raw)
        baseline = _baseline(client, raw[: args.baseline_messages])
        socket = _over_socket(client, frames, raw)
        _check(client, raw)
        handlers = _consumer(client, raw)
        _check(client, raw)
        unparsed = _sdk_alone(frames, raw_data=True)
        parsing = _sdk_alone(frames, raw_data=False)

        logger.info(
            "%d messages over %d symbols (%d quotes), %d to a frame; flush every %gs or at %d "
            "symbols",
            len(raw),
            args.symbols,
            sum(1 for m in raw if m["T"] == "q"),
            args.frame,
            settings.QUOTE_FLUSH_SECONDS,
            settings.QUOTE_FLUSH_SYMBOLS,
        )
        logger.info(
            "| path | messages | seconds | messages/s | process CPU s | messages/CPU-s "
            "| Redis CPU s | flushes |"
        )
        logger.info("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, figure in (
            ("SDK included: unpackb + _dispatch (raw_data) + handlers + writer", sdk),
            ("baseline: one SET per quote", baseline),
            ("over a socket: websockets + the SDK's receive loop + handlers + writer", socket),
            ("handlers + writer, no SDK", handlers),
            ("SDK alone, raw_data=True: unpackb + _dispatch, no-op handler", unparsed),
            ("SDK alone, models: unpackb + _dispatch, no-op handler", parsing),
        ):
            logger.info(
                "| %s | %d | %.3f | %s | %.2f | %s | %.2f | %s |",
                name,
                figure.messages,
                figure.seconds,
                f"{figure.rate:,.0f}",
                figure.cpu,
                f"{figure.cpu_rate:,.0f}",
                figure.redis_cpu,
                figure.flushes or "",
            )
        logger.info(
            "SDK included / baseline: %.0fx per wall second, %.0fx per CPU-second; target "
            "%s messages/s: %s",
            sdk.rate / baseline.rate,
            sdk.cpu_rate / baseline.cpu_rate,
            f"{TARGET:,}",
            "met" if sdk.rate >= TARGET else "not met",
        )
        logger.info("loadavg at end: %s", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        server.stop()
    print(_json_line(sdk, baseline, socket), flush=True)


if __name__ == "__main__":
    main()
