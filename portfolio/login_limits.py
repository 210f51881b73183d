"""Limits on failed sign-ins, per username and per client, on every way in: the API's token
endpoint (portfolio/api/views.py), the sign-in form and the admin's (portfolio/forms.py).

A username with LOGIN_MAX_FAILURES_PER_USERNAME failed sign-ins within LOGIN_LOCKOUT_SECONDS,
or a client address (portfolio/client_address.py) with LOGIN_MAX_FAILURES_PER_CLIENT, is
refused — before any password is checked, the right one included — for LOGIN_LOCKOUT_SECONDS
from the failure that reached the limit. Per username stops one account's password being
guessed from many addresses; per client stops one address trying many accounts. Signing in
clears the username's failures, never the client's (or a guesser could reset its own count by
signing in to an account of its own). The price of per-username locking: a stranger can lock
a username out for a while; it can never sign in with it.

Counters live in the Django cache (Redis), each with its window as TTL; usernames and addresses
are hashed into the keys. Not django-axes: it keeps every attempt in the database (a write per
failure, tables and admin of its own), answers a lockout with its own response rather than the
API's error shape with Retry-After, and reads the client's address through proxy settings of
its own instead of the one rule every limit here shares.

Fail open: when the cache does not answer, the attempt goes on without limits and a warning is
logged — a Redis outage must not stop everyone signing in.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

from portfolio.client_address import client_address

logger = logging.getLogger(__name__)


class LoginRefused(Exception):
    """Too many failed sign-ins for the username or from the client: ``retry_after`` seconds
    until it may try again; ``reason`` says so, ``message`` with the wait in minutes."""

    reason = "Too many failed sign-ins for this username or from this address."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        self.message = f"{self.reason} Try again in {minutes} minute{'' if minutes == 1 else 's'}."
        super().__init__(self.message)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _limits(request: HttpRequest, username: str) -> list[tuple[str, str, int]]:
    """(kind, key, most failures) of each limit in force for this attempt."""
    limits = [
        ("username", _digest(username.casefold()), settings.LOGIN_MAX_FAILURES_PER_USERNAME),
        ("client", _digest(client_address(request)), settings.LOGIN_MAX_FAILURES_PER_CLIENT),
    ]
    return [(kind, f"{kind}:{key}", most) for kind, key, most in limits if most > 0]


def _unavailable(step: str, problem: RedisError) -> None:
    logger.warning(
        "login_limits.unavailable step=%s error=%s: going on without limits",
        step,
        type(problem).__name__,
    )


def check(request: HttpRequest, username: str) -> None:
    """Raise :class:`LoginRefused` while the username or the client is locked out."""
    locks = [f"login-locked:{key}" for _, key, _ in _limits(request, username)]
    try:
        until = cache.get_many(locks).values()
    except RedisError as problem:
        _unavailable("check", problem)
        return
    if until:
        raise LoginRefused(max(1, math.ceil(max(until) - time.time())))


def failed(request: HttpRequest, username: str) -> None:
    """Count a failed sign-in; lock out the username or client that reached its limit."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    try:
        for kind, key, most in _limits(request, username):
            counter = f"login-failures:{key}"
            cache.add(counter, 0, window)
            try:
                failures = cache.incr(counter)
            except ValueError:  # It expired between the two calls: a new window.
                cache.set(counter, 1, window)
                failures = 1
            if failures >= most:
                cache.set(f"login-locked:{key}", time.time() + window, window)
                logger.warning(
                    "login_limits.locked kind=%s failures=%d client=%s seconds=%d",
                    kind,
                    failures,
                    client_address(request),
                    window,
                )
    except RedisError as problem:
        _unavailable("count", problem)


def succeeded(request: HttpRequest, username: str) -> None:
    """Clear the username's failures after it signed in (the client's stay)."""
    try:
        cache.delete(f"login-failures:username:{_digest(username.casefold())}")
    except RedisError as problem:
        _unavailable("clear", problem)
