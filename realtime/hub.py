"""This process's open sockets: the count the limits need, ONE heartbeat task for all of them,
and the drain on shutdown.

A socket registers once admitted and unregisters when it closes. While any is open, one task
per process (not one per socket: idle sockets must stay cheap) wakes every
WS_HEARTBEAT_INTERVAL and

* re-authorizes every socket in one batch (:func:`realtime.auth.arevocations`): signed out
  or deactivated → 4401, the account no longer linked → 4403 — so a socket outlives its
  login by one interval at most. When the database cannot answer (within
  :data:`RECHECK_SECONDS`) the beat goes on without it, logged, and the next one checks again;
* closes sockets whose client has sent nothing for WS_HEARTBEAT_TIMEOUT (4408) — any frame
  counts, the answer to our ``ping`` included;
* sends every other socket a ``{"type": "ping"}``;
* renews, in one pipelined round trip, the sockets' connection leases (:mod:`realtime.limits`)
  and their accounts' presence (:mod:`realtime.presence`) — written again if Redis lost them —
  so the calculator keeps pushing to them, while a crashed process's entries expire.

Between heartbeats it checks, every :data:`PRESENCE_CHECK_SECONDS` (one ``EXISTS``), that
Redis still has the process's presence mark; when it does not (Redis restarted, empty), the
leases and presence are written again at once, so live values resume within seconds rather
than at the next heartbeat.

It also admits at most :data:`ADMISSIONS_AT_ONCE` handshakes at a time (see there), and in
front of everything, :class:`HandshakeGate` turns away (1013, ``server_busy``) any handshake
beyond WS_MAX_PENDING_HANDSHAKES in progress, before a session or database read: the surplus of
a reconnect storm waits on the clients' backoff instead of daphne's handshake timeout.

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
import uuid
import weakref
from collections.abc import Callable
from typing import Protocol, TypeVar

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from . import auth, limits, presence, stats
from .protocol import (
    GOING_AWAY,
    GOING_AWAY_MESSAGE,
    HEARTBEAT_TIMEOUT,
    TRY_AGAIN_LATER,
    encode,
    error,
)
from .redis_loop import loop_client
from .tickets import Credential

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
#: Seconds between two checks that Redis still has this process's presence.
PRESENCE_CHECK_SECONDS = 1.0
LET_GO_SECONDS = 2.0
#: Seconds a heartbeat gives the database to re-authorize every socket.
RECHECK_SECONDS = 10.0
#: Sockets a heartbeat pings before it lets the loop run: one pass over 1,000 sockets held
#: every update behind it for ~400 ms (bench.sockets e2e, every WS_HEARTBEAT_INTERVAL).
BEAT_SLICE = 100


class Socket(Protocol):
    connection_id: str
    user_id: int
    account_id: str | None
    credential: Credential | None
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
        self.handshaking = 0  # handshakes in progress (HandshakeGate)
        self._beat: asyncio.Task | None = None
        self.process_id = uuid.uuid4().hex
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
        interval = settings.WS_HEARTBEAT_INTERVAL
        beat_at = time.monotonic() + interval
        marked = False  # until this task writes the mark, its absence says nothing was lost
        while self.sockets:
            await asyncio.sleep(min(PRESENCE_CHECK_SECONDS, max(0.0, beat_at - time.monotonic())))
            try:
                if time.monotonic() >= beat_at:
                    beat_at = time.monotonic() + interval
                    await self.beat()
                elif await self._presence_lost():
                    if marked:
                        logger.warning("ws.presence_lost sockets=%d: writing it again", len(self))
                    sockets = list(self.sockets.values())
                    await self._leases_and_presence(sockets, renew=True, seconds=RENEW_SECONDS)
                marked = True
            except Exception:
                logger.exception("ws.heartbeat failed; retrying next interval")

    async def _presence_lost(self) -> bool:
        """Whether Redis answers but no longer has this process's presence mark."""
        try:
            return not await presence.process_marked(self.process_id)
        except RedisError:
            return False  # away: the first check after it is back will tell

    async def beat(self) -> None:
        """One heartbeat over every socket (see the module docstring)."""
        sockets = list(self.sockets.values())
        revoked = await self._revocations(sockets)
        silent_since = time.monotonic() - settings.WS_HEARTBEAT_TIMEOUT
        alive: list[Socket] = []
        for number, (socket, revocation) in enumerate(zip(sockets, revoked, strict=True), 1):
            if number % BEAT_SLICE == 0:
                await asyncio.sleep(0)  # the pings just queued go out, and updates get through
            if socket.connection_id not in self.sockets:
                continue  # closed while the database answered
            if revocation is not None:
                await socket.close_for(revocation.code, revocation.error_code, revocation.message)
            elif socket.last_seen < silent_since:
                await socket.close_for(
                    HEARTBEAT_TIMEOUT, "heartbeat_timeout", "Nothing from you within the timeout."
                )
            else:
                await socket.heartbeat()
                alive.append(socket)
        if alive:
            await self._leases_and_presence(alive, renew=True, seconds=RENEW_SECONDS)

    async def _revocations(self, sockets: list[Socket]) -> list[auth.Revocation | None]:
        """Why each socket must close now, if it must; none when the database cannot say."""
        try:
            return await asyncio.wait_for(auth.arevocations(sockets), RECHECK_SECONDS)
        except (DatabaseError, TimeoutError) as error:
            logger.warning("ws.hub sockets not re-authorized this beat: %r", error)
            return [None] * len(sockets)

    async def _leases_and_presence(
        self, sockets: list[Socket], renew: bool, seconds: float
    ) -> None:
        """Renew (each heartbeat) or give back (on a drain) the sockets' connection leases and
        their accounts' presence, in one round trip."""
        pipe = loop_client().pipeline(transaction=False)
        pairs = [(s.user_id, s.connection_id) for s in sockets]
        (limits.queue_renew if renew else limits.queue_release)(pipe, pairs)
        (presence.mark_process if renew else presence.unmark_process)(self.process_id, pipe)
        watching = [(s.account_id, s.connection_id) for s in sockets if s.account_id is not None]
        await (presence.arefresh_many if renew else presence.aleave_many)(watching, client=pipe)
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


#: Seconds a turned-away client is told to wait (a hint: the page backs off with jitter).
BUSY_RETRY_AFTER = 2.0


class HandshakeGate:
    """ASGI middleware in front of the WebSocket stack: at most WS_MAX_PENDING_HANDSHAKES
    handshakes in progress in this process — from the request to the application's first
    frame or close — and any more accepted and closed at once with 1013 after an error frame
    ``server_busy`` with ``retry_after``. Turning one away costs no session, database or Redis
    read, so a storm's surplus costs almost nothing until its clients come back."""

    def __init__(self, application: Callable) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        sockets = hub()
        if sockets.handshaking >= settings.WS_MAX_PENDING_HANDSHAKES:
            stats.record_limit_hit("pending_handshakes")
            await _turn_away(receive, send)
            return
        sockets.handshaking += 1
        pending = True

        def done() -> None:
            nonlocal pending
            if pending:
                pending = False
                sockets.handshaking -= 1

        async def send_watched(message: dict) -> None:
            if pending and message["type"] in ("websocket.send", "websocket.close"):
                done()
            await send(message)

        try:
            await self.application(scope, receive, send_watched)
        finally:
            done()


async def _turn_away(receive: Callable, send: Callable) -> None:
    if (await receive())["type"] != "websocket.connect":
        return  # the client left first
    busy = error(
        "server_busy",
        "Too many connections are opening here right now; retry shortly.",
        retry_after=BUSY_RETRY_AFTER,
    )
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": encode(busy)})
    await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": "server_busy"})
