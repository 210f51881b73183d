"""Who is on a socket: the Origin check and the ticket, in front of Channels' session auth.

``clera.asgi`` stacks them as ``TrustedOriginValidator(AuthMiddlewareStack(TicketAuth(...)))``:

1. **Origin.** Browsers always send ``Origin`` on a WebSocket handshake, and a page on another
   site could otherwise open a socket riding our session cookie. An ``Origin`` must be trusted:
   its host in ALLOWED_HOSTS (Channels' ``AllowedHostsOriginValidator`` rule) or the origin
   itself in CSRF_TRUSTED_ORIGINS (Django's rule, ``https://*.example.com`` included);
   anything else is refused at the handshake (HTTP 403). A missing ``Origin`` is a non-browser
   client: allowed through, but then a session cookie does not count — it must bring a ticket.
2. **Session.** Channels' ``AuthMiddlewareStack`` reads the session cookie into
   ``scope["user"]``.
3. **Ticket.** ``?ticket=`` (see :mod:`realtime.tickets`) is redeemed, once; its user replaces
   the session's and ``scope["ticket_account_id"]`` says which account it is limited to, if
   any. A ticket that is unknown, used or expired leaves the socket anonymous (4401): it never
   falls back to the cookie, so a client learns its ticket failed.

``scope["credential"]`` is what the socket's user signed in with (:class:`Credential`): the
session of the cookie, or the session or API token the ticket was asked for with.

**Every heartbeat** the hub re-checks all of its process's open sockets at once
(:func:`arevocations`): a socket whose user is gone or inactive, or whose credential is gone
(signed out: session flushed or expired, API token deleted; a password change too, as for
Django's own sessions), is closed with 4401; a portfolio socket whose account is no longer
linked to its user (unlinked or moved in the admin) with 4403. Cost per beat and process: one
query each for the users, the account links, the sessions and the tokens, per
:data:`BATCH` distinct ids — for 10 000 sockets about 80 indexed queries every
WS_HEARTBEAT_INTERVAL, not one per socket. Session engines not kept in the database (cache,
file) are read once per session; signed-cookie sessions cannot be ended server-side, so only
the user's state is re-checked for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.authtoken.models import Token

from portfolio.models import BrokerageAccount

from . import tickets
from .protocol import FORBIDDEN, UNAUTHENTICATED
from .tickets import Credential

#: Most ids in one ``IN (...)`` list of the heartbeat's re-check.
BATCH = 500


def _trusted_patterns() -> list[str]:
    """Channels' origin patterns: ALLOWED_HOSTS (host only), then CSRF_TRUSTED_ORIGINS (with
    scheme and port; Django's ``*.`` wildcard is Channels' leading ``.``)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts + [origin.replace("://*.", "://.") for origin in settings.CSRF_TRUSTED_ORIGINS]


def _origin(scope: dict) -> bytes | None:
    return next((value for name, value in scope.get("headers", ()) if name == b"origin"), None)


class TrustedOriginValidator(OriginValidator):
    """Refuse a handshake whose Origin we do not trust; let one without Origin through (the
    ticket rule below applies to it)."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=())

    @property
    def allowed_origins(self) -> list[str]:
        """Read per handshake, so the settings in force apply."""
        return _trusted_patterns()

    @allowed_origins.setter
    def allowed_origins(self, value: Any) -> None:
        """Channels' constructor sets it; the settings are the one source instead."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if _origin(scope) is None:
            return await self.application(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin: Any) -> bool:
        # Channels lets "*" admit a missing or unreadable Origin; here it must parse.
        return parsed_origin is not None and self.validate_origin(parsed_origin)


@database_sync_to_async
def _active_user(user_id: int) -> Any:
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def query_param(scope: dict, name: str) -> str | None:
    """The first value of a query-string parameter, or None."""
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    return values[0] if values else None


class TicketAuth:
    """Redeem ``?ticket=``; drop the cookie's user when there is no Origin (see the module)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        ticket = query_param(scope, "ticket")
        if ticket is not None:
            grant = await tickets.redeem(ticket)
            user = await _active_user(grant.user_id) if grant else None
            scope["user"] = user or AnonymousUser()
            scope["ticket_account_id"] = grant.account_id if grant else None
            scope["credential"] = grant.credential if grant else None
            scope["auth"] = "ticket"
        elif _origin(scope) is None:
            scope["user"] = AnonymousUser()
            scope["auth"] = "none"
        else:
            session_key = getattr(scope.get("session"), "session_key", None)
            scope["credential"] = Credential("session", session_key) if session_key else None
            scope["auth"] = "session"
        return await self.application(scope, receive, send)


# --- The heartbeat's re-check ----------------------------------------------------------------


class Admitted(Protocol):
    """An open socket as the re-check sees it."""

    user_id: Any
    account_id: str | None
    credential: Credential | None


@dataclass(frozen=True, slots=True)
class Revocation:
    """Why an open socket must close now: its close code, error code and message."""

    code: int
    error_code: str
    message: str


SIGNED_OUT = Revocation(
    UNAUTHENTICATED,
    "not_authenticated",
    "You were signed out (or your login was deactivated); sign in again.",
)
UNLINKED = Revocation(FORBIDDEN, "forbidden", "This account is no longer linked to your login.")


def revocations(sockets: Sequence[Admitted]) -> list[Revocation | None]:
    """For each socket, why it may no longer stay open, or None; one batch of queries for all
    (see the module docstring)."""
    users = _active_users({s.user_id for s in sockets})
    owners = _account_owners({s.account_id for s in sockets if s.account_id is not None})
    sessions = _sessions(_keys(sockets, "session"))
    tokens = _token_owners(_keys(sockets, "token"))
    verdicts: list[Revocation | None] = []
    for socket in sockets:
        user = users.get(socket.user_id)
        if user is None or not _holds(socket.credential, user, sessions, tokens):
            verdicts.append(SIGNED_OUT)
        elif socket.account_id is not None and owners.get(socket.account_id) != user.pk:
            verdicts.append(UNLINKED)
        else:
            verdicts.append(None)
    return verdicts


#: :func:`revocations` off the event loop (and off Channels' one thread for the database).
arevocations = database_sync_to_async(revocations, thread_sensitive=False)


def _batches(ids: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = list(ids)
    for start in range(0, len(ordered), BATCH):
        yield ordered[start : start + BATCH]


def _keys(sockets: Sequence[Admitted], kind: str) -> set[str]:
    return {s.credential.key for s in sockets if s.credential and s.credential.kind == kind}


def _active_users(user_ids: set[Any]) -> dict[Any, Any]:
    users = get_user_model()._default_manager
    return {
        user.pk: user
        for batch in _batches(user_ids)
        for user in users.filter(pk__in=batch, is_active=True)
    }


def _account_owners(account_ids: set[str]) -> dict[str, Any]:
    """Account id → the id of the user it is linked to."""
    return {
        str(account_id): user_id
        for batch in _batches(account_ids)
        for account_id, user_id in BrokerageAccount.objects.filter(
            account_id__in=batch
        ).values_list("account_id", "user_id")
    }


def _token_owners(keys: set[str]) -> dict[str, Any]:
    """API token → the id of its user, for the tokens that still exist."""
    return {
        key: user_id
        for batch in _batches(keys)
        for key, user_id in Token.objects.filter(key__in=batch).values_list("key", "user_id")
    }


def _sessions(keys: set[str]) -> dict[str, dict]:
    """Session key → its data, for the sessions that still exist and have not expired."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):  # not in the database: one read per session
        return {key: data for key in keys if (data := store(key).load())}
    model = store.get_model_class()
    now = timezone.now()
    return {
        key: store().decode(data)
        for batch in _batches(keys)
        for key, data in model.objects.filter(
            session_key__in=batch, expire_date__gt=now
        ).values_list("session_key", "session_data")
    }


def _holds(
    credential: Credential | None, user: Any, sessions: dict[str, dict], tokens: dict[str, Any]
) -> bool:
    """Whether the credential still signs ``user`` in (None: a ticket that named none, as
    tickets from before credentials did; the user's own state decides)."""
    if credential is None:
        return True
    if credential.kind == "token":
        return tokens.get(credential.key) == user.pk
    return _signed_in(sessions.get(credential.key), user)


def _signed_in(session: dict | None, user: Any) -> bool:
    """Whether the session still signs in ``user``, by Django's rule (its auth hash follows
    the password, so a password change signs other sessions out)."""
    if not session or session.get(SESSION_KEY) != user._meta.pk.value_to_string(user):
        return False
    held = session.get(HASH_SESSION_KEY)
    return bool(held) and any(
        constant_time_compare(held, expected)
        for expected in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    )
