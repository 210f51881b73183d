"""Liveness/readiness endpoint for load balancers and `bin/run` smoke checks."""

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 1.0


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    # Read the URL per call so a settings override (or a restarted Redis) is honoured.
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _run(name: str, check: Callable[[], str]) -> str:
    try:
        return check()
    except Exception as exc:
        # Any failure means "unhealthy", never a 500. Class name only: exception messages
        # can carry hosts or passwords from connection URLs.
        logger.warning("health check %s failed: %s", name, type(exc).__name__)
        return f"error: {type(exc).__name__}"


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Report database and Redis reachability; 503 when either fails."""
    checks = {
        "database": _run("database", _check_database),
        "redis": _run("redis", _check_redis),
    }
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
