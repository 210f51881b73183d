"""Liveness/readiness endpoint for load balancers and `bin/run` smoke checks.

200 while the database and Redis answer — ``"status": "ok"``, or ``"degraded"`` when the quote
consumer is not keeping prices fresh (live values then lag; REST and sockets still work, so a
load balancer must keep the process in rotation); 503 ``"unavailable"`` naming the failing check
when the database or Redis does not answer. The ``quotes`` part comes from
``realtime.stats.quote_freshness``.
"""

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from realtime.stats import quote_freshness

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 1.0


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    # Read the URL per call so a settings override (or a restarted Redis) is honoured.
    # Connected as every client is (TLS included), with shorter timeouts.
    options = {
        **settings.REDIS_OPTIONS,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    client = redis.Redis.from_url(settings.REDIS_URL, **options)
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


def _quotes() -> dict:
    try:
        return quote_freshness()
    except Exception as exc:
        logger.warning("health check quotes failed: %s", type(exc).__name__)
        return {"status": f"error: {type(exc).__name__}"}


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Report database and Redis reachability (503 when either fails) and price freshness."""
    checks = {
        "database": _run("database", _check_database),
        "redis": _run("redis", _check_redis),
    }
    healthy = all(result == "ok" for result in checks.values())
    if not healthy:
        return JsonResponse({"status": "unavailable", "checks": checks}, status=503)
    quotes = _quotes()
    status = "ok" if quotes["status"] in ("ok", "idle") else "degraded"
    return JsonResponse({"status": status, "checks": checks, "quotes": quotes})
