"""This process's open sockets: the count the limits need, ONE heartbeat task for all of them,
and the drain on shutdown.

A socket registers once admitted and unregisters when it closes. While any is open, one task
per process (not one per socket: idle sockets must stay cheap) wakes every
WS_HEARTBEAT_INTERVAL and

* closes sockets whose client has sent nothing for WS_HEARTBEAT_TIMEOUT (4408) — any frame
  counts, the answer to our ``ping`` included;
* sends every other socket a ``{"type": "ping"}``;
* renews, in one pipelined round trip, the sockets' connection leases (:mod:`realtime.limits`)
  and their accounts' presence (:mod:`realtime.presence`) — written again if Redis lost them —
  so the calculator keeps pushing to them, while a crashed process's entries expire.

It also admits at most :data:`ADMISSIONS_AT_ONCE` handshakes at a time (see there).

:meth:`Hub.drain` is the graceful shutdown (see :mod:`realtime.serving`): new sockets are
refused with 1001, every open one is flushed and closed with 1001, their leases and presence
are given back in one round trip (so their users may reconnect elsewhere at once), and it
returns once all have closed or WS_SHUTDOWN_GRACE has passed.

The hub belongs to the running event loop: daphne has one, and each test its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Protocol, TypeVar

from django.conf import settings
from redis.exceptions import RedisError

from . import limits, presence
from .protocol import GOING_AWAY, GOING_AWAY_MESSAGE, HEARTBEAT_TIMEOUT
from .redis_loop import loop_client

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Handshakes admitted at once per process. Admission uses Redis (ticket, leases, presence),
#: the database and, for a snapshot, possibly the broker: after a restart thousands of clients
#: reconnect together, and unbounded they would exhaust the loop's Redis pool (100
#: connections, which fails rather than waits) and queue up on the broker. The rest wait.
ADMISSIONS_AT_ONCE = 32
#: Seconds a heartbeat gives Redis to renew every socket's lease and presence; a draining
#: process, to take them back.
RENEW_SECONDS = 10.0
LET_GO_SECONDS = 2.0


class Socket(Protocol):
    connection_id: str
    user_id: int
    account_id: str | None
    last_seen: float

    async def heartbeat(self) -> None: ...

    async def close_for(
        self, code: int, error_code: str, message: str, *, let_go: bool = True
    ) -> None: ...


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[type, object]] = (
    weakref.WeakKeyDictionary()
)


def loop_singleton(kind: type[T], factory: Callable[[], T]) -> T:
    """The running loop's one ``kind`` object, made by ``factory`` on first use."""
    owned = _per_loop.setdefault(asyncio.get_running_loop(), {})
    found = owned.get(kind)
    if found is None:
        found = owned[kind] = factory()
    return found  # type: ignore[return-value]


class Hub:
    def __init__(self) -> None:
        self.sockets: dict[str, Socket] = {}
        #: Sockets let go of (closed by us) whose client has not finished the close yet.
        self.leaving: dict[str, Socket] = {}
        self.draining = False
        self.admission = asyncio.Semaphore(ADMISSIONS_AT_ONCE)
        self._beat: asyncio.Task | None = None
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self.sockets)

    def register(self, socket: Socket) -> None:
        self.sockets[socket.connection_id] = socket
        self._empty.clear()
        if self._beat is None or self._beat.done():
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    def unregister(self, socket: Socket) -> None:
        """The socket no longer counts (it is closing); :meth:`closed` follows."""
        if self.sockets.pop(socket.connection_id, None) is not None:
            self.leaving[socket.connection_id] = socket

    def closed(self, socket: Socket) -> None:
        """The socket's close is complete."""
        self.sockets.pop(socket.connection_id, None)
        self.leaving.pop(socket.connection_id, None)
        if not self.sockets and not self.leaving:
            self._empty.set()

    async def _heartbeat(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.WS_HEARTBEAT_INTERVAL)
            try:
                await self.beat()
            except Exception:
                logger.exception("ws.heartbeat failed; retrying next interval")

    async def beat(self) -> None:
        """One heartbeat over every socket (see the module docstring)."""
        silent_since = time.monotonic() - settings.WS_HEARTBEAT_TIMEOUT
        alive: list[Socket] = []
        for socket in list(self.sockets.values()):
            if socket.last_seen < silent_since:
                await socket.close_for(
                    HEARTBEAT_TIMEOUT, "heartbeat_timeout", "Nothing from you within the timeout."
                )
            else:
                await socket.heartbeat()
                alive.append(socket)
        if alive:
            await self._leases_and_presence(alive, renew=True, seconds=RENEW_SECONDS)

    async def _leases_and_presence(
        self, sockets: list[Socket], renew: bool, seconds: float
    ) -> None:
        """Renew (each heartbeat) or give back (on a drain) the sockets' connection leases and
        their accounts' presence, in one round trip."""
        pipe = loop_client().pipeline(transaction=False)
        pairs = [(s.user_id, s.connection_id) for s in sockets]
        (limits.queue_renew if renew else limits.queue_release)(pipe, pairs)
        touch = presence.arefresh if renew else presence.aleave
        for socket in sockets:
            if socket.account_id is not None:
                await touch(socket.account_id, socket.connection_id, client=pipe)
        try:
            await asyncio.wait_for(pipe.execute(), seconds)
        except (RedisError, TimeoutError) as error:  # entries expire within two heartbeats
            logger.warning(
                "ws.hub leases and presence not %s: %r", "renewed" if renew else "given back", error
            )

    async def drain(self, grace: float) -> int:
        """Close every socket with 1001 after its pending messages and wait for their clients
        to finish the close; returns how many had not when the grace period ended."""
        self.draining = True
        sockets = list(self.sockets.values())
        logger.info("ws.drain sockets=%d grace=%.1fs", len(sockets), grace)
        await asyncio.gather(
            *(s.close_for(GOING_AWAY, "going_away", GOING_AWAY_MESSAGE, let_go=False)
              for s in sockets),
            return_exceptions=True,
        )  # fmt: skip
        await self._leases_and_presence(sockets, renew=False, seconds=LET_GO_SECONDS)
        try:
            await asyncio.wait_for(self._empty.wait(), grace)
        except TimeoutError:
            logger.warning("ws.drain grace ended with %d sockets closing", len(self.leaving))
        return len(self.sockets) + len(self.leaving)


def hub() -> Hub:
    """This loop's hub."""
    return loop_singleton(Hub, Hub)
