"""The documented error answers: bad parameters name what is valid, broker faults (the
sandbox's knobs) become 503/502/504, and nothing unexpected leaks a traceback."""

from __future__ import annotations

import logging

import pytest

from clera.devstack.ports import free_port
from tests.api.test_access import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(link, client_for, shape_account, redis_client):
    return client_for(link(shape_account["diversified"]))


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("history?period=2Y", "1D, 1W, 1M, 3M, 6M, YTD, 1Y, MAX"),
        ("history?period=1M&start=2025-01-02&end=2025-02-01", "either period or start and end"),
        ("history?start=2025-01-02", "start and end go together"),
        ("history?start=yesterday&end=2025-02-01", "a date (2025-01-02) or a date-time"),
        ("history?start=2025-02-01&end=2025-01-02", "start must be before end"),
        ("orders?status=done", "open, closed, all"),
        ("orders?side=long", "buy, sell"),
        ("orders?direction=up", "desc, asc"),
        ("orders?limit=0", "from 1 to 500"),
        ("orders?limit=501", "from 1 to 500"),
        ("orders?symbols=AAPL,../x", "is not a symbol"),
        ("orders?cursor=not-a-cursor", "pass next_cursor from the previous page"),
        ("activities?type=fill,bonus", "fill, deposit, withdrawal, dividend, fee, other"),
        ("activities?page_size=101", "from 1 to 100"),
        ("activities?cursor=eyJhZnRlciI6IjEifQ", "pass next_cursor from the previous page"),
        ("funds?limit=abc", "from 1 to 100"),
    ],
)
def test_bad_parameters_are_400_naming_what_is_valid(client, query, names):
    body = assert_error(client.get(f"/api/portfolio/{query}"), 400, "invalid_parameter")

    assert names in body["error"]["message"]


def test_period_is_case_insensitive(client):
    assert client.get("/api/portfolio/history?period=ytd").json()["period"] == "YTD"


@pytest.mark.parametrize("path", ["/api/portfolio/summary", "/api/assets/AAPL"])
def test_alpaca_rate_limiting_is_503_with_retry_after(client, faults, path):
    faults(rate_limited=1.0, retry_after=7)

    response = client.get(path)

    body = assert_error(response, 503, "broker_rate_limited")
    assert response["Retry-After"] == "7"
    assert body["error"]["details"] == {"retry_after": 7}


def test_alpaca_server_error_is_502(client, faults):
    faults(server_error=1.0)

    assert_error(client.get("/api/portfolio/positions"), 502, "broker_unavailable")


def test_alpaca_too_slow_is_504(client, faults, settings):
    settings.ALPACA_TIMEOUT = 0.3
    faults(slow=1.0, slow_seconds=1.0)

    assert_error(client.get("/api/portfolio/orders"), 504, "broker_timeout")


def test_alpaca_unreachable_is_502(client, settings):
    settings.ALPACA_BROKER_URL = f"http://127.0.0.1:{free_port('127.0.0.1')}"

    assert_error(client.get("/api/portfolio/activities"), 502, "broker_unavailable")


def test_unknown_asset_is_404_and_nothing_is_invented(client):
    body = assert_error(client.get("/api/assets/ZZZZQ"), 404, "asset_not_found")

    assert "ZZZZQ" not in str(body["error"].get("details", ""))


def test_crypto_pair_with_its_slash(client):
    body = client.get("/api/assets/BTC/USD").json()

    assert (body["symbol"], body["asset_class"], body["sector"]) == (
        "BTC/USD",
        "crypto",
        "Cryptocurrency",
    )


def test_an_unexpected_failure_is_500_in_the_same_shape_and_logged(client, settings, caplog):
    settings.ASSET_CACHE_TTL = "a day"  # a misconfiguration: nothing in the API expects it
    with caplog.at_level(logging.ERROR, logger="portfolio.api.errors"):
        response = client.get("/api/portfolio/positions")

    body = assert_error(response, 500, "internal_error")
    assert "Traceback" not in response.content.decode() and "Error" not in body["error"]["message"]
    logged = [r for r in caplog.records if r.name == "portfolio.api.errors"]
    assert logged and logged[0].exc_info is not None


@pytest.fixture
def redis_gone(settings):
    """Every Redis the API uses points at a port nobody listens on."""
    url = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    return url


@pytest.mark.parametrize(
    "path",
    [
        "/api/portfolio/summary",
        "/api/portfolio/positions",
        "/api/portfolio/analytics",
        "/api/portfolio/history?period=1M",
        "/api/portfolio/history?period=1M&benchmark=SPY",
        "/api/portfolio/risk",
        "/api/portfolio/frontier",
        "/api/portfolio/performance?period=3M",
        "/api/assets/AAPL",
    ],
)
def test_reads_are_answered_from_the_broker_while_redis_is_gone(client, redis_gone, path):
    response = client.get(path)

    assert response.status_code == 200, response.content


def test_what_needs_redis_is_503_with_retry_after_while_it_is_gone(client, redis_gone):
    response = client.post("/api/realtime/ticket", {}, format="json")

    assert_error(response, 503, "realtime_unavailable")
    assert int(response["Retry-After"]) >= 1
