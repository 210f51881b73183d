"""One socket's unsent messages, bounded whatever arrives: a slow client or a burst of pushes
can never make a daphne process's memory grow without limit.

Two kinds of message wait here:

* **in order** (``put``): snapshots, replies, errors, replayed updates, trade-event batches —
  at most :data:`ORDERED_LIMIT`; past that the oldest is dropped (logged);
* **newest wins** (``put_latest(key, ...)``): the account's next update, each symbol's next
  price. An unsent value is replaced by a newer one under the same key — or merged with it,
  when the caller says how (a partial update must not lose the one before it) — so a socket
  holds at most one pending update and one pending price per subscribed symbol.

A flush is scheduled on the first ``put`` and sends everything pending, in-order messages
first; whatever arrives while it awaits the transport is coalesced into the same flush. Idle
sockets hold no task at all. Below this, daphne's transport buffers what was sent without
back-pressure; a client too slow to read stops answering pings too, and the heartbeat closes
it within WS_HEARTBEAT_TIMEOUT, so that buffer is bounded by the push rate times that timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

#: A message: a dict, or frame text already encoded (realtime.protocol.encode takes both).
Message = dict[str, Any] | str

logger = logging.getLogger(__name__)

ORDERED_LIMIT = 256

Send = Callable[[Message], Awaitable[None]]
Flushed = Callable[[int], None]


class Outbox:
    """See the module docstring. ``on_flush(sent)`` reports each flush's message count."""

    __slots__ = ("_send", "_on_flush", "_ordered", "_latest", "_flush")

    def __init__(self, send: Send, on_flush: Flushed | None = None) -> None:
        self._send = send
        self._on_flush = on_flush
        # Made when needed and dropped when drained: thousands of idle sockets hold none.
        self._ordered: deque[Message] | None = None
        self._latest: dict[Hashable, Message] = {}
        self._flush: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._ordered or ()) + len(self._latest)

    def put(self, message: Message) -> None:
        if self._ordered is None:
            self._ordered = deque()
        elif len(self._ordered) >= ORDERED_LIMIT:
            self._ordered.popleft()
            logger.warning("ws.outbox full: the oldest unsent message was dropped")
        self._ordered.append(message)
        self._schedule()

    def put_latest(
        self,
        key: Hashable,
        message: Message,
        merge: Callable[[Any, Any], Message] | None = None,
    ) -> None:
        """Queue ``message`` under ``key``, replacing an unsent one, or ``merge(unsent,
        message)`` when given."""
        unsent = self._latest.pop(key, None)  # re-inserted last: keys flush in change order
        self._latest[key] = message if unsent is None or merge is None else merge(unsent, message)
        self._schedule()

    def discard(self, key: Hashable) -> Message | None:
        """Take back the unsent message under ``key``, if any."""
        return self._latest.pop(key, None)

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        try:
            await self._drain()
        except Exception:  # a send on a closing transport: the socket's own close cleans up
            logger.warning("ws.outbox send failed; its pending messages dropped", exc_info=True)
            self._ordered = None
            self._latest.clear()
        finally:
            self._flush = None

    async def flush(self) -> None:
        """Send everything pending now, after any flush under way (so order holds): what a
        socket does before it closes."""
        if self._flush is not None and self._flush is not asyncio.current_task():
            await self._flush
        await self._drain()

    async def _drain(self) -> None:
        sent = 0
        try:
            while self._ordered or self._latest:
                if self._ordered:
                    message = self._ordered.popleft()
                else:
                    message = self._latest.pop(next(iter(self._latest)))
                await self._send(message)
                sent += 1
            self._ordered = None
        finally:
            if sent and self._on_flush is not None:
                self._on_flush(sent)

    def clear(self) -> None:
        """Forget what is pending (the socket is gone) and stop a scheduled flush."""
        self._ordered = None
        self._latest.clear()
        if self._flush is not None and self._flush is not asyncio.current_task():
            self._flush.cancel()
        self._flush = None
