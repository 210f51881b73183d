"""Per-user and per-client request limits; rates come from settings at request time.

Clients are told apart by portfolio/client_address.py (X-Forwarded-For only from the proxies
NUM_PROXIES counts). Fail open: when the cache (Redis) does not answer, a request goes through
unthrottled and a warning is logged, rather than failing a request a limit was only to slow.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from portfolio.client_address import client_address

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes from the settings.
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

_OFF = ("", "none", "off")


def _rate(value: str) -> str | None:
    return None if value.strip().lower() in _OFF else value


class _SharedRules(SimpleRateThrottle):
    """Our client address, and no refusal when the cache is down."""

    def get_ident(self, request: Request) -> str:
        return client_address(request)

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as problem:
            logger.warning(
                "throttle.unavailable scope=%s error=%s: request let through",
                self.scope,
                type(problem).__name__,
            )
            return True


class UserThrottle(_SharedRules, UserRateThrottle):
    """API_THROTTLE_RATE per signed-in user (per client before sign-in)."""

    def get_rate(self) -> str | None:
        return _rate(settings.API_THROTTLE_RATE)


class TokenRequestThrottle(_SharedRules, AnonRateThrottle):
    """API_AUTH_THROTTLE_RATE token requests per client, against password guessing."""

    scope = "auth"

    def get_rate(self) -> str | None:
        return _rate(settings.API_AUTH_THROTTLE_RATE)
