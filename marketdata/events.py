"""Alpaca's Broker event streams (Server-Sent Events), read so that no event is lost or doubled.

alpaca-py 0.44 only reads the legacy v1 paths, which Alpaca has switched off for new broker
partners, so this is our own streaming client (aiohttp) for the v2 streams:

* ``/v2/events/trades`` — order lifecycle (new, fill, partial_fill, canceled, ...);
* ``/v2/events/funding/status`` — transfers and bank relationships changing status.

Each :class:`EventStream` authenticates as the gateway does (HTTP Basic with
ALPACA_BROKER_CREDENTIALS against ALPACA_BROKER_URL) and:

* keeps a cursor, the id of the last event it processed, in Redis at
  ``clera:events:cursor:<stream>``, and reconnects with ``since_id=<cursor>`` so the events of
  a gap are replayed. With no cursor yet (a first start, or Redis lost it) the cursor is the
  moment it started, ``@<RFC 3339 moment>``, recorded at once: until the first event moves it
  on, every connection — a restart's too — asks ``since=<moment>``, so an event made while the
  consumer was down or still connecting is never lost, even before it has seen one;
* treats EVENTS_SILENCE_SECONDS without a byte (heartbeats included; Alpaca and the sandbox send
  ``:heartbeat`` every 15 s) as a dead connection, and ``: you are reading too slowly,
  dropped N messages`` or ``: internal server error`` as the end of one: it reconnects from the
  cursor, with exponential backoff (up to EVENTS_MAX_BACKOFF_SECONDS) while failures repeat;
* hands each event to the handler once (ids seen lately are skipped) and moves the cursor only
  after the handler returned, so a crash replays rather than loses. Handlers must still be
  idempotent: after a restart the last event may come again. An event whose handler keeps
  failing is skipped, loudly, after MAX_ATTEMPTS tries;
* answers a refused cursor (400: too old for the broker to replay) by calling ``on_gap`` and
  starting over from live events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import redis
from django.conf import settings

from . import moments
from .backoff import Backoff
from .store import redis_client

logger = logging.getLogger(__name__)

TRADES_PATH = "/v2/events/trades"
FUNDING_PATH = "/v2/events/funding/status"
CURSOR_PREFIX = "clera:events:cursor:"
#: A cursor that is a moment, not an event id (see the module docstring).
TIME_CURSOR = "@"
#: Tries of one event's handler before it is skipped (and logged as an error).
MAX_ATTEMPTS = 5
#: Recently handled ids remembered to skip duplicates within one process.
RECENT_IDS = 10_000
FIRST_BACKOFF = 0.5
#: Pause before reconnecting after a healthy connection ended (a replay request, say).
MIN_DELAY = 0.1
_SLOW = "you are reading too slowly"
_SERVER_ERROR = "internal server error"


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    stream: str
    id: str
    data: dict[str, Any]


class StreamRefused(Exception):
    """The broker answered the stream request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"status {status}: {message[:200]}")
        self.status = status


@dataclass
class StreamStats:
    connections: int = 0
    events: int = 0
    duplicates: int = 0
    skipped: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


class EventStream:
    """One broker SSE stream, followed for ever (until the task running :meth:`run` is
    cancelled), each event handed to ``handle`` on a worker thread."""

    def __init__(
        self,
        name: str,
        path: str,
        handle: Callable[[BrokerEvent], None],
        on_gap: Callable[[], None] | None = None,
        *,
        base_url: str | None = None,
        silence_seconds: float | None = None,
        max_backoff: float | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        self.name = name
        self.url = (base_url or settings.ALPACA_BROKER_URL).rstrip("/") + path
        self._handle = handle
        self._on_gap = on_gap
        self._silence = silence_seconds or settings.EVENTS_SILENCE_SECONDS
        self._max_backoff = max_backoff or settings.EVENTS_MAX_BACKOFF_SECONDS
        self._client = client or redis_client()
        self._cursor_key = CURSOR_PREFIX + name
        self._cursor: str | None = None
        self._heard = False
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.stats = StreamStats()

    @property
    def cursor(self) -> str | None:
        return self._cursor

    async def run(self) -> None:
        """Read, reconnect, repeat; never returns on its own."""
        backoff = Backoff(FIRST_BACKOFF, self._max_backoff)
        self._cursor = await self._initial_cursor()
        key, secret = settings.ALPACA_BROKER_CREDENTIALS
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.ALPACA_TIMEOUT, sock_read=self._silence
        )
        headers = {"Authorization": aiohttp.encode_basic_auth(key, secret)}
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            while True:
                self._heard = False
                try:
                    await self._read(session)
                except StreamRefused as refused:
                    await asyncio.to_thread(self._refused, refused)
                except (TimeoutError, aiohttp.ClientError, redis.RedisError, OSError) as error:
                    logger.warning(
                        "event stream %s interrupted: %s", self.name, type(error).__name__
                    )
                except _HandlerFailed:
                    pass  # logged where it happened; replay from the cursor
                except Exception:
                    logger.exception("event stream %s failed; reconnecting", self.name)
                # A connection that carried events or heartbeats resets the backoff.
                if self._heard:
                    backoff.reset()
                    await asyncio.sleep(MIN_DELAY)
                else:
                    await asyncio.sleep(backoff.next() * random.uniform(0.8, 1.2))

    async def _initial_cursor(self) -> str | None:
        backoff = Backoff(FIRST_BACKOFF * 2, self._max_backoff)
        while True:
            try:
                raw = await asyncio.to_thread(self._client.get, self._cursor_key)
                return raw.decode() if raw else None
            except redis.RedisError as error:
                logger.warning("event stream %s: cursor unreadable (%s)", self.name, error)
                await asyncio.sleep(backoff.next())

    def _refused(self, refused: StreamRefused) -> None:
        """A refused cursor is given up (after ``on_gap``); anything else is only logged."""
        if refused.status != 400 or self._cursor is None:
            logger.error("event stream %s refused: %s", self.name, refused)
            return
        logger.error(
            "event stream %s: the broker refused cursor %s (%s); events since are lost, "
            "continuing live",
            self.name,
            self._cursor,
            refused,
        )
        try:
            if self._on_gap is not None:
                self._on_gap()
            self._client.delete(self._cursor_key)
        except Exception:
            logger.exception("event stream %s: could not record the gap; retrying", self.name)
            return
        self._cursor = None

    async def _read(self, session: aiohttp.ClientSession) -> None:
        """One connection, until the server ends it or asks for a replay from the cursor."""
        if self._cursor is None:
            self._cursor = TIME_CURSOR + moments.iso(datetime.now(UTC))
            await asyncio.to_thread(self._client.set, self._cursor_key, self._cursor)
        params = _since(self._cursor)
        async with session.get(
            self.url, params=params, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status != 200:
                raise StreamRefused(response.status, await response.text())
            self.stats.connections += 1
            logger.info("event stream %s connected (%s)", self.name, params)
            data: list[str] = []
            sse_id: str | None = None
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        await self._dispatch("\n".join(data), sse_id)
                        self._heard = True
                    data, sse_id = [], None
                elif line.startswith(":"):
                    comment = line[1:].strip()
                    if comment.startswith((_SLOW, _SERVER_ERROR)):
                        logger.warning("event stream %s: %s; resuming", self.name, comment)
                        return
                    self._heard = True
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        data.append(value)
                    elif name == "id":
                        sse_id = value
            logger.info("event stream %s ended by the server", self.name)

    async def _dispatch(self, text: str, sse_id: str | None) -> None:
        try:
            data = json.loads(text)
            event_id = str(data.get("event_id") or sse_id or "")
        except (ValueError, AttributeError):
            logger.error("event stream %s: unreadable event skipped: %.200s", self.name, text)
            return
        if not event_id:
            logger.error("event stream %s: event without an id skipped: %.200s", self.name, text)
            return
        if event_id in self._recent:
            self.stats.duplicates += 1
            return
        await asyncio.to_thread(self._process, BrokerEvent(self.name, event_id, data))

    def _process(self, event: BrokerEvent) -> None:
        """Handle, then move the cursor; a failure leaves the cursor for a replay."""
        try:
            self._handle(event)
        except Exception as error:
            attempts = self.stats.attempts.get(event.id, 0) + 1
            if attempts < MAX_ATTEMPTS:
                self.stats.attempts[event.id] = attempts
                logger.warning(
                    "event stream %s: event %s failed (%s), try %d of %d",
                    self.name,
                    event.id,
                    type(error).__name__,
                    attempts,
                    MAX_ATTEMPTS,
                )
                raise _HandlerFailed from error
            logger.exception(
                "event stream %s: event %s skipped after %d tries", self.name, event.id, attempts
            )
            self.stats.skipped += 1
        self.stats.attempts.pop(event.id, None)
        self._client.set(self._cursor_key, event.id)
        self._cursor = event.id
        self.stats.events += 1
        self._recent[event.id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)


def _since(cursor: str) -> dict[str, str]:
    """The replay parameters of a cursor: an event id or a moment."""
    if cursor.startswith(TIME_CURSOR):
        return {"since": cursor.removeprefix(TIME_CURSOR)}
    return {"since_id": cursor}


class _HandlerFailed(Exception):
    """A handler raised; the stream reconnects from its cursor to try the event again."""
