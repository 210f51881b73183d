"""Real-time market data over websockets, speaking Alpaca's v2 stream protocol.

Stocks at ``/v2/iex`` and ``/v2/sip``, crypto at ``/v1beta3/crypto/us`` (the URL
``CryptoDataStream`` builds). Every frame is binary msgpack, timestamps are msgpack
``Timestamp`` values, and errors carry Alpaca's codes (400 invalid syntax, 401 not
authenticated, 402 auth failed, 403 already authenticated, 404 auth timeout, 405 symbol
limit exceeded, 406 connection limit exceeded, 407 slow client, 500 internal error).

The quote pump (:meth:`StreamHub.run`) advances the market every ``PUMP_INTERVAL`` and fans
each batch out: every message is built once, each connection gets one frame holding the
messages it subscribed to. Subscriptions are kept as precomputed sets of ``(type, symbol)``
keys, with the wildcard expanded to the feed's universe, so the fan-out is one set lookup per
message and connection. Frames go through a bounded per-connection outbox drained by its own
writer task, so a slow client never stalls the pump: it is told 407 and dropped, as Alpaca
does.

Channels carrying data are trades, quotes and minute bars. ``updatedBars``, ``dailyBars``,
``statuses``, ``lulds``, ``orderbooks`` and the like are accepted but not echoed: the sandbox
publishes nothing on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgpack
from aiohttp import WSMsgType, web

from .bars import live_minute_bar
from .data_api import bar_body, quote_body, taker_side, trade_body

if TYPE_CHECKING:
    from .market import Tick
    from .server import Sandbox

logger = logging.getLogger(__name__)

#: Seconds between pump batches; each batch is one frame per subscribed connection.
PUMP_INTERVAL = 0.05
#: After a stall the pump publishes at most this many seconds' worth of quotes at once.
MAX_CATCH_UP = 1.0
#: Seconds a new connection has to authenticate.
AUTH_TIMEOUT = 10.0
#: Frames a connection may have waiting before it counts as a slow client (~20 s of batches).
OUTBOX_FRAMES = 400
#: Seconds to let a connection flush its last frames and close before cutting it off.
CLOSE_GRACE = 2.0
#: Largest client frame accepted: a subscription to every symbol fits easily.
MAX_CLIENT_MESSAGE = 1 << 20

#: Channels that carry data, and the message type (``T``) each one publishes.
DATA_CHANNELS = {"trades": "t", "quotes": "q", "bars": "b"}
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    500: "internal error",
}
#: What ``stats()`` counts since start.
COUNTERS = (
    "connections_opened",
    "dropped",
    "slow_clients",
    "ticks",
    "messages_sent",
    "frames_sent",
    "bytes_sent",
)
_CLOSE = None  # outbox sentinel: close the socket after what is queued


@dataclass(frozen=True)
class Feed:
    """One websocket endpoint and its plan limits."""

    name: str  # iex | sip | crypto
    path: str
    crypto: bool
    wildcard: bool  # "*" allowed
    symbol_limited: bool  # config.iex_symbol_limit applies


FEEDS = (
    Feed("iex", "/v2/iex", crypto=False, wildcard=False, symbol_limited=True),
    Feed("sip", "/v2/sip", crypto=False, wildcard=True, symbol_limited=False),
    Feed("crypto", "/v1beta3/crypto/us", crypto=True, wildcard=True, symbol_limited=False),
)


@dataclass(frozen=True, slots=True)
class Print:
    """A trade the feed published, remembered for ``/trades/latest``."""

    time: datetime
    size: float
    trade_id: int
    taker: str


class ProtocolError(Exception):
    """A client message Alpaca answers with an error code."""

    def __init__(self, code: int) -> None:
        super().__init__(ERRORS[code])
        self.code = code


def _frame(*messages: dict) -> bytes:
    return msgpack.packb(list(messages))


def _error(code: int) -> bytes:
    return _frame({"T": "error", "code": code, "msg": ERRORS[code]})


class Connection:
    """One client socket: its feed, credentials, subscription and outbox."""

    def __init__(self, feed: Feed, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.feed = feed
        self.ws = ws
        self.transport = request.transport
        self.peer = request.remote
        self.key: str | None = None  # set once authenticated
        self.subscriptions: dict[str, dict[str, None]] = {c: {} for c in DATA_CHANNELS}
        self.wanted: frozenset[tuple[str, str]] = frozenset()
        self.closing = False
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(OUTBOX_FRAMES)
        self.writer = asyncio.create_task(self._write(), name=f"stream-writer-{feed.name}")

    def send(self, frame: bytes) -> bool:
        """Queue a frame; False when the outbox is full (the client is not keeping up)."""
        if self.closing:
            return True
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def close(self, final: bytes | None = None) -> None:
        """Send ``final`` after what is queued (or instead of it, if the outbox is full) and
        close the socket."""
        if self.closing:
            return
        self.closing = True
        if self.outbox.qsize() >= OUTBOX_FRAMES - 1:
            while not self.outbox.empty():
                self.outbox.get_nowait()
        if final is not None:
            self.outbox.put_nowait(final)
        self.outbox.put_nowait(_CLOSE)

    async def finish(self) -> None:
        """Let the writer flush and close, within ``CLOSE_GRACE``; then cut it off."""
        self.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.writer), CLOSE_GRACE)
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.writer

    async def _write(self) -> None:
        try:
            while (frame := await self.outbox.get()) is not _CLOSE:
                await self.ws.send_bytes(frame)
            await self.ws.close()
        except ConnectionError:
            logger.debug("stream client %s went away mid-write", self.peer)


class StreamHub:
    """Every market-data websocket, and the pump that feeds them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.auth_timeout = AUTH_TIMEOUT
        market = sandbox.market
        self._crypto = frozenset(s for s in market.streamable_symbols if market.assets[s].is_crypto)
        self._stocks = market.streamable_symbols - self._crypto
        self._connections: set[Connection] = set()
        self._subscribed: list[Connection] = []  # authenticated, with a non-empty subscription
        self._interest: frozenset[tuple[str, str]] = frozenset()  # union of their keys
        self._bar_symbols: frozenset[str] = frozenset()
        self._prints: dict[str, Print] = {}
        self._minute: datetime | None = None
        self._counts: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self._pump_cpu = 0.0  # CPU seconds spent in step(), writes to sockets excluded

    # -- public surface --------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.get(feed.path, self._handler(feed)) for feed in FEEDS]

    async def run(self) -> None:
        """The quote pump: for the process lifetime, step the market every ``PUMP_INTERVAL``
        by as many quotes as ``quotes_per_second`` owes (fractions carry over) and publish."""
        loop = asyncio.get_running_loop()
        previous = loop.time()
        owed = 0.0
        while True:
            await asyncio.sleep(PUMP_INTERVAL)
            current = loop.time()
            if current - previous > MAX_CATCH_UP:
                # Something held the event loop: quotes stopped meanwhile (tests see a silence).
                logger.warning("quote pump late by %.2fs", current - previous - PUMP_INTERVAL)
            owed += self.sandbox.config.quotes_per_second * min(current - previous, MAX_CATCH_UP)
            previous = current
            count = int(owed)
            owed -= count
            started = time.thread_time()
            try:
                self.step(datetime.now(UTC), count)
            except Exception:
                logger.exception("quote pump batch failed; the pump carries on")
            self._pump_cpu += time.thread_time() - started

    async def close_all(self) -> None:
        """Close every connection cleanly (server shutdown)."""
        connections = list(self._connections)
        for connection in connections:
            self._forget(connection)
        await asyncio.gather(*(c.finish() for c in connections), return_exceptions=True)

    async def drop_all(self) -> int:
        """Cut every connection as a network failure would: no close frame, no goodbye."""
        connections = list(self._connections)
        for connection in connections:
            self._forget(connection)
            if connection.transport is not None:
                connection.transport.abort()
        self._counts["dropped"] += len(connections)
        logger.info("dropped %d stream connections", len(connections))
        return len(connections)

    def last_print(self, symbol: str) -> Print | None:
        return self._prints.get(symbol)

    def stats(self) -> dict:
        by_feed = Counter(c.feed.name for c in self._connections)
        return {
            "connections": {feed.name: by_feed[feed.name] for feed in FEEDS},
            "subscribed": len(self._subscribed),
            "pump_cpu_seconds": round(self._pump_cpu, 3),
            **self._counts,
        }

    # -- connections -----------------------------------------------------------------------
    def _handler(self, feed: Feed) -> Callable[[web.Request], Awaitable[web.WebSocketResponse]]:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            # No permessage-deflate: loopback clients gain nothing and it would cost the pump.
            ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_CLIENT_MESSAGE)
            await ws.prepare(request)
            await self._serve(Connection(feed, ws, request))
            return ws

        return handler

    async def _serve(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout
        self._connections.add(connection)
        self._counts["connections_opened"] += 1
        connection.send(_frame({"T": "success", "msg": "connected"}))
        try:
            while not connection.closing:
                waiting = None if connection.key else max(0.0, deadline - loop.time())
                try:
                    message = await connection.ws.receive(timeout=waiting)
                except TimeoutError:
                    self._refuse(connection, 404)
                    break
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break  # close, closing, closed or error: the client is gone
                data = message.data if message.type == WSMsgType.BINARY else message.data.encode()
                self._receive(connection, data)
        finally:
            self._forget(connection)
            await connection.finish()

    def _receive(self, connection: Connection, data: bytes) -> None:
        """Answer one client message; a bug answers 500 and the connection lives on."""
        try:
            self._act(connection, data)
        except ProtocolError as error:
            self._reply(connection, _error(error.code))
        except Exception:
            logger.exception("stream message from %s failed", connection.peer)
            self._reply(connection, _error(500))

    def _act(self, connection: Connection, data: bytes) -> None:
        try:
            message = msgpack.unpackb(data)
        except (ValueError, TypeError):
            raise ProtocolError(400) from None
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            raise ProtocolError(400)
        action = message["action"]
        if action == "auth":
            self._authenticate(connection, message)
        elif action in ("subscribe", "unsubscribe"):
            if connection.key is None:
                raise ProtocolError(401)
            self._change_subscription(connection, message, adding=action == "subscribe")
        else:
            raise ProtocolError(400)

    def _authenticate(self, connection: Connection, message: dict) -> None:
        if connection.key is not None:
            raise ProtocolError(403)
        key, secret = message.get("key"), message.get("secret")
        if not (
            isinstance(key, str)
            and isinstance(secret, str)
            and key.isascii()
            and secret.isascii()
            and self.sandbox.credentials.matches(key, secret)
        ):
            self._refuse(connection, 402)
            return
        open_sessions = sum(
            1 for c in self._connections if c.key == key and c.feed == connection.feed
        )
        if open_sessions >= self.sandbox.config.stream_connection_limit:
            self._refuse(connection, 406)
            return
        connection.key = key
        self._reply(connection, _frame({"T": "success", "msg": "authenticated"}))

    def _change_subscription(self, connection: Connection, message: dict, adding: bool) -> None:
        """Apply a (un)subscribe to a copy; commit it only if the plan allows it, then echo
        the full current subscription, as Alpaca does."""
        for name, symbols in message.items():
            if name != "action" and not (
                isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)
            ):
                raise ProtocolError(400)
        proposed = {channel: dict(symbols) for channel, symbols in connection.subscriptions.items()}
        for channel, current in proposed.items():
            for symbol in message.get(channel, ()):
                if adding:
                    current[symbol] = None
                else:
                    current.pop(symbol, None)
        feed = connection.feed
        if not feed.wildcard and any("*" in symbols for symbols in proposed.values()):
            raise ProtocolError(405)
        if feed.symbol_limited:
            distinct = set().union(*proposed.values())
            if len(distinct) > self.sandbox.config.iex_symbol_limit:
                raise ProtocolError(405)
        connection.subscriptions = proposed
        universe = self._crypto if feed.crypto else self._stocks
        wanted: set[tuple[str, str]] = set()
        for channel, kind in DATA_CHANNELS.items():
            symbols = proposed[channel]
            chosen = universe if "*" in symbols else universe.intersection(symbols)
            wanted.update((kind, symbol) for symbol in chosen)
        connection.wanted = frozenset(wanted)
        self._reindex()
        echo = {"T": "subscription", **{c: list(s) for c, s in proposed.items()}}
        self._reply(connection, _frame(echo))

    def _reply(self, connection: Connection, frame: bytes) -> None:
        if not connection.send(frame):
            self._slow(connection)

    def _refuse(self, connection: Connection, code: int) -> None:
        """Answer with a fatal error and close; the slot is freed at once."""
        self._forget(connection)
        connection.close(_error(code))

    def _slow(self, connection: Connection) -> None:
        logger.warning("stream client %s is not keeping up; dropping it", connection.peer)
        self._counts["slow_clients"] += 1
        self._refuse(connection, 407)

    def _forget(self, connection: Connection) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            self._reindex()

    def _reindex(self) -> None:
        """Recompute who gets data and the union of what they want (on subscription changes
        only, never per batch)."""
        self._subscribed = [
            c for c in self._connections if c.key is not None and c.wanted and not c.closing
        ]
        self._interest = frozenset().union(*(c.wanted for c in self._subscribed))
        self._bar_symbols = frozenset(symbol for kind, symbol in self._interest if kind == "b")

    # -- the pump --------------------------------------------------------------------------
    def step(self, now: datetime, count: int) -> None:
        """One batch at ``now``: advance the market by ``count`` quotes, publish what each
        connection subscribed to and, on a new minute, the bars of the one that ended.
        :meth:`run` calls it on the wall clock; tests call it with a clock of their own."""
        ticks = self.sandbox.market.step(now, count)
        self._counts["ticks"] += len(ticks)
        for tick in ticks:
            if tick.trade_price is not None:
                self._prints[tick.symbol] = Print(
                    now,
                    tick.trade_size,
                    tick.trade_id,
                    taker_side(tick.trade_price, tick.bid, tick.ask),
                )
        batch = self._messages(ticks, now)
        minute = now.replace(second=0, microsecond=0)
        if self._minute is not None and minute > self._minute:
            batch.extend(self._minute_bars(self._minute))
        self._minute = minute
        if batch and not self.sandbox.faults.silent:
            self._publish(batch)

    def _messages(self, ticks: list[Tick], now: datetime) -> list[tuple[tuple[str, str], dict]]:
        """This batch's messages that someone wants, each built once, keyed for the fan-out."""
        interest = self._interest
        if not interest:
            return []
        stamp = msgpack.Timestamp.from_datetime(now)
        out = []
        for tick in ticks:
            symbol = tick.symbol
            crypto = symbol in self._crypto
            key = ("q", symbol)
            if key in interest:
                message = {"T": "q", "S": symbol}
                message.update(
                    quote_body(crypto, tick.bid, tick.ask, tick.bid_size, tick.ask_size, stamp)
                )
                out.append((key, message))
            key = ("t", symbol)
            if tick.trade_price is not None and key in interest:
                printed = self._prints[symbol]
                message = {"T": "t", "S": symbol}
                message.update(
                    trade_body(
                        crypto,
                        tick.trade_price,
                        tick.trade_size,
                        tick.trade_id,
                        printed.taker,
                        stamp,
                    )
                )
                out.append((key, message))
        return out

    def _minute_bars(self, minute: datetime) -> list[tuple[tuple[str, str], dict]]:
        """Bars of the minute that just ended, for subscribed symbols that printed in it."""
        out = []
        for symbol in self._bar_symbols:
            bar = live_minute_bar(self.sandbox.market, symbol, minute)
            if bar is not None and bar.volume > 0:
                message = {"T": "b", "S": symbol}
                message.update(bar_body(bar, msgpack.Timestamp.from_datetime(bar.time)))
                out.append((("b", symbol), message))
        return out

    def _publish(self, batch: list[tuple[tuple[str, str], dict]]) -> None:
        packer = msgpack.Packer()
        counts = self._counts
        for connection in self._subscribed:
            wanted = connection.wanted
            messages = [message for key, message in batch if key in wanted]
            if not messages:
                continue
            frame = packer.pack(messages)
            if connection.send(frame):
                counts["messages_sent"] += len(messages)
                counts["frames_sent"] += 1
                counts["bytes_sent"] += len(frame)
            else:
                self._slow(connection)
