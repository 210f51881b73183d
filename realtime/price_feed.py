"""Price updates for /ws/stream: ONE reader of ``clera:changes`` per daphne process, fanning out
to its local sockets — never a Redis poll per socket, never a channel-layer message per quote.

Sockets :meth:`~PriceFeed.watch` and :meth:`~PriceFeed.unwatch` symbols; the feed keeps
symbol → sockets in memory. While any socket watches anything, one task reads the changes
stream (``XREAD BLOCK``, from the stream's newest entry when it starts), collects the changed
symbols somebody here watches, and every WS_STREAM_INTERVAL reads their prices from the price
cache in one pipelined round trip and offers each watcher a ``price_update``. A socket's outbox
keeps only the newest update per symbol, so a busy symbol costs a client at most one message
per interval. When Redis fails the feed backs off (:mod:`marketdata.backoff`, up to
``REDIS_MAX_BACKOFF`` seconds) and resumes from the newest entry: updates carry whole prices,
so a missed entry is made good by the next one of the symbol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from django.conf import settings
from redis.exceptions import RedisError

from marketdata.backoff import REDIS_MAX_BACKOFF, Backoff
from marketdata.price_cache import CHANGES_STREAM, AsyncPriceCache

from .hub import loop_singleton
from .prices import price_update
from .redis_loop import loop_client

logger = logging.getLogger(__name__)

#: Most stream entries read per XREAD.
READ_COUNT = 1000
#: Milliseconds an idle XREAD blocks; bounds how late the relay notices it has no watchers.
IDLE_BLOCK_MS = 1000


class Watcher(Protocol):
    def offer_price(self, symbol: str, message: dict[str, Any]) -> None: ...


class PriceFeed:
    """This process's symbol → sockets map and its one reader (see the module docstring)."""

    def __init__(self) -> None:
        self.watchers: dict[str, set[Watcher]] = {}
        self._task: asyncio.Task | None = None

    async def watch(self, watcher: Watcher, symbols: Iterable[str]) -> None:
        """Offer ``watcher`` every change of ``symbols`` recorded from now on."""
        for symbol in symbols:
            self.watchers.setdefault(symbol, set()).add(watcher)
        if self.watchers and (self._task is None or self._task.done()):
            start = await self._start_id()
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run(start))

    def unwatch(self, watcher: Watcher, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            watching = self.watchers.get(symbol)
            if watching is not None:
                watching.discard(watcher)
                if not watching:
                    del self.watchers[symbol]

    async def _start_id(self) -> str:
        newest = await loop_client().xrevrange(CHANGES_STREAM, count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def _run(self, last_id: str | None) -> None:
        backoff = Backoff(maximum=REDIS_MAX_BACKOFF)
        changed: set[str] = set()
        due = time.monotonic()
        while self.watchers:
            try:
                if last_id is None:
                    last_id = await self._start_id()
                wait = max(0.001, due - time.monotonic()) if changed else IDLE_BLOCK_MS / 1000
                answer = await loop_client().xread(
                    {CHANGES_STREAM: last_id}, count=READ_COUNT, block=max(1, int(wait * 1000))
                )
                for _stream, entries in answer:
                    for entry_id, fields in entries:
                        last_id = entry_id.decode()
                        symbols = fields.get(b"symbols")
                        if symbols:
                            changed.update(
                                s for s in symbols.decode().split(",") if s in self.watchers
                            )
                if changed and time.monotonic() >= due:
                    await self.deliver(changed)
                    changed = set()
                    due = time.monotonic() + settings.WS_STREAM_INTERVAL
                backoff.reset()
            except RedisError as error:
                logger.warning(
                    "ws.price_feed redis error, retrying in %.1fs: %s", backoff.seconds, error
                )
                await backoff.sleep()
                last_id = None
            except Exception:  # a bug must not end price updates for the whole process
                logger.exception("ws.price_feed failed; retrying in %.1fs", backoff.seconds)
                await backoff.sleep()
                changed = set()

    async def deliver(self, symbols: Iterable[str], only: Watcher | None = None) -> None:
        """Offer every watcher of ``symbols`` (or just ``only``, a new subscriber) their
        current price_update."""
        now = datetime.now(UTC)
        cached_prices = await AsyncPriceCache(loop_client()).get(symbols)
        for symbol, cached in cached_prices.items():
            message = price_update(cached, now)
            if message is None:
                continue
            for watcher in [only] if only is not None else list(self.watchers.get(symbol, ())):
                watcher.offer_price(symbol, message)


def price_feed() -> PriceFeed:
    """This loop's price feed."""
    return loop_singleton(PriceFeed, PriceFeed)
