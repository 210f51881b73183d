"""Single-use socket tickets: how a client without a browser session opens a socket, without
ever putting a long-lived credential in a URL (URLs end up in proxy and access logs).

``POST /api/realtime/ticket`` (session or token auth) issues a ticket; the client connects to
``/ws/portfolio/<account_id>?ticket=<ticket>`` or ``/ws/stream?ticket=<ticket>`` within
WS_TICKET_TTL seconds. The ticket is 32 random bytes; Redis keeps only its SHA-256, at
``clera:ws:ticket:<hash>`` → ``{"user_id": ..., "account_id": ... | null, "credential": ...}``,
expiring after the TTL, and the socket takes it with GETDEL — so it works once, whichever
process redeems it.

A ticket issued for an account opens only that account's socket (another account → 4403);
one issued without opens any socket of its user. A leaked ticket is worth at most one
connection within half a minute, as the same user.

A ticket has no session of its own: it names the :class:`Credential` it was asked for with —
the session or the API token of ``POST /api/realtime/ticket``, as ``[kind, key]`` — and its
socket lives only as long as that does (:mod:`realtime.auth` re-checks it every heartbeat):
signing out or deleting the token closes it with 4401. That key sits in Redis for at most
WS_TICKET_TTL seconds, until the ticket is redeemed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from marketdata.store import redis_client

from .redis_loop import loop_client

TICKET_PREFIX = "clera:ws:ticket:"
#: Longest ticket text worth hashing; anything longer is not one of ours.
_MAX_TICKET_CHARS = 128


@dataclass(frozen=True, slots=True)
class Credential:
    """What signed a user in: a session or an API token, by its key. A socket opened with it
    is closed once it is gone (signed out, token deleted)."""

    kind: Literal["session", "token"]
    key: str


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: int
    account_id: str | None
    credential: Credential | None


def credential_of(request: Any) -> Credential | None:
    """The credential a signed-in DRF request came with: its API token, else its session."""
    token = getattr(request.auth, "key", None)
    if token:
        return Credential("token", token)
    session_key = request.session.session_key
    return Credential("session", session_key) if session_key else None


def _key(ticket: str) -> str:
    return TICKET_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue(user_id: int, account_id: str | None = None, credential: Credential | None = None) -> str:
    """A new ticket for the user (and, if given, for that account only), valid while
    ``credential`` is (None: while the user is active)."""
    ticket = secrets.token_urlsafe(32)
    signed_in = None if credential is None else [credential.kind, credential.key]
    body = json.dumps({"user_id": user_id, "account_id": account_id, "credential": signed_in})
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
    signed_in = body.get("credential")
    return Ticket(
        user_id=int(body["user_id"]),
        account_id=body["account_id"],
        credential=None if signed_in is None else Credential(*signed_in),
    )
