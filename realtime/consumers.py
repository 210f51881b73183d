"""The two sockets: /ws/portfolio/<account_id> (an account's live value) and /ws/stream (seed
003's symbol prices). The protocol is :mod:`realtime.protocol`; the rules live in the modules
these call (auth, tickets, limits, outbox, hub, price_feed, prices, portfolio_feed).

Admission, in order — each refusal is an ``error`` message, then a close with its code:
draining for shutdown (1001), ENABLE_REALTIME_PORTFOLIO off (4503), not signed in (4401), not
your account (4403), a connection limit or Redis unavailable (1013). Sockets are accepted
before they are refused so a browser sees the code (a refused handshake only says 1006). Once
open, the hub re-authorizes each socket every heartbeat (:mod:`realtime.auth`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from marketdata.errors import BrokerError
from portfolio.errors import NotFound, PortfolioError
from portfolio.selectors import linked_account

from . import fanout, limits, portfolio_feed, presence, prices, stats
from . import protocol as p
from .auth import query_param
from .hub import hub
from .limits import FrameGuard, LimitHit, Verdict
from .outbox import Message, Outbox
from .price_feed import price_feed
from .tickets import Credential

logger = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, code: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error_code, self.message = code, error_code, message


def refusal(error: PortfolioError | BrokerError) -> Refused:
    """The close a socket gets for a domain or broker error: the one mapping to close codes
    (the API's exception handler is the one to HTTP statuses)."""
    if isinstance(error, NotFound):
        return Refused(p.FORBIDDEN, "forbidden", "This account is not linked to your login.")
    if isinstance(error, BrokerError):
        return Refused(
            p.TRY_AGAIN_LATER, "snapshot_unavailable",
            "Your portfolio could not be valued just now; reconnect in a few seconds.",
        )  # fmt: skip
    return Refused(p.TRY_AGAIN_LATER, error.code, error.message)


class _Socket(AsyncWebsocketConsumer):
    """Admission, inbound policing, heartbeats, the outbox and closing, for both sockets."""

    kind = "socket"
    account_id: str | None = None
    user_id: Any = None
    #: What the user signed in with; the hub re-checks it every heartbeat.
    credential: Credential | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._discard_channel()

    async def _discard_channel(self) -> None:
        """Unsubscribe the socket's own channel (see ``PubSubChannelLayer.discard_channel``)."""
        discard = getattr(getattr(self, "channel_layer", None), "discard_channel", None)
        if discard is None or not getattr(self, "channel_name", None):
            return  # another layer, or stopped before it had a channel
        try:
            await discard(self.channel_name)
        except RedisError as error:  # the subscription ends with the connection anyway
            logger.warning("ws.channel not unsubscribed channel=%s: %r", self.channel_name, error)

    async def connect(self) -> None:
        self.connection_id = uuid.uuid4().hex
        self.last_seen = time.monotonic()
        self.opened_at: float | None = None
        self.closing = False
        self.outbox = Outbox(self._send_message, stats.record_message_out)
        self.guard = FrameGuard.from_settings()
        await self.accept()
        try:
            async with hub().admission:
                await self._admit()
                await self.start()
        except Refused as refused:
            await self._refuse(refused)
        except (PortfolioError, BrokerError) as error:
            await self._refuse(refusal(error))
        except RedisError as error:
            logger.warning("ws.refused kind=%s reason=redis error=%s", self.kind, error)
            await self._refuse(
                Refused(p.TRY_AGAIN_LATER, "unavailable", "Live updates are unavailable; retry.")
            )
        except Exception:
            logger.exception("ws.connect crashed kind=%s user=%s", self.kind, self.user_id)
            await self._refuse(
                Refused(p.INTERNAL_ERROR, "internal_error", "Something went wrong on our side.")
            )

    async def _admit(self) -> None:
        sockets = hub()
        if sockets.draining:
            raise Refused(p.GOING_AWAY, "going_away", p.GOING_AWAY_MESSAGE)
        if not settings.ENABLE_REALTIME_PORTFOLIO:
            raise Refused(
                p.REALTIME_DISABLED, "realtime_disabled",
                "Live updates are switched off; use the REST API meanwhile.",
            )  # fmt: skip
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise Refused(
                p.UNAUTHENTICATED, "not_authenticated",
                "Sign in first: a session from this site, or a ticket from "
                "POST /api/realtime/ticket passed as ?ticket=.",
            )  # fmt: skip
        self.user_id = user.pk
        self.credential = self.scope.get("credential")
        await self.authorize(user)
        try:
            await limits.acquire(self.user_id, self.connection_id, len(sockets))
        except LimitHit as hit:
            self._limit_hit(hit.kind)
            raise Refused(p.TRY_AGAIN_LATER, "connection_limit", str(hit)) from None
        self.opened_at = time.monotonic()
        sockets.register(self)
        stats.record_connect(self.user_id, resumed=query_param(self.scope, "last_seq") is not None)
        logger.info(
            "ws.connect kind=%s user=%s account=%s conn=%s auth=%s",
            self.kind, self.user_id, self.account_id, self.connection_id, self.scope.get("auth"),
        )  # fmt: skip

    async def authorize(self, user: Any) -> None:
        """Raise Refused when the user may not open this socket."""

    async def start(self) -> None:
        """The socket is admitted: send what it starts with."""

    async def _refuse(self, refusal: Refused) -> None:
        logger.info(
            "ws.refused kind=%s code=%s reason=%s user=%s account=%s",
            self.kind, refusal.code, refusal.error_code, self.user_id, self.account_id,
        )  # fmt: skip
        await self.close_for(refusal.code, refusal.error_code, refusal.message)

    async def close_for(
        self, code: int, error_code: str, message: str, *, let_go: bool = True
    ) -> None:
        """Send what is pending and why, stop counting the socket and (unless the hub does it
        for many at once) let go of its leases and presence — a dead client may never finish
        the close — then close with ``code``."""
        if self.closing:
            return
        self.closing = True
        if code == p.GOING_AWAY:
            self.outbox.put(p.system(message, code=error_code))
        else:
            self.outbox.put(p.error(error_code, message))
        await self.outbox.flush()
        if self._forget(code) and let_go:
            await self._let_go()
        await self.close(code=code, reason=error_code)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self.outbox.clear()
        if self._forget(code):
            await self._let_go()
        hub().closed(self)

    def _forget(self, code: int) -> bool:
        """Stop counting the socket (hub, stats, log); False if that was done already."""
        if self.opened_at is None:
            return False
        seconds = time.monotonic() - self.opened_at
        self.opened_at = None
        hub().unregister(self)
        stats.record_disconnect(str(code), self.user_id, seconds)
        logger.info(
            "ws.disconnect kind=%s code=%s user=%s account=%s conn=%s seconds=%.1f",
            self.kind, code, self.user_id, self.account_id, self.connection_id, seconds,
        )  # fmt: skip
        return True

    async def _let_go(self) -> None:
        try:
            await self.stop()
            await limits.release(self.user_id, self.connection_id)
        except RedisError as error:  # leases and presence expire on their own
            logger.warning("ws.disconnect cleanup failed conn=%s: %s", self.connection_id, error)

    async def stop(self) -> None:
        """Let go of what the socket holds besides its leases."""

    # --- frames in ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_seen = time.monotonic()
        if self.closing or self.opened_at is None:
            return
        verdict = self.guard.admit(text_data, bytes_data)
        if verdict is Verdict.DROP:
            return
        if verdict is Verdict.FLOODING:
            self._limit_hit("flood")
            await self._bad(
                "rate_limited",
                f"More than {self.guard.per_second} messages a second; the rest were ignored.",
            )
            return
        if verdict is Verdict.OVERSIZED:
            self._limit_hit("size")
            await self._bad(
                "message_too_large", f"Messages are limited to {self.guard.max_bytes} bytes."
            )
            return
        try:
            command = self.parse(p.decode(text_data, bytes_data))
        except p.ProtocolError as problem:
            await self._bad(problem.code, problem.message, **problem.details)
            return
        try:
            await self.handle(command)
        except RedisError as error:
            logger.warning(
                "ws.command failed conn=%s type=%s: %s", self.connection_id, command.type, error
            )
            self.outbox.put(p.error("unavailable", "That failed on our side for a moment; retry."))
        except Exception:
            logger.exception("ws.command crashed conn=%s type=%s", self.connection_id, command.type)
            self.outbox.put(p.error("internal_error", "Something went wrong on our side; logged."))

    async def _bad(self, code: str, message: str, **details: Any) -> None:
        self.outbox.put(p.error(code, message, **details))
        if self.guard.strike():
            self._limit_hit("bad_frames")
            await self.close_for(
                p.POLICY_VIOLATION, "policy_violation",
                f"Closed after {self.guard.max_strikes} bad messages within a minute.",
            )  # fmt: skip

    def _limit_hit(self, kind: str) -> None:
        stats.record_limit_hit(kind)
        logger.info(
            "ws.limit_hit kind=%s socket=%s user=%s conn=%s",
            kind, self.kind, self.user_id, self.connection_id,
        )  # fmt: skip

    #: The socket's message validator (realtime.protocol); a Command or a ProtocolError.
    parse: Callable[[dict[str, Any]], p.Command]

    async def handle(self, command: p.Command) -> None:
        if command.type == "heartbeat":
            self.outbox.put(p.heartbeat_reply())

    # --- frames out --------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """The hub's heartbeat reached this socket."""
        if not self.closing:
            self.outbox.put(p.ping())

    async def _send_message(self, message: Message) -> None:
        text = p.encode(message)
        try:
            await self.send(text_data=text)
        except Exception as error:  # the server's own "transport closed" error, whatever its class
            # The client went away before its disconnect reached us; that disconnect follows.
            logger.debug("ws.send dropped conn=%s: %r", self.connection_id, error)
            self.closing = True


@database_sync_to_async
def _linked_account(user: Any, account_id: str) -> str:
    return str(linked_account(user, account_id).account_id)


class PortfolioConsumer(_Socket):
    """/ws/portfolio/<account_id>: snapshot, numbered updates, resume, optional event channels."""

    kind = "portfolio"
    seq = 0
    group: str | None = None
    event_channels: frozenset[str] = frozenset()

    async def authorize(self, user: Any) -> None:
        requested = self.scope["url_route"]["kwargs"]["account_id"]
        account_id = await _linked_account(user, requested)
        bound = self.scope.get("ticket_account_id")
        if bound is not None and bound != account_id:
            raise refusal(NotFound())
        self.account_id = account_id

    async def start(self) -> None:
        text = query_param(self.scope, "last_seq")
        try:
            last_seq = None if text is None else p.query_last_seq(text)
        except p.ProtocolError as problem:
            raise Refused(p.POLICY_VIOLATION, problem.code, problem.message) from None
        self.group = fanout.group_name(self.account_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await presence.ajoin(self.account_id, self.connection_id)
        if last_seq is None:
            await self.send_snapshot()
        else:
            await self.resume(last_seq)

    async def stop(self) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await presence.aleave(self.account_id, self.connection_id)

    async def send_snapshot(self) -> None:
        try:
            seq, frame = await portfolio_feed.snapshot(self.account_id)
        except BrokerError as error:
            logger.warning("ws.snapshot failed account=%s: %s", self.account_id, error)
            refused = refusal(error)
            await self.close_for(refused.code, refused.error_code, refused.message)
            return
        self.outbox.discard("update")  # older: group messages wait while this runs
        self.seq = max(self.seq, seq)
        self.outbox.put(frame)

    async def resume(self, last_seq: int) -> None:
        missed = await portfolio_feed.missed_updates(self.account_id, last_seq)
        logger.info(
            "ws.resume account=%s conn=%s from=%s missed=%s",
            self.account_id, self.connection_id, last_seq,
            "too_old" if missed is None else len(missed),
        )  # fmt: skip
        if missed is None:
            wait = self.guard.snapshot_wait()
            if wait:
                self._limit_hit("resume_snapshots")
                await self._bad(
                    "resume_limited",
                    f"At most {self.guard.max_snapshots} resumes a minute may need a fresh "
                    "snapshot; resume from an update you have, or retry later.",
                    retry_after=round(wait, 1),
                )
            else:
                await self.send_snapshot()
            return
        self.outbox.discard("update")
        for _seq, frame in missed:
            self.outbox.put(frame)
        self.seq = max(self.seq, missed[-1][0] if missed else last_seq)
        self.outbox.put(
            p.system(f"Resumed after update {last_seq}: {len(missed)} missed.", seq=self.seq)
        )

    async def _fill_gap(self) -> None:
        """Updates numbered after ``self.seq`` were published but never reached this process
        (pub/sub delivers at most once, e.g. while it reconnected to Redis): send them from
        the kept history, or a snapshot when they are gone. A partial update must not be
        applied past a missing one."""
        missed = await portfolio_feed.missed_updates(self.account_id, self.seq)
        logger.warning(
            "ws.update_gap account=%s conn=%s after=%s missed=%s",
            self.account_id, self.connection_id, self.seq,
            "too_old" if missed is None else len(missed),
        )  # fmt: skip
        if missed is None:
            await self.send_snapshot()
            return
        for seq, frame in missed:
            self.outbox.put_latest("update", frame, merge=p.merge_updates)
            self.seq = max(self.seq, seq)

    parse = staticmethod(p.portfolio_command)

    async def handle(self, command: p.Command) -> None:
        if command.type == "resume":
            await self.resume(command.last_seq)
        elif command.type == "subscribe":
            self.event_channels = self.event_channels | set(command.items)
            self.outbox.put(p.system("Subscribed.", channels=sorted(self.event_channels)))
        elif command.type == "unsubscribe":
            self.event_channels = self.event_channels - set(command.items)
            self.outbox.put(p.system("Unsubscribed.", channels=sorted(self.event_channels)))
        else:
            await super().handle(command)

    # --- group messages (realtime.fanout) ----------------------------------------------------

    async def portfolio_update(self, event: dict[str, Any]) -> None:
        seq = event["seq"]
        if self.closing or seq == self.seq:
            return
        if seq < self.seq and not await self._numbering_restarted():
            return  # older than what the client has (e.g. replayed by a resume)
        if seq > self.seq + 1 and self.seq:
            await self._fill_gap()  # this update is among those it sends
            return
        self.seq = seq
        self.outbox.put_latest("update", p.frame("update", seq, event["data"]), p.merge_updates)

    async def _numbering_restarted(self) -> bool:
        """Whether the account's sequence started over (Redis lost its data): then a lower
        number is the newest update, and the client learns the new numbering from it."""
        restarted = await fanout.current_seq(self.account_id) < self.seq
        if restarted:
            logger.warning("ws.seq_restarted account=%s was=%s", self.account_id, self.seq)
        return restarted

    async def portfolio_orders(self, event: dict[str, Any]) -> None:
        self._forward_events("orders", event)

    async def portfolio_positions(self, event: dict[str, Any]) -> None:
        self._forward_events("positions", event)

    def _forward_events(self, channel: str, event: dict[str, Any]) -> None:
        if not self.closing and channel in self.event_channels:
            self.outbox.put(p.events(channel, event["events"]))


class StreamConsumer(_Socket):
    """/ws/stream: seed 003's subscribe / unsubscribe / heartbeat and price_update messages."""

    kind = "stream"
    symbols: frozenset[str] = frozenset()
    channel_layer_alias = None  # prices come from this process's price feed, not the channel layer

    async def stop(self) -> None:
        price_feed().unwatch(self, self.symbols)

    parse = staticmethod(p.stream_command)

    async def handle(self, command: p.Command) -> None:
        if command.type == "subscribe":
            await self.subscribe(command.items)
        elif command.type == "unsubscribe":
            self.unsubscribe(command.items)
        else:
            await super().handle(command)

    async def subscribe(self, requested: tuple[str, ...]) -> None:
        found = await prices.resolve(requested)
        new = [s for s in found.known if s not in self.symbols]
        limit = settings.WS_MAX_SYMBOLS
        if len(self.symbols) + len(new) > limit:
            self._limit_hit("symbols")
            self.outbox.put(
                p.error(
                    "symbol_limit",
                    f"At most {limit} symbols per connection: you follow {len(self.symbols)}, "
                    f"and this would add {len(new)}. Nothing was subscribed.",
                    limit=limit, subscribed=len(self.symbols),
                )
            )  # fmt: skip
            return
        if found.unknown:
            self.outbox.put(
                p.error(
                    "unknown_symbols",
                    f"Unknown symbol(s), not subscribed: {', '.join(found.unknown)}.",
                    symbols=list(found.unknown),
                )
            )
        if not found.known:
            return
        self.symbols = self.symbols | set(new)
        await price_feed().watch(self, new)
        self.outbox.put(
            p.system(
                f"Subscribed to {len(found.known)} symbols",
                symbols=list(found.known),
                not_streaming=list(found.not_streaming),
            )
        )
        await price_feed().deliver(new, only=self)

    def unsubscribe(self, requested: tuple[str, ...]) -> None:
        gone = list(dict.fromkeys(s for s in map(prices.normalize, requested) if s in self.symbols))
        self.symbols = self.symbols - set(gone)
        price_feed().unwatch(self, gone)
        for symbol in gone:
            self.outbox.discard(symbol)
        self.outbox.put(p.system(f"Unsubscribed from {len(gone)} symbols", symbols=gone))

    def offer_price(self, symbol: str, message: dict[str, Any]) -> None:
        if not self.closing and symbol in self.symbols:
            self.outbox.put_latest(symbol, message)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other path: say so and close (4404), rather than fail the handshake with a 500."""

    channel_layer_alias = None

    async def connect(self) -> None:
        await self.accept()
        await self.send(
            text_data=p.encode(
                p.error("not_found", "No socket here; use /ws/portfolio/<id> or /ws/stream.")
            )
        )
        await self.close(code=p.NOT_FOUND)
