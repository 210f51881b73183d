"""Operations: the stats endpoint, the admin page, /metrics and /health's price freshness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from marketdata import book, moments
from marketdata.quotes import STATUS_KEY
from realtime import stats
from tests.realtime.conftest import now, position

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_processes(redis_client) -> Iterator[None]:
    """Counters flushed by two simulated daphne processes (each its own process id)."""
    stats.reset_process()
    stats.record_connect("7")
    stats.record_connect("7", resumed=True)
    stats.record_connect("8")
    stats.record_message_out(40)
    stats.record_batch(10, 200)
    stats.flush_sync()
    stats.reset_process()
    stats.record_connect("7")
    stats.record_connect("9")
    stats.record_connect("9")
    stats.record_disconnect("1000", "9", seconds=30)
    stats.record_limit_hit("per_user")
    stats.record_message_out(2)
    stats.flush_sync()
    yield
    stats.reset_process()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="x", is_staff=True)


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_the_stats_endpoint_is_staff_only(django_user_model, two_processes) -> None:
    anonymous = api().get("/api/admin/websocket-stats")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"]
    customer = django_user_model.objects.create_user("customer", password="x")
    refused = api(customer).get("/api/admin/websocket-stats")
    assert refused.status_code == 403
    assert set(refused.json()) == {"error"}
    assert "connectionsByUser" not in refused.content.decode()


def test_the_stats_sum_every_live_process(staff, two_processes, settings) -> None:
    settings.STATS_MIN_BATCH_EVENTS = 100
    body = api(staff).get("/api/admin/websocket-stats").json()

    assert body["processes"] == 2
    assert body["activeConnections"] == 5  # 3 + (3 - 1)
    assert body["connectionsByUser"] == {"7": 3, "8": 1, "9": 1}
    assert body["totalConnections"] == 6
    assert body["totalReconnects"] == 1
    assert body["totalDisconnects"] == 1
    assert body["totalMessagesDelivered"] == 42
    assert body["disconnectsByReason"] == {"1000": 1}
    assert body["limitHits"] == {"per_user": 1}
    assert body["performance"]["batchEfficiencyRaw"] == 0.95
    assert body["performance"]["batchEfficiency"] == "95.0%"
    assert body["performance"]["avgConnectionDurationSeconds"] == 30
    assert body["performance"]["disconnectRatePerMinute"] == "1.00"
    assert body["status"] == "degraded"  # 1 disconnect a minute over 5 sockets is 20 %
    assert body["enabled"] is True
    assert body["limits"]["maxConnectionsPerUser"] == settings.WS_MAX_CONNECTIONS_PER_USER
    assert body["uptime"]["seconds"] >= 0
    assert body["timestamp"].endswith("Z")


def test_a_process_that_stopped_reporting_drops_out(staff, two_processes, redis_client) -> None:
    oldest = redis_client.zrange(stats.PROCS, 0, 0)[0].decode()
    redis_client.zadd(stats.PROCS, {oldest: 0})  # last flushed in 1970
    body = api(staff).get("/api/admin/websocket-stats").json()
    assert body["processes"] == 1
    assert body["activeConnections"] == 2


@pytest.mark.parametrize(
    ("enabled", "active", "disconnects", "efficiency", "expected"),
    [
        (False, 10, 0, 0.9, "disabled"),
        (True, 0, 0, None, "offline"),
        (True, 100, 10, 0.9, "healthy"),
        (True, 100, 11, 0.9, "degraded"),
        (True, 100, 0, 0.49, "degraded"),
        (True, 100, 0, None, "healthy"),  # too few events to judge batching
    ],
)
def test_status_follows_the_runbooks_rules(enabled, active, disconnects, efficiency, expected):
    assert stats.status_of(enabled, active, disconnects, efficiency) == expected


def test_the_admin_page_shows_the_figures_to_staff_only(client, staff, two_processes) -> None:
    assert client.get("/admin/realtime/").status_code == 302  # to the login
    client.force_login(staff)
    page = client.get("/admin/realtime/")
    assert page.status_code == 200
    assert "Active connections" in page.content.decode()
    index = client.get("/admin/")
    assert "/admin/realtime/" in index.content.decode()


def test_metrics_expose_the_alert_rules_figures(client, staff, two_processes) -> None:
    client.force_login(staff)  # or the OPS_TOKEN bearer token: tests/security/test_ops_access.py
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = response.content.decode().splitlines()
    assert "websocket_active_connections 5" in lines
    assert "# TYPE websocket_active_connections gauge" in lines
    assert 'websocket_status{status="degraded"} 1' in lines
    assert 'websocket_limit_hits_total{kind="per_user"} 1' in lines
    assert "websocket_batch_efficiency 0.95" in lines
    assert not any("user" in line and '"7"' in line for line in lines)  # no per-user data


def test_health_degrades_but_stays_200_when_prices_go_stale(client, redis_client) -> None:
    book.store_collection({"acct-1": [position("AAPL", "1")]}, now())
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["quotes"]["status"] == "not_running"

    fresh = moments.stored(datetime.now(UTC))
    redis_client.hset(STATUS_KEY, mapping={"last_message_at": fresh, "feeds": "sip"})
    body = client.get("/health").json()
    assert (body["status"], body["quotes"]["status"], body["quotes"]["feeds"]) == (
        "ok",
        "ok",
        "sip",
    )

    stale = moments.stored(datetime.now(UTC) - timedelta(minutes=5))
    redis_client.hset(STATUS_KEY, "last_message_at", stale)
    body = client.get("/health").json()
    assert (body["status"], body["quotes"]["status"]) == ("degraded", "stale")


def test_market_data_figures_come_from_the_pipelines_keys(staff, redis_client) -> None:
    at = datetime.now(UTC) - timedelta(seconds=30)
    book.store_collection({"acct-1": [position("AAPL", "1"), position("MSFT", "2")]}, now())
    book.mark_collected(at, at, accounts=1, symbols=2, seconds=0.5)
    redis_client.hset("clera:price:AAPL", "trade_at", moments.stored(at))
    redis_client.hset(STATUS_KEY, mapping={"messages_per_second": "812.5"})
    market = api(staff).get("/api/admin/websocket-stats").json()["marketData"]
    assert market["trackedSymbols"] == 2
    assert market["quotesPerSecond"] == 812.5
    assert market["oldestPriceAgeSeconds"] == pytest.approx(30, abs=5)
    assert market["lastCollectionAt"] == moments.stored(at)
    assert market["calculator"] == {
        "running": False,
        "lastPassAgeSeconds": None,
        "partitions": [{}],
    }
