"""Operations views of the real-time service; the figures come from :mod:`realtime.stats`.

* ``GET /api/admin/websocket-stats`` — the seed-004 stats JSON, staff only (DRF: 401 without
  credentials, 403 for non-staff, errors in the API's one shape);
* ``GET /admin/realtime/`` — the same figures on a Django admin page (staff only, linked from
  the admin index);
* ``GET /metrics`` — Prometheus text exposition of the aggregate figures (no per-user data),
  named so seed 004's example alerts work as written (``websocket_active_connections``...);
  open with DEBUG, otherwise to staff or the OPS_TOKEN bearer token (portfolio/api/ops_access.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from redis.exceptions import RedisError
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.api import schema
from portfolio.api.ops_access import CHALLENGE, ops_allowed
from portfolio.errors import Unavailable

from . import stats

logger = logging.getLogger(__name__)

STATUSES = ("healthy", "degraded", "offline", "disabled")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatsUnavailable(Unavailable):
    code = "stats_unavailable"
    message = "Real-time statistics are unavailable: Redis does not answer."


def _stats() -> dict[str, Any]:
    try:
        return stats.websocket_stats()
    except RedisError as problem:
        logger.warning("stats.unavailable error=%s", type(problem).__name__)
        raise StatsUnavailable(retry_after=5) from problem


class WebsocketStatsView(APIView):
    """The real-time service's health and load, summed over every daphne process."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        operation_id="websocket_stats",
        summary="Real-time service statistics (staff only)",
        responses={
            200: dict,
            **schema.errors(
                401, 403, 429, 500, extra={503: "Redis does not answer: no figures to sum."}
            ),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(_stats())


def websocket_stats_admin(request: HttpRequest) -> TemplateResponse:
    """The admin page (wrapped in ``admin.site.admin_view`` by clera/urls.py: staff only)."""
    try:
        figures: dict[str, Any] | None = stats.websocket_stats()
    except RedisError:
        figures = None
    context = {
        **admin.site.each_context(request),
        "title": "Real-time service",
        "stats": figures,
        "stats_json": json.dumps(figures, indent=2) if figures else "",
    }
    return TemplateResponse(request, "realtime/admin_stats.html", context)


def _number(value: object) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool | int):
        return str(int(value))
    return repr(float(value))


def _series(figures: dict[str, Any]) -> list[tuple[str, str, str, object]]:
    """(name, type, help, value or {labels: value}) of every metric."""
    performance = figures["performance"]
    market = figures["marketData"]
    limits = figures["limits"]
    return [
        ("websocket_active_connections", "gauge",
         "Open portfolio and stream sockets, all daphne processes.", figures["activeConnections"]),
        ("websocket_processes", "gauge",
         "Daphne processes reporting socket counters.", figures["processes"]),
        ("websocket_status", "gauge", "1 for the service's current status (seed-004 rules).",
         {f'status="{s}"': int(figures["status"] == s) for s in STATUSES}),
        ("websocket_enabled", "gauge",
         "1 when ENABLE_REALTIME_PORTFOLIO is on.", int(figures["enabled"])),
        ("websocket_disconnect_rate_per_minute", "gauge",
         "Socket disconnects in the last minute.", float(performance["disconnectRatePerMinute"])),
        ("websocket_batch_efficiency", "gauge",
         "Share of events batching saved (0-1); NaN until enough were batched.",
         performance["batchEfficiencyRaw"]),
        ("websocket_avg_connection_duration_seconds", "gauge",
         "Mean life of closed sockets.", performance["avgConnectionDurationSeconds"]),
        ("websocket_uptime_seconds", "gauge",
         "Seconds since the oldest live daphne process started.", figures["uptime"]["seconds"]),
        ("websocket_max_connections_per_user", "gauge",
         "Socket limit per user.", limits["maxConnectionsPerUser"]),
        ("websocket_max_total_connections", "gauge",
         "Socket limit over all processes (NaN: none).", limits["maxTotalConnections"]),
        ("websocket_connections_total", "counter",
         "Sockets accepted.", figures["totalConnections"]),
        ("websocket_messages_delivered_total", "counter",
         "Frames sent.", figures["totalMessagesDelivered"]),
        ("websocket_events_emitted_total", "counter",
         "Account changes pushed for.", figures["totalEventsEmitted"]),
        ("websocket_pushes_total", "counter",
         "Portfolio updates published.", figures["totalPushes"]),
        ("websocket_disconnects_total", "counter",
         "Sockets closed.", figures["totalDisconnects"]),
        ("websocket_reconnects_total", "counter",
         "Sockets that resumed a sequence.", figures["totalReconnects"]),
        ("websocket_limit_hits_total", "counter", "Requests refused by a limit.",
         {f'kind="{k}"': n for k, n in figures["limitHits"].items()}),
        ("realtime_tracked_symbols", "gauge",
         "Symbols some account holds.", market["trackedSymbols"]),
        ("realtime_quotes_per_second", "gauge",
         "Market-data messages per second into the price cache.", market["quotesPerSecond"]),
        ("realtime_oldest_price_age_seconds", "gauge",
         "Age of the stalest streamed price.", market["oldestPriceAgeSeconds"]),
        ("realtime_last_collection_age_seconds", "gauge",
         "Seconds since the last symbol collection.", market["lastCollectionAgeSeconds"]),
        ("realtime_calculator_last_pass_age_seconds", "gauge",
         "Seconds since the calculator last reported.",
         market["calculator"]["lastPassAgeSeconds"]),
    ]  # fmt: skip


def _exposition(figures: dict[str, Any]) -> str:
    lines = []
    for name, kind, help_text, value in _series(figures):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        if isinstance(value, dict):
            lines += [f"{name}{{{labels}}} {_number(n)}" for labels, n in value.items()]
        else:
            lines.append(f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 503 (with a comment) when Redis does not answer; 401 without
    credentials, 403 for a user who is not staff."""
    if not ops_allowed(request):
        signed_in = request.user.is_authenticated
        refusal = HttpResponse(
            "# metrics are for staff, or a scraper with the operations bearer token\n",
            status=403 if signed_in else 401,
            content_type=METRICS_CONTENT_TYPE,
        )
        if not signed_in:
            refusal["WWW-Authenticate"] = CHALLENGE
        return refusal
    try:
        body = _exposition(stats.websocket_stats())
    except RedisError as problem:
        logger.warning("stats.metrics_unavailable error=%s", type(problem).__name__)
        return HttpResponse(
            "# stats unavailable: Redis does not answer\n",
            status=503,
            content_type=METRICS_CONTENT_TYPE,
        )
    return HttpResponse(body, content_type=METRICS_CONTENT_TYPE)
