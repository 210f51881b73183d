"""How much CPU the sandbox's quote pump costs under a full-market subscription.

Starts ``manage.py sandbox --accounts 10000 --symbols 1000 --quotes-per-second 5000`` on a
free port, connects one real ``StockDataStream`` (SIP) subscribed to the quotes and trades of
every streamable stock and one ``CryptoDataStream`` subscribed to every crypto pair, counts
what they receive over a window and reads the sandbox's own CPU from ``/_sandbox/stats``.
The sandbox must stay under half a core, or the figures of whatever consumes its stream
measure the sandbox instead of the consumer.

Run from the repository root::

    .venv/bin/python -m bench.sandbox_stream [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from alpaca.data.enums import DataFeed
from alpaca.data.live.crypto import CryptoDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.data.live.websocket import DataStream

from clera.ports import free_port
from clera.sandbox_process import SandboxProcess
from marketdata.sandbox.market import build_assets

logger = logging.getLogger("bench.sandbox_stream")

HOST = "127.0.0.1"
ACCOUNTS = 10_000
SYMBOLS = 1_000
QUOTES_PER_SECOND = 5_000
SEED = 42
KEY = os.environ.get("SANDBOX_API_KEY", "sandbox-key")
SECRET = os.environ.get("SANDBOX_SECRET_KEY", "sandbox-secret")


@dataclass
class Tally:
    """Messages one stream has handed to its handlers (written by the stream's thread only)."""

    received: int = 0
    first: threading.Event = field(default_factory=threading.Event)

    async def handle(self, message: object) -> None:
        self.received += 1
        self.first.set()


class StreamThread:
    """An SDK stream on its own thread and event loop.

    ``run()`` would call ``asyncio.run`` and cannot share a loop, and ``subscribe_*`` called
    on the stream's own loop deadlocks; so the stream gets a thread, and callers subscribe
    from theirs. Stopping also closes the socket: the SDK only looks at its stop flag
    between messages, which on a quiet subscription can take five seconds.
    """

    def __init__(self, stream: DataStream) -> None:
        self.stream = stream
        self.loop: asyncio.AbstractEventLoop | None = None
        self._running = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._running.set()
        await self.stream._run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._running.wait(timeout=5):
            raise RuntimeError("the stream thread did not start")

    async def _halt(self) -> None:
        await self.stream.stop_ws()
        await self.stream.close()

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._halt(), self.loop).result(timeout=5)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the stream thread did not stop")


def stats(origin: str) -> dict:
    with urllib.request.urlopen(f"{origin}/_sandbox/stats", timeout=10) as response:
        return json.load(response)


def measure(seconds: float) -> None:
    assets = [a for a in build_assets(SYMBOLS, SEED) if a.asset_class != "us_option"]
    stocks = [a.symbol for a in assets if not a.is_crypto]
    pairs = [a.symbol for a in assets if a.is_crypto]
    sandbox = SandboxProcess(
        HOST,
        free_port(HOST),
        accounts=ACCOUNTS,
        symbols=SYMBOLS,
        quotes_per_second=QUOTES_PER_SECOND,
        seed=SEED,
        startup_timeout=300,
    )
    started = time.monotonic()
    with sandbox:
        logger.info("sandbox up in %.1fs at %s", time.monotonic() - started, sandbox.origin)
        stock_tally, crypto_tally = Tally(), Tally()
        stock_stream = StockDataStream(
            KEY, SECRET, feed=DataFeed.SIP, url_override=f"{sandbox.stream_origin}/v2/sip"
        )
        crypto_stream = CryptoDataStream(
            KEY, SECRET, url_override=f"{sandbox.stream_origin}/v1beta3/crypto/us"
        )
        # Subscribing from this thread, before the streams' loops run, avoids the SDK's
        # deadlock when subscribe_* is called on the stream's own loop.
        stock_stream.subscribe_quotes(stock_tally.handle, *stocks)
        stock_stream.subscribe_trades(stock_tally.handle, *stocks)
        crypto_stream.subscribe_quotes(crypto_tally.handle, *pairs)
        crypto_stream.subscribe_trades(crypto_tally.handle, *pairs)
        threads = [StreamThread(stock_stream), StreamThread(crypto_stream)]
        for thread in threads:
            thread.start()
        try:
            for name, tally in (("stock", stock_tally), ("crypto", crypto_tally)):
                if not tally.first.wait(timeout=60):
                    raise RuntimeError(f"the {name} stream received nothing within 60s")
            before = stats(sandbox.origin)
            counted = stock_tally.received, crypto_tally.received
            time.sleep(seconds)  # the measurement window itself
            after = stats(sandbox.origin)
            stock_rate = (stock_tally.received - counted[0]) / seconds
            crypto_rate = (crypto_tally.received - counted[1]) / seconds
        finally:
            for thread in threads:
                thread.stop()
    wall = after["uptime_seconds"] - before["uptime_seconds"]
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    pump = after["streams"]["pump_cpu_seconds"] - before["streams"]["pump_cpu_seconds"]
    sent = after["streams"]["messages_sent"] - before["streams"]["messages_sent"]
    ticks = after["streams"]["ticks"] - before["streams"]["ticks"]
    logger.info(
        "symbols %d (stocks %d, crypto %d), %d quotes/s configured, window %.1fs",
        SYMBOLS,
        len(stocks),
        len(pairs),
        QUOTES_PER_SECOND,
        wall,
    )
    logger.info("market steps       %8.0f quotes/s", ticks / wall)
    logger.info("sandbox sent       %8.0f messages/s", sent / wall)
    logger.info("stock stream got   %8.0f messages/s", stock_rate)
    logger.info("crypto stream got  %8.0f messages/s", crypto_rate)
    logger.info("sandbox CPU        %8.3f cores (pump alone %.3f)", cpu / wall, pump / wall)
    logger.info("slow clients       %8d", after["streams"]["slow_clients"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Stopping a stream makes the SDK log its own close as an error; nothing to see.
    logging.getLogger("alpaca").setLevel(logging.CRITICAL)
    measure(args.seconds)


if __name__ == "__main__":
    main()
