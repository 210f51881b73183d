"""Quotes per second one consumer process writes into the Redis price cache.

Everything runs against an embedded Redis of its own, with no network in the measured loops:
the messages are built up front as Alpaca's stream sends them (msgpack-shaped dicts with
msgpack ``Timestamp`` times) for ``--symbols`` symbols, 80 % quotes and 20 % trades.

1. **consumer** — the real path of ``marketdata/quotes.py``: the real SDK ``Quote``/``Trade``
   objects (built beforehand by a real ``StockDataStream._cast``, as the SDK builds them per
   message) are awaited through ``QuoteBatcher.on_quote``/``on_trade`` while its writer thread
   flushes to Redis every QUOTE_FLUSH_SECONDS (or QUOTE_FLUSH_MESSAGES); the clock stops when
   the last batch is in Redis. The cache is then checked to hold every symbol's last quote.
2. **baseline** — the seed-002 design on the same messages: one ``SET price:<symbol> EX 3600`` per
   quote (the ask), a round trip each.
3. **SDK included** — for context: the same messages packed into frames of ``--frame`` messages
   and handed to a real ``StockDataStream`` as its receive loop does (``msgpack.unpackb`` then
   ``_dispatch``, which builds the pydantic models), into the same handlers and writer. This is
   what one consumer process can take from a socket. The SDK's own share is timed too, with
   handlers that do nothing, with its pydantic models and with ``raw_data=True``.

The inputs are built before the clock starts and frozen out of the garbage collector's way.
Wall-clock rates move with the machine's load; process CPU per message is given beside them.

Run from the repository root::

    .venv/bin/python -m bench.quote_ingest [--messages 300000] [--symbols 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import logging
import random
import resource
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _messages(count: int, symbols: int, seed: int = 7) -> list[dict]:
    """Stream messages as msgpack decodes them: quotes and trades with Timestamp times."""
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
                    "bs": rng.randint(1, 20) * 100.0, "ax": "V", "ap": round(mid + 0.01, 2),
                    "as": rng.randint(1, 20) * 100.0, "c": ["R"], "z": "C", "t": at,
                }
            )  # fmt: skip
        else:
            out.append(
                {
                    "T": "t", "S": name, "i": i, "x": "V", "p": mid,
                    "s": float(rng.randint(1, 500)), "c": ["@"], "z": "C", "t": at,
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


def _consumer(client, objects: list, dispatch=None, frames: list[bytes] | None = None) -> Figure:
    """Feed the real handlers (or the SDK's dispatch) while the real writer thread flushes."""
    from marketdata.price_cache import PriceCache
    from marketdata.quotes import QuoteBatcher

    client.flushdb()
    batcher = QuoteBatcher(PriceCache(client))
    stop = threading.Event()
    writer = threading.Thread(target=batcher.run, args=(stop,), name="writer")

    async def feed() -> None:
        on_quote, on_trade = batcher.on_quote, batcher.on_trade
        for item in objects:
            await (on_quote if item.__class__.__name__ == "Quote" else on_trade)(item)

    async def through_sdk() -> None:
        stream = dispatch(batcher)
        for frame in frames:
            for message in msgpack.unpackb(frame, timestamp=0):
                await compat.dispatch_stream_message(stream, message)

    redis_before, cpu_before = _redis_cpu(client), _cpu()
    started = time.perf_counter()
    writer.start()
    asyncio.run(through_sdk() if dispatch else feed())
    stop.set()
    writer.join()
    seconds = time.perf_counter() - started
    count = batcher.messages
    return Figure(
        count, seconds, _cpu() - cpu_before, _redis_cpu(client) - redis_before, batcher.flushes
    )


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
            for message in msgpack.unpackb(frame, timestamp=0):
                await compat.dispatch_stream_message(stream, message)
                count += 1
        return count

    cpu_before, started = _cpu(), time.perf_counter()
    count = asyncio.run(run())
    return Figure(count, time.perf_counter() - started, _cpu() - cpu_before, 0.0)


def _baseline(client, objects: list) -> Figure:
    """The seed design: one SET (with its 1 h expiry) per quote, as its quote handler did."""
    client.flushdb()
    quotes = [o for o in objects if o.__class__.__name__ == "Quote"]
    redis_before, cpu_before = _redis_cpu(client), _cpu()
    started = time.perf_counter()
    for quote in quotes:
        client.set(f"price:{quote.symbol}", str(quote.ask_price), ex=3600)
    seconds = time.perf_counter() - started
    return Figure(len(quotes), seconds, _cpu() - cpu_before, _redis_cpu(client) - redis_before)


def _check(client, messages: list[dict]) -> None:
    """Every symbol's cached quote is its last quote's bid and ask, exactly."""
    from marketdata.price_cache import PriceCache

    last = {m["S"]: m for m in messages if m["T"] == "q"}
    cached = PriceCache(client).get(last)
    for symbol, message in last.items():
        entry = cached[symbol]
        assert entry.bid == Decimal(repr(message["bp"])), symbol
        assert entry.ask == Decimal(repr(message["ap"])), symbol


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
    from alpaca.data.live import StockDataStream
    from django.conf import settings

    try:
        client = redis.Redis.from_url(server.url)
        raw = _messages(args.messages, args.symbols)
        parser_stream = StockDataStream("key", "secret")
        objects = [compat.stream_message_model(parser_stream, copy.copy(m)) for m in raw]
        frames = [
            msgpack.packb(raw[i : i + args.frame], datetime=False)
            for i in range(0, len(raw), args.frame)
        ]

        # The inputs stay alive for the whole run, which no consumer does: keep the garbage
        # collector from walking them again and again.
        gc.freeze()

        def sdk_stream(batcher) -> StockDataStream:
            stream = StockDataStream("key", "secret")
            stream.subscribe_quotes(batcher.on_quote, "*")
            stream.subscribe_trades(batcher.on_trade, "*")
            return stream

        consumer = _consumer(client, objects)
        _check(client, raw)
        baseline = _baseline(client, objects[: args.baseline_messages])
        sdk = _consumer(client, [], dispatch=sdk_stream, frames=frames)
        _check(client, raw)
        parsing = _sdk_alone(frames, raw_data=False)
        unparsed = _sdk_alone(frames, raw_data=True)

        logger.info(
            "%d messages over %d symbols (%d quotes); flush every %gs or %d messages",
            len(raw),
            args.symbols,
            sum(1 for m in raw if m["T"] == "q"),
            settings.QUOTE_FLUSH_SECONDS,
            settings.QUOTE_FLUSH_MESSAGES,
        )
        logger.info(
            "| path | messages | seconds | messages/s | process CPU s | messages/CPU-s "
            "| Redis CPU s |"
        )
        logger.info("|---|---:|---:|---:|---:|---:|---:|")
        for name, figure in (
            ("consumer: handlers + batching writer", consumer),
            ("baseline: one SET per quote", baseline),
            ("SDK included: unpackb + _dispatch + handlers + writer", sdk),
            ("SDK alone: unpackb + _dispatch (models), no-op handler", parsing),
            ("SDK alone, raw_data=True: unpackb + _dispatch, no-op handler", unparsed),
        ):
            logger.info(
                "| %s | %d | %.3f | %s | %.2f | %s | %.2f |",
                name,
                figure.messages,
                figure.seconds,
                f"{figure.rate:,.0f}",
                figure.cpu,
                f"{figure.cpu_rate:,.0f}",
                figure.redis_cpu,
            )
        for name, figure in (("consumer", consumer), ("SDK included", sdk)):
            logger.info(
                "%s / baseline: %.0fx per wall second, %.0fx per CPU-second",
                name,
                figure.rate / baseline.rate,
                figure.cpu_rate / baseline.cpu_rate,
            )
        logger.info(
            "consumer flushes: %d (%.0f messages each)",
            consumer.flushes,
            consumer.messages / max(1, consumer.flushes),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
