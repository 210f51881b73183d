"""The quote consumer: Alpaca's real-time trades and quotes into the Redis price cache.

``manage.py consume_quotes`` runs one :class:`QuoteConsumer`. It streams with the real
alpaca-py clients — ``StockDataStream`` (feed ALPACA_DATA_FEED, ``ALPACA_STREAM_URL/v2/<feed>``)
and ``CryptoDataStream`` (``ALPACA_STREAM_URL/v1beta3/crypto/us``), keys
ALPACA_DATA_CREDENTIALS, with ``raw_data=True``: the handlers get the msgpack-decoded dicts,
read as the SDK's models would (marketdata/stream_messages.py), not a pydantic model per
message, which cost more than everything else here together. Each stream runs on a thread of
its own with its own event loop, so the SDK's
traps never bite: ``run()`` (an ``asyncio.run``) is never called, ``subscribe_*`` and
``unsubscribe_*`` are only called from the consumer's own thread, never from a stream's loop,
and a stream is only started once it has a symbol (before that the SDK spins on a core).

* **What it streams**: trades and quotes of exactly the tracked symbols (``clera:symbols``,
  see marketdata/book/): pairs with a ``/`` on the crypto stream, OCC option symbols nowhere
  (Alpaca streams options elsewhere; they keep the collection's price), everything else on the
  stock stream — at most QUOTE_STREAM_SYMBOL_LIMIT of those (0 = no limit; IEX allows 30), the
  most widely held first. It follows ``clera:symbols:changed`` and re-reads the set every
  RECONCILE_SECONDS anyway. Until a symbol collection has run since Redis lost its data it only
  adds symbols, never drops them.
* **How it writes**: handlers only note each symbol's newest trade and quote (and add up
  traded size), refusing (and logging) a message the SDK's models would have refused; a
  writer thread flushes what changed every QUOTE_FLUSH_SECONDS, or sooner once
  QUOTE_FLUSH_SYMBOLS symbols wait, as one pipelined batch (:meth:`PriceCache.write_batch`).
  The first message after a quiet period (a flush that found nothing) is flushed at once: an
  isolated trade goes out on the leading edge, a busy market at the period's end.
  A batch costs what its symbols cost, not its messages, so symbols bound it: at 100,000+
  messages a second over a few thousand symbols a message count fired flush after flush.
  A burst of quotes for one symbol costs one write; a Redis outage costs no memory growth
  (the pending batch holds one entry per symbol) and the newest values land once Redis is back.
* **Reconnects**: the SDK reconnects with backoff (1 s doubling to 30 s) after a drop or an
  error and sends the full subscription again; QUOTE_STREAM_SILENCE_SECONDS without data
  (the SDK's ``data_timeout``; 0 = off) counts as a drop. A quiet market (nights, weekends)
  therefore reconnects now and then, one connection at a time.
* **One connection**: Alpaca allows one stream connection per key and feed, so consumers elect
  a leader with a Redis lock (``clera:lock:quotes``, TTL QUOTE_LOCK_SECONDS, renewed every third
  of it). Others wait as standbys and take over within a TTL when the leader dies. Through a
  Redis outage the leader keeps streaming; when Redis is back it retakes the lock, or stands
  down if a standby got it first.
* **Status** for the operations pages and /health: hash ``clera:quotes:status``, rewritten
  every second by the leader (TTL 10 s, deleted on a clean stop): ``leader`` (host:pid),
  ``updated_at``, ``last_message_at`` (moments), ``messages_per_second``, ``messages_total``,
  ``feeds`` (comma list of connected feeds, e.g. ``sip,crypto``), ``subscribed`` (symbols
  streamed), ``unstreamed`` (tracked stock symbols over the feed's limit),
  ``pending_symbols`` (written at the next flush).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import redis
from alpaca.data.enums import DataFeed
from alpaca.data.live import CryptoDataStream, StockDataStream
from alpaca.data.live.websocket import DataStream
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import LockNotOwnedError

from . import compat, moments
from .backoff import REDIS_MAX_BACKOFF, Backoff
from .price_cache import PriceCache
from .store import redis_client
from .stream_messages import (
    StreamQuote,
    StreamTrade,
    quote_row,
    read_quote,
    read_trade,
    trade_row,
    traded_size,
)

logger = logging.getLogger(__name__)

STATUS_KEY = "clera:quotes:status"
STATUS_SECONDS = 1.0
STATUS_TTL = 10
LEADER_LOCK = "clera:lock:quotes"
RECONCILE_SECONDS = 5.0
#: Seconds before a stream that ended by itself (e.g. Alpaca's 409) is started again.
RESTART_SECONDS = 10.0
#: A refused stream message is logged the first time and then once per this many.
REFUSED_LOG_EVERY = 1000
_OPTION = re.compile(r"[A-Z]{1,6}\d{6}[CP]\d{8}")
ZERO = Decimal(0)


def stream_kind(symbol: str) -> str | None:
    """Which stream carries a symbol: "crypto", "stock", or None (options are not streamed)."""
    if "/" in symbol:
        return "crypto"
    if _OPTION.fullmatch(symbol):
        return None
    return "stock"


def stock_stream(feed: str, silence: float | None) -> StockDataStream:
    """The stock stream of ``feed`` (iex or sip), handing its handlers raw messages;
    ``silence``: the seconds without data that count as a drop (None: never)."""
    key, secret = settings.ALPACA_DATA_CREDENTIALS
    return StockDataStream(
        key,
        secret,
        raw_data=True,
        feed=DataFeed(feed),
        url_override=f"{settings.ALPACA_STREAM_URL.rstrip('/')}/v2/{feed}",
        data_timeout=silence,
    )


def crypto_stream(silence: float | None) -> CryptoDataStream:
    """The crypto stream, handing its handlers raw messages (``silence`` as for stocks)."""
    key, secret = settings.ALPACA_DATA_CREDENTIALS
    return CryptoDataStream(
        key,
        secret,
        raw_data=True,
        url_override=f"{settings.ALPACA_STREAM_URL.rstrip('/')}/v1beta3/crypto/us",
        data_timeout=silence,
    )


class TrackedSource(Protocol):
    """Where the consumer learns what to stream (marketdata.book.TrackedSymbols)."""

    channel: str

    def read(self) -> tuple[set[str], bool]:
        """The tracked symbols and whether that set is complete (else only add from it)."""

    def holder_counts(self, symbols: Iterable[str]) -> dict[str, int]:
        """Accounts holding each symbol, to choose within a feed's symbol limit."""


class QuoteBatcher:
    """The stream handlers and the batching writer behind them.

    ``on_quote``/``on_trade`` take the streams' raw messages on the streams' loops and only
    touch memory under a lock; :meth:`run` (a thread of its own) writes what accumulated.
    ``messages`` and ``last_message_at`` move when the writer takes a batch (at most a flush
    period late), which keeps the clock off the per-message path.
    """

    def __init__(
        self,
        cache: PriceCache,
        flush_seconds: float | None = None,
        flush_symbols: int | None = None,
    ) -> None:
        self._cache = cache
        self._flush_seconds = flush_seconds or settings.QUOTE_FLUSH_SECONDS
        self._flush_symbols = flush_symbols or settings.QUOTE_FLUSH_SYMBOLS
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._quotes: dict[str, StreamQuote] = {}
        self._trades: dict[str, StreamTrade] = {}
        self._volumes: dict[str, Decimal] = {}
        self._pending = 0
        self._quiet = False  # the last flush found nothing: the next message is flushed at once
        self.messages = 0
        self.refused = 0
        self.last_message_at: float | None = None
        self.flushes = 0
        self.written = 0

    @property
    def pending_symbols(self) -> int:
        with self._lock:
            return len(self._quotes.keys() | self._trades.keys())

    async def on_quote(self, message: dict[str, Any]) -> None:
        quote = read_quote(message)
        if quote is None:
            self._refuse(message)
            return
        with self._lock:
            self._quotes[message["S"]] = quote
            self._pending += 1
            # Once per batch: the count grows by one at most, so it passes N just once.
            full = self._quiet or len(self._quotes) + len(self._trades) == self._flush_symbols
            self._quiet = False
        if full:
            self._wake.set()

    async def on_trade(self, message: dict[str, Any]) -> None:
        trade = read_trade(message)
        if trade is None:
            self._refuse(message)
            return
        size = traded_size(trade)
        symbol = message["S"]
        with self._lock:
            self._trades[symbol] = trade
            self._volumes[symbol] = self._volumes.get(symbol, ZERO) + size
            self._pending += 1
            full = self._quiet or len(self._quotes) + len(self._trades) == self._flush_symbols
            self._quiet = False
        if full:
            self._wake.set()

    def _refuse(self, message: dict[str, Any]) -> None:
        """Count and log a message the SDK's models would have refused (they ended its frame
        with a traceback; the rest of the frame goes on here)."""
        with self._lock:
            self.refused += 1
            refused = self.refused
        if refused == 1 or refused % REFUSED_LOG_EVERY == 0:
            logger.warning("stream message refused (%d so far): %r", refused, message)

    def flush(self) -> int:
        """Write what accumulated in one batch; returns the symbols written. On a Redis error
        the batch goes back (under anything newer) and the error is raised."""
        with self._lock:
            quotes, trades, volumes = self._quotes, self._trades, self._volumes
            self._quotes, self._trades, self._volumes = {}, {}, {}
            if self._pending:
                self.messages += self._pending
                self.last_message_at = time.time()
            self._pending = 0
        if not quotes and not trades:
            return 0
        trade_rows = {s: trade_row(t) for s, t in trades.items()}
        try:
            written = self._cache.write_batch(
                {s: quote_row(q) for s, q in quotes.items()},
                {s: fields for s, (fields, _) in trade_rows.items()},
                {s: (trade_rows[s][1], v) for s, v in volumes.items()},
            )
        except redis.RedisError:
            self._put_back(quotes, trades, volumes)
            raise
        self.flushes += 1
        self.written += written
        return written

    def _put_back(
        self,
        quotes: dict[str, StreamQuote],
        trades: dict[str, StreamTrade],
        volumes: dict[str, Decimal],
    ) -> None:
        with self._lock:
            for symbol, quote in quotes.items():
                self._quotes.setdefault(symbol, quote)
            for symbol, trade in trades.items():
                self._trades.setdefault(symbol, trade)
            for symbol, size in volumes.items():
                self._volumes[symbol] = self._volumes.get(symbol, ZERO) + size

    def run(self, stop: threading.Event) -> None:
        """Flush every QUOTE_FLUSH_SECONDS (sooner when QUOTE_FLUSH_SYMBOLS wait, at once
        for the first message after a flush that found nothing) until ``stop`` is set, then
        flush once more."""
        failures = 0
        backoff = Backoff(self._flush_seconds * 2, REDIS_MAX_BACKOFF)
        while True:
            stopping = stop.is_set()
            try:
                written = self.flush()
                if not written:
                    with self._lock:
                        self._quiet = not (self._quotes or self._trades)
                if failures:
                    logger.info("price cache writable again after %d failed flushes", failures)
                failures = 0
                backoff.reset()
            except redis.RedisError as error:
                failures += 1
                if failures == 1 or failures % 50 == 0:
                    logger.warning("price cache write failed (%d): %s", failures, error)
                if stopping:
                    return
                stop.wait(backoff.next())
                continue
            if stopping:
                return
            self._wake.wait(self._flush_seconds)
            self._wake.clear()

    def wake(self) -> None:
        """Have the writer flush now instead of at the end of its period (after setting its
        ``stop``: the last batch goes at once)."""
        self._wake.set()


class FeedStream:
    """One alpaca-py data stream on its own thread and loop, subscribed to a symbol set that
    :meth:`set_symbols` changes from the consumer's thread."""

    def __init__(self, name: str, build: Callable[[], DataStream], batcher: QuoteBatcher) -> None:
        self.name = name
        self._build = build
        self._batcher = batcher
        self._stream: DataStream | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.symbols: frozenset[str] = frozenset()

    @property
    def connected(self) -> bool:
        # The SDK's own flag: authenticated and subscribed on a live socket.
        return bool(
            self._thread and self._thread.is_alive() and compat.stream_is_running(self._stream)
        )

    def set_symbols(self, symbols: frozenset[str]) -> None:
        """Stream exactly ``symbols``: start, (un)subscribe the difference, or stop."""
        if not symbols:
            self.stop()
            return
        if self._thread is not None and not self._thread.is_alive():
            if time.monotonic() - self._started < RESTART_SECONDS:
                return
            logger.warning("%s stream ended by itself; starting it again", self.name)
            self.stop()
        if self._stream is None:
            self._start(symbols)
            return
        added = sorted(symbols - self.symbols)
        removed = sorted(self.symbols - symbols)
        try:
            if added:
                self._stream.subscribe_quotes(self._batcher.on_quote, *added)
                self._stream.subscribe_trades(self._batcher.on_trade, *added)
            if removed:
                self._stream.unsubscribe_quotes(*removed)
                self._stream.unsubscribe_trades(*removed)
        except Exception as error:
            # The socket is down; the SDK resubscribes on reconnect, we retry the rest later.
            logger.warning("%s stream (un)subscribe deferred: %s", self.name, error)
            return
        if added or removed:
            logger.info("%s stream: +%d -%d symbols", self.name, len(added), len(removed))
        self.symbols = symbols

    def _start(self, symbols: frozenset[str]) -> None:
        stream = self._build()
        # Not running yet, so these only record the handlers; the first connect sends them.
        stream.subscribe_quotes(self._batcher.on_quote, *symbols)
        stream.subscribe_trades(self._batcher.on_trade, *symbols)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run, args=(stream, loop), name=f"quotes-{self.name}", daemon=True
        )
        self._stream, self._loop, self._thread = stream, loop, thread
        self.symbols = symbols
        self._started = time.monotonic()
        thread.start()
        logger.info("%s stream started with %d symbols", self.name, len(symbols))

    def _run(self, stream: DataStream, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(compat.run_stream_forever(stream))
        except Exception:
            logger.exception("%s stream failed", self.name)
        finally:
            loop.close()

    def stop(self) -> None:
        """Close the connection and end the thread (within a few seconds)."""
        stream, loop, thread = self._stream, self._loop, self._thread
        self._stream = self._loop = self._thread = None
        self.symbols = frozenset()
        if stream is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), loop).result(timeout=5)
        except Exception as error:  # the loop already ended, or is stuck
            logger.debug("%s stream stop: %s", self.name, error)
        thread.join(timeout=10)
        if thread.is_alive():
            logger.warning("%s stream thread did not end in time", self.name)


class QuoteConsumer:
    """Leader election, the streams, the writer and the status, run by :meth:`run`."""

    def __init__(
        self,
        source: TrackedSource,
        *,
        feed: str | None = None,
        silence_seconds: float | None = None,
        symbol_limit: int | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        self._source = source
        self._client = client or redis_client()
        self._feed = feed or settings.ALPACA_DATA_FEED
        if self._feed not in (DataFeed.IEX.value, DataFeed.SIP.value):
            raise ImproperlyConfigured(f"ALPACA_DATA_FEED must be iex or sip, not {self._feed!r}")
        silence = (
            settings.QUOTE_STREAM_SILENCE_SECONDS if silence_seconds is None else silence_seconds
        )
        self._silence = silence or None
        self._limit = settings.QUOTE_STREAM_SYMBOL_LIMIT if symbol_limit is None else symbol_limit
        self._lock_seconds = settings.QUOTE_LOCK_SECONDS
        self.batcher = QuoteBatcher(PriceCache(self._client))
        self.feeds = {
            "stocks": FeedStream(
                self._feed, partial(stock_stream, self._feed, self._silence), self.batcher
            ),
            "crypto": FeedStream("crypto", partial(crypto_stream, self._silence), self.batcher),
        }
        self._lock = self._client.lock(
            LEADER_LOCK, timeout=self._lock_seconds, blocking=False, thread_local=False
        )
        self._identity = f"{socket.gethostname()}:{os.getpid()}"
        self.leading = threading.Event()
        self.unstreamed = 0
        self._counted = (0, time.monotonic())

    # --- leadership -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Stream while leading, wait as a standby otherwise, until ``stop`` is set."""
        while not stop.is_set():
            if not self._try_lead():
                stop.wait(self._lock_seconds / 3)
                continue
            try:
                self._lead(stop)
            except Exception:
                logger.exception("quote consumer failed; starting over")
                stop.wait(RESTART_SECONDS)

    def _try_lead(self) -> bool:
        try:
            return bool(self._lock.acquire())
        except redis.RedisError as error:
            logger.warning("quote consumer: Redis unavailable for the leader lock (%s)", error)
            return False

    def _renew(self) -> bool:
        """Keep the lock; False when another consumer holds it now."""
        try:
            self._lock.reacquire()
            return True
        except LockNotOwnedError:
            try:
                if self._lock.acquire():
                    logger.info("quote consumer: leader lock lost (Redis restarted?) and retaken")
                    return True
            except redis.RedisError:
                return True
            logger.warning("quote consumer: another consumer leads now; standing by")
            return False
        except redis.RedisError as error:
            logger.warning("quote consumer: could not renew the leader lock (%s)", error)
            return True

    def _lead(self, stop: threading.Event) -> None:
        logger.info("quote consumer %s leads", self._identity)
        self.leading.set()
        writer_stop = threading.Event()
        writer = threading.Thread(
            target=self.batcher.run, args=(writer_stop,), name="quotes-writer", daemon=True
        )
        writer.start()
        pubsub: redis.client.PubSub | None = None
        renew_at = reconcile_at = status_at = 0.0
        dirty = True
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= renew_at:
                    if not self._renew():
                        return
                    renew_at = now + self._lock_seconds / 3
                if dirty or now >= reconcile_at:
                    dirty = not self._reconcile()
                    reconcile_at = now + RECONCILE_SECONDS
                if now >= status_at:
                    self._write_status()
                    status_at = now + STATUS_SECONDS
                pubsub, hinted = self._listen(pubsub, stop)
                dirty = dirty or hinted
        finally:
            for feed in self.feeds.values():
                feed.stop()
            writer_stop.set()
            self.batcher.wake()
            writer.join()
            if pubsub is not None:
                pubsub.close()
            self.leading.clear()
            self._step_down(stop.is_set())

    def _step_down(self, stopping: bool) -> None:
        try:
            if stopping:
                self._client.delete(STATUS_KEY)
            self._lock.release()
        except (redis.RedisError, redis.exceptions.LockError):
            pass  # not ours any more, or Redis is away: the TTL frees it

    def _listen(
        self, pubsub: redis.client.PubSub | None, stop: threading.Event
    ) -> tuple[redis.client.PubSub | None, bool]:
        """Wait up to a status period for a tracked-set change; (pubsub, whether to re-read)."""
        try:
            if pubsub is None:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._source.channel)
                return pubsub, True  # changes may have been missed while unsubscribed
            return pubsub, pubsub.get_message(timeout=STATUS_SECONDS / 2) is not None
        except redis.RedisError:
            if pubsub is not None:
                pubsub.close()
            stop.wait(STATUS_SECONDS)
            return None, False

    # --- what to stream -----------------------------------------------------------------

    def _reconcile(self) -> bool:
        """Bring each stream's subscription to the tracked set; False if Redis failed."""
        try:
            symbols, complete = self._source.read()
            if not complete:
                symbols |= {s for feed in self.feeds.values() for s in feed.symbols}
            stocks = {s for s in symbols if stream_kind(s) == "stock"}
            crypto = {s for s in symbols if stream_kind(s) == "crypto"}
            if self._limit and len(stocks) > self._limit:
                counts = self._source.holder_counts(stocks)
                chosen = sorted(stocks, key=lambda s: (-counts.get(s, 0), s))[: self._limit]
                if len(stocks) - self._limit != self.unstreamed:
                    logger.warning(
                        "the %s feed streams at most %d symbols: %d tracked symbols keep their "
                        "collected price",
                        self._feed,
                        self._limit,
                        len(stocks) - self._limit,
                    )
                self.unstreamed = len(stocks) - self._limit
                stocks = set(chosen)
            else:
                self.unstreamed = 0
        except redis.RedisError as error:
            logger.warning("quote consumer: tracked symbols unreadable (%s)", error)
            return False
        self.feeds["stocks"].set_symbols(frozenset(stocks))
        self.feeds["crypto"].set_symbols(frozenset(crypto))
        return True

    def _write_status(self) -> None:
        messages, counted_at = self.batcher.messages, time.monotonic()
        previous, previous_at = self._counted
        rate = (messages - previous) / max(counted_at - previous_at, 1e-6)
        self._counted = (messages, counted_at)
        last = self.batcher.last_message_at
        fields = {
            "leader": self._identity,
            "updated_at": moments.stored(datetime.now(UTC)),
            "last_message_at": moments.stored(datetime.fromtimestamp(last, UTC)) if last else "",
            "messages_per_second": f"{rate:.1f}",
            "messages_total": messages,
            "feeds": ",".join(f.name for f in self.feeds.values() if f.connected),
            "subscribed": sum(len(f.symbols) for f in self.feeds.values()),
            "unstreamed": self.unstreamed,
            "pending_symbols": self.batcher.pending_symbols,
        }
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.hset(STATUS_KEY, mapping=fields)
            pipe.expire(STATUS_KEY, STATUS_TTL)
            pipe.execute()
        except redis.RedisError:
            pass  # the writer logs Redis outages


def consumer_status(client: redis.Redis | None = None) -> dict[str, str]:
    """The leading consumer's last report (the fields ``_write_status`` writes, as text);
    empty when no consumer has reported within STATUS_TTL."""
    raw = (client or redis_client()).hgetall(STATUS_KEY)
    return {field.decode(): value.decode() for field, value in raw.items()}
