"""The quote consumer's raw stream path writes exactly what the SDK's models made it write.

The same msgpack frames go through the consumer's own streams (``raw_data=True``, handlers on
the decoded dicts) and through alpaca-py streams that build their ``Quote``/``Trade`` models,
whose fields are written as the consumer wrote them before the raw path; the price cache must
come out the same, byte for byte.
"""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

import msgpack
import pytest
from alpaca.data.live import CryptoDataStream, StockDataStream
from alpaca.data.live.websocket import DataStream
from alpaca.data.models import Quote, Trade
from msgpack import Timestamp

from marketdata import compat, moments
from marketdata.price_cache import (
    CHANGES_STREAM,
    PRICE_PREFIX,
    PriceCache,
    quote_fields,
    trade_fields,
)
from marketdata.quotes import QuoteBatcher, crypto_stream, stock_stream
from tests.realtime.conftest import wait_for

OPEN = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def at(moment: datetime, nanoseconds: int = 0) -> Timestamp:
    """A moment as Alpaca stamps it: whole seconds and nanoseconds."""
    return Timestamp(int(moment.timestamp()), nanoseconds)


def stock_quote(symbol: str, bid: Any, bid_size: Any, ask: Any, ask_size: Any, t: Any) -> dict:
    return {
        "T": "q", "S": symbol, "bx": "V", "bp": bid, "bs": bid_size, "ax": "V", "ap": ask,
        "as": ask_size, "c": ["R"], "z": "C", "t": t,
    }  # fmt: skip


def stock_trade(symbol: str, price: Any, size: Any, t: Any) -> dict:
    return {"T": "t", "S": symbol, "i": 52983525029461, "x": "V", "p": price, "s": size,
            "c": ["@"], "z": "C", "t": t}  # fmt: skip


def crypto_quote(symbol: str, bid: float, bid_size: float, ask: float, ask_size: float) -> dict:
    return {"T": "q", "S": symbol, "bp": bid, "bs": bid_size, "ap": ask, "as": ask_size,
            "t": at(OPEN, 500_000_001)}  # fmt: skip


def crypto_trade(symbol: str, price: float, size: float, t: Timestamp) -> dict:
    return {"T": "t", "S": symbol, "p": price, "s": size, "t": t, "i": 8_912_345, "tks": "B"}


# New York midnight is 05:00 UTC in November: the last trade of one day and the first of the next.
NEW_YORK_MIDNIGHT = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)

STOCK_BATCHES = [
    [
        stock_quote("AAPL", 189.98, 300, 190.02, 100, at(OPEN, 123_456_789)),
        stock_quote("AAPL", 189.99, 100, 190.01, 200, at(OPEN, 123_456_999)),  # the newest wins
        stock_trade("AAPL", 190.0, 100, at(OPEN, 999)),
        stock_trade("AAPL", 190.005, 0.5, at(OPEN + timedelta(seconds=1), 999_999_999)),
        stock_quote("MSFT", 0, 0, 401.5, 3, at(OPEN)),  # no bid: Alpaca sends zeros
        stock_quote("TSLA", 250.25, 1, 0.0, 0.0, at(OPEN)),  # no ask
        stock_quote("F", 11, 1.5, 11.01, 2, at(OPEN)),  # integer price, fractional size
        stock_trade("BRK.B", 500, 1, at(OPEN)),
        stock_trade("NVDA", 161.5, 0.001, at(NEW_YORK_MIDNIGHT - timedelta(microseconds=1), 1)),
    ],
    [
        stock_trade("AAPL", 190.02, 300, at(OPEN + timedelta(seconds=2))),  # volume adds up
        stock_trade("NVDA", 161.75, 2, at(NEW_YORK_MIDNIGHT)),  # a new day restarts it
        stock_quote("MSFT", 401.25, 2, 401.5, 3, at(OPEN + timedelta(seconds=2))),
    ],
]
CRYPTO_BATCHES = [
    [
        crypto_quote("BTC/USD", 97000.5, 0.01234, 97001.25, 1.5),
        crypto_quote("SHIB/USD", 1.234e-05, 1_000_000, 1.235e-05, 2.5e6),
        crypto_trade("BTC/USD", 97000.75, 0.00012, at(OPEN, 1)),
        crypto_trade("SHIB/USD", 1.2345e-05, 12_345_678.5, at(OPEN, 2)),
        crypto_trade("ETH/USD", 3000, 1e-08, at(OPEN, 3)),
    ],
    [
        crypto_trade("BTC/USD", 97002.0, 0.5, at(OPEN + timedelta(seconds=1))),
        crypto_trade("ETH/USD", 3000.5, 2.5e-07, at(OPEN + timedelta(seconds=1))),
    ],
]


class ModelPath:
    """The handlers and flush of the quote consumer before ``raw_data`` (commit c0ae1f9): the
    SDK's models, their fields written through the price cache's rules."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.trades: dict[str, Trade] = {}
        self.volumes: dict[str, Decimal] = {}

    async def on_quote(self, quote: Quote) -> None:
        self.quotes[quote.symbol] = quote

    async def on_trade(self, trade: Trade) -> None:
        self.trades[trade.symbol] = trade
        size = Decimal(repr(trade.size))
        self.volumes[trade.symbol] = self.volumes.get(trade.symbol, Decimal(0)) + size

    def flush(self) -> None:
        quotes, trades, volumes = self.quotes, self.trades, self.volumes
        self.quotes, self.trades, self.volumes = {}, {}, {}
        PriceCache().write_batch(
            {
                s: quote_fields(q.bid_price, q.bid_size, q.ask_price, q.ask_size, q.timestamp)
                for s, q in quotes.items()
            },
            {s: trade_fields(t.price, t.size, t.timestamp) for s, t in trades.items()},
            {s: (moments.new_york_day(trades[s].timestamp), v) for s, v in volumes.items()},
        )


def cached(redis_client) -> tuple[dict, list]:
    """Every price hash as Redis holds it, and the symbols of every changes entry."""
    hashes = {key: redis_client.hgetall(key) for key in redis_client.scan_iter(f"{PRICE_PREFIX}*")}
    changes = [fields[b"symbols"] for _, fields in redis_client.xrange(CHANGES_STREAM)]
    return hashes, changes


async def feed(stream: DataStream, handlers: Any, batches: list[list[dict]]) -> None:
    """Each batch as one msgpack frame through the stream as its receive loop hands frames
    over (``unpackb``, then ``_dispatch`` per message), then one flush."""
    symbols = sorted({m["S"] for batch in batches for m in batch})
    stream.subscribe_quotes(handlers.on_quote, *symbols)
    stream.subscribe_trades(handlers.on_trade, *symbols)
    for batch in batches:
        for message in msgpack.unpackb(msgpack.packb(batch)):
            await compat.dispatch_stream_message(stream, message)
        handlers.flush()


@pytest.mark.parametrize(
    ("raw_stream", "model_stream", "batches"),
    [
        (lambda: stock_stream("sip", None), lambda: StockDataStream("k", "s"), STOCK_BATCHES),
        (lambda: crypto_stream(None), lambda: CryptoDataStream("k", "s"), CRYPTO_BATCHES),
    ],
    ids=["stocks", "crypto"],
)
async def test_the_raw_path_writes_what_the_model_path_wrote(
    redis_client, raw_stream, model_stream, batches
) -> None:
    batcher = QuoteBatcher(PriceCache())
    await feed(raw_stream(), batcher, batches)
    raw = cached(redis_client)
    redis_client.flushdb()
    await feed(model_stream(), ModelPath(), batches)

    assert raw == cached(redis_client)
    assert batcher.messages == sum(map(len, batches)) and batcher.refused == 0


async def test_the_cache_holds_alpacas_numbers_and_moments_as_before(redis_client) -> None:
    await feed(stock_stream("sip", None), QuoteBatcher(PriceCache()), STOCK_BATCHES)
    await feed(crypto_stream(None), QuoteBatcher(PriceCache()), CRYPTO_BATCHES)

    def fields(symbol: str, *names: str) -> tuple[str, ...]:
        values = redis_client.hmget(f"{PRICE_PREFIX}{symbol}", names)
        return tuple(value.decode() for value in values)

    assert fields("AAPL", "bid", "bid_size", "ask_size", "quote_at") == (
        "189.99", "100.0", "200.0", "2026-11-20T15:00:00.123456Z",
    )  # fmt: skip
    assert fields("AAPL", "trade_price", "trade_size", "trade_at", "volume") == (
        "190.02", "300.0", "2026-11-20T15:00:02.000000Z", "400.5",
    )  # fmt: skip
    assert fields("MSFT", "bid", "bid_size") == ("401.25", "2.0")
    assert fields("TSLA", "ask", "ask_size") == ("0.0", "0.0")
    assert fields("NVDA", "volume", "volume_day") == ("2.0", "2026-11-21")
    assert fields("SHIB/USD", "bid", "ask_size", "trade_size") == (
        "0.00001234", "2500000.0", "12345678.5",
    )  # fmt: skip
    assert fields("ETH/USD", "trade_price", "volume") == ("3000.5", "0.00000026")


MALFORMED = [
    stock_quote("AAPL", None, 100, 190.01, 200, at(OPEN)),  # a bid that is no number
    {k: v for k, v in stock_quote("AAPL", 1.0, 1, 2.0, 1, at(OPEN)).items() if k != "ap"},
    stock_trade("AAPL", "one ninety", 1, at(OPEN)),
    stock_trade("AAPL", 190.0, 1, "2026-11-20T15:00:00Z"),  # a moment that is no Timestamp
    {k: v for k, v in stock_trade("AAPL", 190.0, 1, at(OPEN)).items() if k != "t"},
    stock_trade("AAPL", 190.0, 1, Timestamp(253_402_300_800, 0)),  # the year 10000
]


async def test_what_the_models_refused_is_refused_and_the_frame_goes_on(redis_client) -> None:
    first = stock_quote("AAPL", 189.5, 1, 190.5, 1, at(OPEN))
    last = stock_trade("AAPL", 190.25, 7, at(OPEN + timedelta(seconds=1)))
    model_stream, model_path = StockDataStream("k", "s"), ModelPath()
    model_stream.subscribe_quotes(model_path.on_quote, "AAPL")
    model_stream.subscribe_trades(model_path.on_trade, "AAPL")
    for message in msgpack.unpackb(msgpack.packb([first, *MALFORMED, last])):
        if message in (first, last):
            await compat.dispatch_stream_message(model_stream, message)
        else:  # each one ended the SDK's frame with a logged traceback
            with pytest.raises((ValueError, AttributeError, OverflowError)):
                await compat.dispatch_stream_message(model_stream, message)
    model_path.flush()
    expected = cached(redis_client)
    redis_client.flushdb()

    batcher = QuoteBatcher(PriceCache())
    await feed(stock_stream("sip", None), batcher, [[first, *MALFORMED, last]])

    assert cached(redis_client) == expected
    assert (batcher.messages, batcher.refused) == (2, len(MALFORMED))


async def test_the_writer_flushes_early_once_enough_symbols_wait(redis_client) -> None:
    """Messages for the symbols already waiting cost no write of their own however many come;
    the QUOTE_FLUSH_SYMBOLS-th symbol waiting has the writer flush without waiting its period."""
    batcher = QuoteBatcher(PriceCache(), flush_seconds=3600, flush_symbols=3)
    stop = threading.Event()
    writer = threading.Thread(target=batcher.run, args=(stop,))
    writer.start()
    try:
        for n in range(1, 501):
            await batcher.on_quote(stock_quote(("AAPL", "MSFT")[n % 2], n, 1, n + 1, 1, at(OPEN)))
        assert batcher.flushes <= 1  # at most the writer's first flush, as it started
        written = batcher.written
        await batcher.on_trade(stock_trade("NVDA", 190.25, 7, at(OPEN)))
        wait_for(lambda: batcher.written > written, 10, "the early flush")
        assert redis_client.hget(f"{PRICE_PREFIX}NVDA", "trade_price") == b"190.25"
        assert redis_client.hget(f"{PRICE_PREFIX}AAPL", "bid") == b"500.0"
    finally:
        stop.set()
        batcher.wake()
        writer.join()


async def test_the_first_message_after_a_quiet_spell_is_written_at_once(redis_client) -> None:
    """Leading edge: an isolated trade does not wait for the writer's period to end."""
    batcher = QuoteBatcher(PriceCache(), flush_seconds=3600)
    stop = threading.Event()
    writer = threading.Thread(target=batcher.run, args=(stop,))
    writer.start()
    try:
        # Its first flush found nothing (a peek at the one flag no figure shows).
        wait_for(lambda: batcher._quiet, 10, "the writer's first look")
        await batcher.on_trade(stock_trade("NVDA", 190.25, 7, at(OPEN)))
        wait_for(lambda: batcher.flushes == 1, 10, "the leading edge")
        assert redis_client.hget(f"{PRICE_PREFIX}NVDA", "trade_price") == b"190.25"
    finally:
        stop.set()
        batcher.wake()
        writer.join()


def test_epoch_moments_read_as_the_sdks_datetimes() -> None:
    rng = Random(11)
    seconds = [rng.randrange(-62_135_510_400, 253_402_214_400) for _ in range(3000)]
    seconds += [0, -1, int(NEW_YORK_MIDNIGHT.timestamp()) - 1, int(NEW_YORK_MIDNIGHT.timestamp())]
    for second in seconds:
        for nanoseconds in (0, 999, 1000, rng.randrange(10**9), 999_999_999):
            moment = Timestamp(second, nanoseconds).to_datetime()
            assert moments.stored_epoch(second, nanoseconds // 1000) == moments.stored(moment)
            assert moments.new_york_day_epoch(second) == moments.new_york_day(moment)
