"""The /health endpoint against the real test database and Redis."""

import pytest
from django.test import override_settings

from clera.devstack.ports import free_port

pytestmark = pytest.mark.django_db


def test_health_ok_when_database_and_redis_answer(client, redis_client):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert body["quotes"]["status"] == "idle"  # nothing tracked yet: nothing to stream


def test_health_names_redis_when_it_is_down(client):
    closed_port = free_port()
    with override_settings(REDIS_URL=f"redis://:hunter2@127.0.0.1:{closed_port}/0"):
        response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "error: ConnectionError"},
    }
    assert "hunter2" not in response.content.decode()


def test_health_is_get_only(client):
    assert client.post("/health").status_code == 405
