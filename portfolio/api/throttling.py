"""Per-user and per-IP request limits; rates come from settings at request time."""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

_OFF = ("", "none", "off")


def _rate(value: str) -> str | None:
    return None if value.strip().lower() in _OFF else value


class UserThrottle(UserRateThrottle):
    """API_THROTTLE_RATE per signed-in user (per IP before sign-in)."""

    def get_rate(self) -> str | None:
        return _rate(settings.API_THROTTLE_RATE)


class TokenRequestThrottle(AnonRateThrottle):
    """API_AUTH_THROTTLE_RATE token requests per client IP, against password guessing."""

    scope = "auth"

    def get_rate(self) -> str | None:
        return _rate(settings.API_AUTH_THROTTLE_RATE)
