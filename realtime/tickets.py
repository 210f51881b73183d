"""Single-use socket tickets: how a client without a browser session opens a socket, without
ever putting a long-lived credential in a URL (URLs end up in proxy and access logs).

``POST /api/realtime/ticket`` (session or token auth) issues a ticket; the client connects to
``/ws/portfolio/<account_id>?ticket=<ticket>`` or ``/ws/stream?ticket=<ticket>`` within
WS_TICKET_TTL seconds. The ticket is 32 random bytes; Redis keeps only its SHA-256, at
``clera:ws:ticket:<hash>`` → ``{"user_id": ..., "account_id": ... | null}``, expiring after the
TTL, and the socket takes it with GETDEL — so it works once, whichever process redeems it.

A ticket issued for an account opens only that account's socket (another account → 4403);
one issued without opens any socket of its user. A leaked ticket is worth at most one
connection within half a minute, as the same user.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from django.conf import settings

from marketdata.store import redis_client

from .redis_loop import loop_client

TICKET_PREFIX = "clera:ws:ticket:"
#: Longest ticket text worth hashing; anything longer is not one of ours.
_MAX_TICKET_CHARS = 128


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: int
    account_id: str | None


def _key(ticket: str) -> str:
    return TICKET_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue(user_id: int, account_id: str | None = None) -> str:
    """A new ticket for the user (and, if given, for that account only)."""
    ticket = secrets.token_urlsafe(32)
    body = json.dumps({"user_id": user_id, "account_id": account_id})
    redis_client().set(_key(ticket), body, ex=settings.WS_TICKET_TTL)
    return ticket


async def redeem(ticket: str) -> Ticket | None:
    """The ticket's grant, consumed; None when it is unknown, used or expired."""
    if not ticket or len(ticket) > _MAX_TICKET_CHARS:
        return None
    raw = await loop_client().getdel(_key(ticket))
    if raw is None:
        return None
    body = json.loads(raw)
    return Ticket(user_id=int(body["user_id"]), account_id=body["account_id"])
