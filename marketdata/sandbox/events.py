"""Broker event streams (Server-Sent Events): trade updates, funding status, account status.

The exchange (:mod:`.exchange`, :mod:`.funding`) publishes every order and funding change
here. Each stream keeps its newest ``buffer_size`` events for replay and fans new ones out to
live listeners, so a client that reconnects with its last ``event_id`` gets exactly what it
missed and then live events, with no gap and no duplicate. Paths and cursors follow Alpaca:
the v2 streams number events with ULIDs; the legacy v1 streams (the only ones alpaca-py 0.44
reads) with a per-stream integer, carrying the ULID as ``event_ulid`` and accepting it as
``since_ulid`` / ``until_ulid``.

Comment lines carry what Alpaca puts there: ``:heartbeat`` every ``heartbeat_seconds``,
``: you are reading too slowly, dropped N messages`` when a listener's bounded queue
overflowed (the oldest events go; the client replays from its cursor), and
``: internal server error`` before the server closes a stream it cannot continue.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web
from ulid import ULID

from marketdata import moments

from . import wire
from .faults import Handler

if TYPE_CHECKING:
    from .accounts import Order
    from .server import Sandbox

logger = logging.getLogger(__name__)

#: The streams the sandbox publishes to.
STREAMS = ("trades", "funding", "accounts")
HEARTBEAT = ":heartbeat\n\n"
INTERNAL_ERROR = b": internal server error\n\n"
#: How long ``close_all`` waits for streams to end before giving up on a stuck client.
CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Execution:
    """What a fill's trade event reports: its price, its quantity, the position after it."""

    price: Decimal
    qty: Decimal
    position_qty: Decimal


def trade_update(
    event: str, order: Order, at: datetime, execution_id: str, fill: Execution | None = None
) -> dict:
    """The payload of a trade-update event; only fills carry price and quantities (else null)."""
    payload = {
        "account_id": str(order.account_id),
        "event": event,
        "execution_id": execution_id,
        "order": wire.order(order),
        "timestamp": wire.timestamp(at, order.account_id),
        "price": None,
        "qty": None,
        "position_qty": None,
    }
    if fill is not None:
        payload["price"] = wire.text(fill.price)
        payload["qty"] = wire.text(fill.qty)
        payload["position_qty"] = wire.text(fill.position_qty)
    return payload


def funding_update(
    entity_type: str, entity_id: str, account_id: str, status_from: str, status_to: str
) -> dict:
    """A funding status change; ``status_from`` is empty when the entity was just created.

    Transfer events also name the transfer as ``transfer_id``, which the legacy
    ``/v1/events/transfers/status`` stream calls it.
    """
    payload = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "account_id": account_id,
        "status_from": status_from,
        "status_to": status_to,
    }
    if entity_type == "Transfer":
        payload["transfer_id"] = entity_id
    return payload


@dataclass(slots=True, frozen=True)
class _Event:
    """One published event: both ids, its time, what listeners filter on, and its JSON body."""

    seq: int
    ulid: str
    at: datetime
    account_id: str | None
    entity_type: str | None
    body: str  # the payload as compact JSON, "at" included, ids not

    def frame(self, legacy: bool) -> str:
        rest = self.body[1:]
        if legacy:
            return f'data: {{"event_id":{self.seq},"event_ulid":"{self.ulid}",{rest}\n\n'
        return f'id: {self.ulid}\ndata: {{"event_id":"{self.ulid}",{rest}\n\n'


@dataclass(frozen=True)
class _Bound:
    """A replay cursor: which event attribute (seq, ulid or at) it compares and the value."""

    field: str
    value: int | str | datetime

    def key(self, event: _Event) -> int | str | datetime:
        return getattr(event, self.field)

    def reached(self, event: _Event) -> bool:
        """An id bound is reached by its own event; a time bound only by the clock."""
        return self.field != "at" and self.key(event) >= self.value

    def beyond(self, event: _Event) -> bool:
        return self.key(event) > self.value


@dataclass(frozen=True)
class _Query:
    since: _Bound | None
    until: _Bound | None
    account_id: str | None
    entity_type: str | None

    def matches(self, event: _Event) -> bool:
        return (self.account_id is None or event.account_id == self.account_id) and (
            self.entity_type is None or event.entity_type == self.entity_type
        )


def _parse_time(text: str) -> datetime:
    """RFC3339 or a bare date (midnight UTC); a '+' decoded to a space is put back."""
    text = text.strip().replace(" ", "+")
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(0), UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_ulid(text: str) -> str:
    return str(ULID.from_str(text.strip().upper()))


#: Cursor parameters by API version: query suffix → (event attribute, parser).
_CURSORS: dict[bool, dict[str, tuple[str, Callable[[str], int | str | datetime]]]] = {
    False: {"": ("at", _parse_time), "_id": ("ulid", _parse_ulid)},
    True: {"": ("at", _parse_time), "_id": ("seq", int), "_ulid": ("ulid", _parse_ulid)},
}


def _parse_query(params: Mapping[str, str], legacy: bool, entity_type: str | None) -> _Query:
    """Alpaca's rules: one ``since`` kind at most; an ``until`` needs its own ``since``."""
    since = until = None
    for suffix, (field, parse) in _CURSORS[legacy].items():
        for name in (f"since{suffix}", f"until{suffix}"):
            if name not in params:
                continue
            try:
                bound = _Bound(field, parse(params[name]))
            except ValueError as error:
                raise ValueError(f"invalid {name}: {params[name]!r}") from error
            if name.startswith("since"):
                if since is not None:
                    raise ValueError("use only one of since, since_id and since_ulid")
                since = bound
            else:
                if f"since{suffix}" not in params:
                    raise ValueError(f"since{suffix} is required when until{suffix} is given")
                until = bound
    account_id = params.get("account_id") or (params.get("id") if legacy else None)
    return _Query(since, until, account_id, entity_type)


class _Listener:
    """One open stream's bounded queue: on overflow the oldest event goes and is counted."""

    __slots__ = ("queue", "limit", "dropped", "wake", "closed")

    def __init__(self, limit: int) -> None:
        self.queue: deque[_Event] = deque()
        self.limit = limit
        self.dropped = 0
        self.wake = asyncio.Event()
        self.closed = False

    def push(self, event: _Event) -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(event)
        self.wake.set()

    def drain(self) -> list[_Event]:
        events = list(self.queue)
        self.queue.clear()
        self.wake.clear()
        return events


class EventLog:
    """Every stream's replay buffer and live listeners, and the SSE endpoints that serve them."""

    def __init__(
        self,
        heartbeat_seconds: float = 15.0,
        buffer_size: int = 100_000,
        listener_queue: int = 10_000,
    ) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self.listener_queue = listener_queue
        self._buffers: dict[str, deque[_Event]] = {s: deque(maxlen=buffer_size) for s in STREAMS}
        self._listeners: dict[str, set[_Listener]] = {s: set() for s in STREAMS}
        self._published = dict.fromkeys(STREAMS, 0)
        self._rng = random.Random()
        self._last_ulid = 0
        self._last_at = datetime.min.replace(tzinfo=UTC)
        self._dropped = 0
        self._serving = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    # -- publishing ----------------------------------------------------------------------
    def publish(self, stream: str, payload: dict) -> dict:
        """Stamp ``payload`` with ``at`` and ids, keep it for replay, push it to listeners.

        Returns the payload as the v2 streams send it (ULID ``event_id``).
        """
        if stream not in self._buffers:
            raise ValueError(f"unknown event stream {stream!r}; known: {STREAMS}")
        # Strictly increasing, so a buffer is sorted by time and ``since`` an event's own
        # ``at`` replays exactly from that event.
        at = max(datetime.now(UTC), self._last_at + timedelta(microseconds=1))
        self._last_at = at
        self._last_ulid = max(
            (int(at.timestamp() * 1000) << 80) | self._rng.getrandbits(80), self._last_ulid + 1
        )
        ulid = str(ULID.from_int(self._last_ulid))
        self._published[stream] += 1
        body = {**payload, "at": moments.iso(at)}
        event = _Event(
            seq=self._published[stream],
            ulid=ulid,
            at=at,
            account_id=payload.get("account_id"),
            entity_type=payload.get("entity_type"),
            body=json.dumps(body, separators=(",", ":")),
        )
        self._buffers[stream].append(event)
        for listener in self._listeners[stream]:
            listener.push(event)
        return {"event_id": ulid, **body}

    def stats(self) -> dict:
        return {
            stream: {
                "published": self._published[stream],
                "buffered": len(self._buffers[stream]),
                "listeners": len(self._listeners[stream]),
            }
            for stream in STREAMS
        } | {"dropped": self._dropped}

    # -- serving -------------------------------------------------------------------------
    def routes(self, sandbox: Sandbox) -> list[web.RouteDef]:
        """The v2 streams, and the legacy v1 ones alpaca-py's ``get_*_events`` read."""

        def endpoint(stream: str, legacy: bool, entity_type: str | None = None) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                return await self._serve(request, stream, legacy, entity_type)

            return handler

        return [
            web.get("/v2/events/trades", endpoint("trades", legacy=False)),
            web.get("/v1/events/trades", endpoint("trades", legacy=True)),
            web.get("/v2/events/funding/status", endpoint("funding", legacy=False)),
            web.get("/v1/events/transfers/status", endpoint("funding", True, "Transfer")),
            web.get("/v1/events/accounts/status", endpoint("accounts", legacy=True)),
        ]

    async def close_all(self) -> None:
        """End every open stream cleanly (terminating chunk sent), waiting briefly for them."""
        self._closing = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.closed = True
                listener.wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), CLOSE_TIMEOUT)

    async def _serve(
        self, request: web.Request, stream: str, legacy: bool, entity_type: str | None
    ) -> web.StreamResponse:
        try:
            query = _parse_query(request.query, legacy, entity_type)
        except ValueError as error:
            return web.json_response({"code": 40010000, "message": str(error)}, status=400)
        # Subscribe and snapshot the buffer without yielding: every event is in exactly one.
        listener = _Listener(self.listener_queue)
        listener.closed = self._closing
        self._listeners[stream].add(listener)
        buffer = self._buffers[stream]
        backlog = self._backlog(buffer, query.since) if query.since else []
        newest = buffer[-1] if buffer else None
        self._serving += 1
        self._idle.clear()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await self._pump(response, listener, backlog, newest, query, legacy)
            await response.write_eof()
        except ConnectionResetError:
            logger.debug("event stream %s: client went away", request.path)
        except Exception:
            logger.exception("event stream %s failed", request.path)
            with contextlib.suppress(ConnectionResetError):
                await response.write(INTERNAL_ERROR)
                await response.write_eof()
        finally:
            self._listeners[stream].discard(listener)
            self._serving -= 1
            if not self._serving:
                self._idle.set()
        return response

    @staticmethod
    def _backlog(buffer: deque[_Event], since: _Bound) -> list[_Event]:
        """Buffered events after an id (strictly) or at/after a time; buffers are sorted by all."""
        find = bisect.bisect_left if since.field == "at" else bisect.bisect_right
        start = find(buffer, since.value, key=since.key)
        return list(itertools.islice(buffer, start, None))

    async def _pump(
        self,
        response: web.StreamResponse,
        listener: _Listener,
        backlog: list[_Event],
        newest: _Event | None,
        query: _Query,
        legacy: bool,
    ) -> None:
        """Replay, then live events and heartbeats, until the until-bound, close or disconnect."""
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + self.heartbeat_seconds
        until = query.until
        # An id bound the stream had already passed when we subscribed ends after the replay.
        done = until is not None and newest is not None and until.reached(newest)
        last_seq = 0
        pending = backlog
        while True:
            chunks: list[str] = []
            if loop.time() >= heartbeat_at:
                chunks.append(HEARTBEAT)
                heartbeat_at = loop.time() + self.heartbeat_seconds
            if listener.dropped:
                chunks.append(
                    f": you are reading too slowly, dropped {listener.dropped} messages\n\n"
                )
                self._dropped += listener.dropped
                listener.dropped = 0
            for event in pending:
                if event.seq <= last_seq:
                    continue  # already sent from the replay
                last_seq = event.seq
                if until is not None and until.beyond(event):
                    done = True
                    break
                if query.matches(event):
                    chunks.append(event.frame(legacy))
                if until is not None and until.reached(event):
                    done = True
                    break
            if chunks:
                await response.write("".join(chunks).encode())
            if until is not None and until.field == "at" and datetime.now(UTC) > until.value:
                done = True
            if done or listener.closed:
                return
            if not listener.queue and not listener.dropped:
                timeout = heartbeat_at - loop.time()
                if until is not None and until.field == "at":
                    timeout = min(timeout, (until.value - datetime.now(UTC)).total_seconds())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listener.wake.wait(), max(timeout, 0))
            pending = listener.drain()
