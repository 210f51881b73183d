"""How much CPU the sandbox's quote pump costs under a full-market subscription.

Starts ``manage.py sandbox --accounts 10000 --symbols 1000 --quotes-per-second 5000`` on a
free port and connects one real ``StockDataStream`` (SIP) and one ``CryptoDataStream``. Two
phases run against that one sandbox process, each over the same window:

1. baseline: both streams connected and authenticated but subscribed to nothing; the market
   still moves at the configured rate, the sandbox just has no one to send it to;
2. loaded: the stock stream subscribes to the quotes and trades of every streamable stock,
   the crypto stream to those of every pair, and what they receive is counted.

For each phase the sandbox's own CPU comes from ``/_sandbox/stats``. The sandbox must stay
under half a core when loaded, or the figures of whatever consumes its stream measure the
sandbox instead of the consumer.

Run from the repository root::

    .venv/bin/python -m bench.sandbox_stream [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field

import websockets
from alpaca.data.enums import DataFeed
from alpaca.data.live.crypto import CryptoDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.data.live.websocket import DataStream

from clera.devstack.harness import SANDBOX_CREDENTIALS, start_sandbox
from clera.devstack.sdk_streams import StreamThread
from marketdata import compat
from marketdata.sandbox.assets import build_assets

logger = logging.getLogger("bench.sandbox_stream")

WORLD = {"accounts": 10_000, "symbols": 1_000, "quotes_per_second": 5_000, "seed": 42}
BUDGET_CORES = 0.5


@dataclass
class Tally:
    """Messages one stream has handed to its handlers (written by the stream's thread only)."""

    received: int = 0
    first: threading.Event = field(default_factory=threading.Event)

    async def handle(self, message: object) -> None:
        self.received += 1
        self.first.set()


class ConnectedStreamThread(StreamThread):
    """An SDK stream on its own thread, connected before it subscribes.

    ``_run_forever`` will not connect until something is subscribed, so the thread does what
    its first pass does (``_start_ws``: connect, authenticate) and then consumes. A later
    ``subscribe_*`` from another thread goes over the open socket, as for any running SDK
    stream.
    """

    start_timeout = 30.0

    def __init__(self, stream: DataStream) -> None:
        super().__init__(stream)
        self.failure: BaseException | None = None

    async def follow(self) -> None:
        stream = self.stream
        try:
            await compat.connect_stream(stream)  # from now on subscribe_* sends over this socket
            self.ready.set()
            await compat.consume_stream(stream)
        except websockets.exceptions.ConnectionClosed as error:
            if not compat.stream_stop_requested(stream):  # closed by the sandbox, not by stop()
                self.failure = error
        except BaseException as error:
            self.failure = error
            raise
        finally:
            self.ready.set()

    def start(self) -> None:
        """Connect and authenticate; return once the stream could be subscribed."""
        super().start()
        self.check()

    def check(self) -> None:
        """Raise if the stream has died (refused, dropped as a slow client, ...)."""
        if self.failure is not None:
            raise RuntimeError(f"the stream failed: {self.failure!r}") from self.failure
        if not self.alive:
            raise RuntimeError("the stream thread ended early")


@dataclass(frozen=True)
class Window:
    """What the sandbox did and the streams received over one measured window."""

    wall: float
    cpu: float
    pump_cpu: float
    ticks: int
    sent: int
    received: tuple[int, ...]

    @property
    def cores(self) -> float:
        return self.cpu / self.wall

    def rate(self, count: float) -> float:
        return count / self.wall


def stats(origin: str) -> dict:
    with urllib.request.urlopen(f"{origin}/_sandbox/stats", timeout=10) as response:
        return json.load(response)


def measure_window(origin: str, seconds: float, tallies: list[Tally]) -> Window:
    """Sleep through ``seconds`` and return the sandbox's and the streams' deltas."""
    before = stats(origin)
    counted = [tally.received for tally in tallies]
    time.sleep(seconds)
    after = stats(origin)
    received = tuple(t.received - c for t, c in zip(tallies, counted, strict=True))
    streams_before, streams_after = before["streams"], after["streams"]
    return Window(
        wall=after["uptime_seconds"] - before["uptime_seconds"],
        cpu=after["cpu_seconds"] - before["cpu_seconds"],
        pump_cpu=streams_after["pump_cpu_seconds"] - streams_before["pump_cpu_seconds"],
        ticks=streams_after["ticks"] - streams_before["ticks"],
        sent=streams_after["messages_sent"] - streams_before["messages_sent"],
        received=received,
    )


def measure(seconds: float) -> tuple[Window, Window]:
    """Start the sandbox, run the baseline then the loaded phase; return both windows."""
    assets = [
        a for a in build_assets(WORLD["symbols"], WORLD["seed"]) if a.asset_class != "us_option"
    ]
    stocks = [a.symbol for a in assets if not a.is_crypto]
    pairs = [a.symbol for a in assets if a.is_crypto]
    logger.info(
        "symbols %d (stocks %d, crypto %d), %d quotes/s configured, %gs per phase",
        WORLD["symbols"],
        len(stocks),
        len(pairs),
        WORLD["quotes_per_second"],
        seconds,
    )
    with ExitStack() as running:
        sandbox = start_sandbox(running, WORLD, startup_timeout=300)
        stock_tally, crypto_tally = Tally(), Tally()
        tallies = [stock_tally, crypto_tally]
        stock_stream = StockDataStream(
            *SANDBOX_CREDENTIALS, feed=DataFeed.SIP, url_override=f"{sandbox.stream_origin}/v2/sip"
        )
        crypto_stream = CryptoDataStream(
            *SANDBOX_CREDENTIALS, url_override=f"{sandbox.stream_origin}/v1beta3/crypto/us"
        )
        threads = [ConnectedStreamThread(stock_stream), ConnectedStreamThread(crypto_stream)]
        try:
            for thread in threads:
                thread.start()
            streams = stats(sandbox.origin)["streams"]
            if streams["connections"]["sip"] != 1 or streams["connections"]["crypto"] != 1:
                raise RuntimeError(f"expected one sip and one crypto stream: {streams}")
            if streams["subscribed"]:
                raise RuntimeError(f"the baseline must have no subscription: {streams}")
            baseline = measure_window(sandbox.origin, seconds, tallies)
            for thread in threads:
                thread.check()

            stock_stream.subscribe_quotes(stock_tally.handle, *stocks)
            stock_stream.subscribe_trades(stock_tally.handle, *stocks)
            crypto_stream.subscribe_quotes(crypto_tally.handle, *pairs)
            crypto_stream.subscribe_trades(crypto_tally.handle, *pairs)
            for name, tally in (("stock", stock_tally), ("crypto", crypto_tally)):
                if not tally.first.wait(timeout=60):
                    raise RuntimeError(f"the {name} stream received nothing within 60s")
            loaded = measure_window(sandbox.origin, seconds, tallies)
            for thread in threads:
                thread.check()
            slow_clients = stats(sandbox.origin)["streams"]["slow_clients"]
        finally:
            for thread in threads:
                thread.stop()
    if slow_clients:
        raise RuntimeError(f"the sandbox dropped {slow_clients} slow client(s)")
    return baseline, loaded


def report(baseline: Window, loaded: Window) -> None:
    """Log both phases side by side, then the ratios."""
    rows = (
        ("window, s", "%10.1f", lambda w: w.wall),
        ("market steps, quotes/s", "%10.0f", lambda w: w.rate(w.ticks)),
        ("sandbox sent, messages/s", "%10.0f", lambda w: w.rate(w.sent)),
        ("stock stream got, msg/s", "%10.0f", lambda w: w.rate(w.received[0])),
        ("crypto stream got, msg/s", "%10.0f", lambda w: w.rate(w.received[1])),
        ("all streams got, msg/s", "%10.0f", lambda w: w.rate(sum(w.received))),
        ("sandbox CPU, cores", "%10.3f", lambda w: w.cores),
        ("  of which pump, cores", "%10.3f", lambda w: w.pump_cpu / w.wall),
    )
    logger.info("%-26s %10s %10s", "", "baseline", "loaded")
    for label, number, value in rows:
        logger.info("%-26s " + number + " " + number, label, value(baseline), value(loaded))
    ratio = loaded.cores / baseline.cores if baseline.cores else float("inf")
    logger.info("loaded / baseline CPU      %10.2fx", ratio)
    logger.info(
        "loaded CPU / %.1f-core budget %7.0f%%", BUDGET_CORES, 100 * loaded.cores / BUDGET_CORES
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="window of each phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Stopping a stream makes the SDK log its own close as an error; nothing to see.
    logging.getLogger("alpaca").setLevel(logging.CRITICAL)
    report(*measure(args.seconds))


if __name__ == "__main__":
    main()
