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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from . import tickets


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
            scope["auth"] = "ticket"
        elif _origin(scope) is None:
            scope["user"] = AnonymousUser()
            scope["auth"] = "none"
        else:
            scope["auth"] = "session"
        return await self.application(scope, receive, send)
