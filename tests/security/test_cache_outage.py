"""With the cache (Redis) unreachable, throttles and login limits let requests through and
say so in the log, rather than answer 500: signing in never depends on Redis."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clera.devstack.ports import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def dead_cache(settings) -> None:
    """The cache pointed at a port nothing listens on, with short timeouts."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }


@pytest.fixture
def investor(django_user_model):
    return django_user_model.objects.create_user("outage-investor", password="pw-outage")


def test_the_token_endpoint_answers_without_the_cache(dead_cache, investor, caplog) -> None:
    client = APIClient()
    with caplog.at_level(logging.WARNING):
        wrong = client.post(
            "/api/auth/token", {"username": investor.username, "password": "x"}, format="json"
        )
        right = client.post(
            "/api/auth/token",
            {"username": investor.username, "password": "pw-outage"},
            format="json",
        )

    assert wrong.status_code == 401, wrong.content
    assert right.status_code == 200, right.content
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("throttle" in r.getMessage() for r in warned)
    assert any("login_limits" in r.getMessage() for r in warned)


def test_a_throttled_api_call_answers_without_the_cache(dead_cache, investor) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=investor).key}")

    assert client.delete("/api/auth/token").status_code == 204


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_sign_in_forms_work_without_the_cache(dead_cache, investor, path) -> None:
    investor.is_staff = True
    investor.save()
    client = Client()

    wrong = client.post(path, {"username": investor.username, "password": "x"})
    right = client.post(path, {"username": investor.username, "password": "pw-outage"})

    assert wrong.status_code == 200
    assert right.status_code == 302
