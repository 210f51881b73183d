"""``POST /api/realtime/ticket``: a single-use ticket to open a socket (see realtime.tickets).

Errors take the API's one shape (``portfolio.api.errors``): 401 not signed in, 404 an
``account_id`` not linked to you, 503 real-time disabled or Redis unavailable.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from redis.exceptions import RedisError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.api import schema
from portfolio.errors import Unavailable
from portfolio.selectors import linked_account

from . import tickets

#: What a client is told to wait when Redis is unavailable.
RETRY_AFTER_SECONDS = 5


class RealtimeUnavailable(Unavailable):
    code = "realtime_unavailable"
    message = "Live updates are unavailable right now; try again shortly."


class RealtimeDisabled(Unavailable):
    code = "realtime_disabled"
    message = "Live updates are switched off; use the REST API meanwhile."


class TicketRequest(serializers.Serializer):
    account_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Limit the ticket to this account's socket (one of yours).",
    )


class TicketView(APIView):
    """Issue a socket ticket to the signed-in user (session or token)."""

    @extend_schema(
        operation_id="realtime_ticket_create",
        summary="Get a single-use WebSocket ticket",
        description=(
            f"Open `/ws/portfolio/<account_id>?ticket=<ticket>` or `/ws/stream?ticket=<ticket>` "
            f"within `expires_in` seconds (WS_TICKET_TTL, {settings.WS_TICKET_TTL} by default); "
            "a ticket opens one socket, once. Browsers need none: their session cookie works."
        ),
        request=TicketRequest,
        responses={
            201: inline_serializer(
                "RealtimeTicket",
                {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()},
            ),
            **schema.errors(
                400,
                401,
                403,
                404,
                415,
                429,
                500,
                extra={
                    503: "Live updates are switched off (`realtime_disabled`) or Redis is "
                    "unavailable (`realtime_unavailable`, with `Retry-After`)."
                },
            ),  # fmt: skip
        },
    )
    def post(self, request: Request) -> Response:
        if not settings.ENABLE_REALTIME_PORTFOLIO:
            raise RealtimeDisabled()
        body = TicketRequest(data=request.data)  # no body is {}; a JSON null or list is refused
        body.is_valid(raise_exception=True)
        account_id = body.validated_data.get("account_id")
        if account_id is not None:
            account_id = str(linked_account(request.user, str(account_id)).account_id)
        try:
            ticket = tickets.issue(request.user.pk, account_id, tickets.credential_of(request))
        except RedisError:
            raise RealtimeUnavailable(retry_after=RETRY_AFTER_SECONDS) from None
        return Response(
            {"ticket": ticket, "expires_in": settings.WS_TICKET_TTL},
            status=status.HTTP_201_CREATED,
        )
