"""HTTPS-only as deployed behind a proxy: plain http is redirected to https, except the probes a
load balancer or Prometheus sends from the inside; the proxy's X-Forwarded-Proto marks a request
secure, and secure answers carry HSTS."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
def https_only(settings) -> None:
    """What HTTPS_ONLY (the default without DEBUG) and NUM_PROXIES=1 give."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_plain_http_is_sent_to_https(https_only) -> None:
    answer = Client().get("/accounts/login/")

    assert answer.status_code == 301
    assert answer["Location"] == "https://testserver/accounts/login/"


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/metrics", 401)])
def test_the_inside_probes_are_answered_over_plain_http(https_only, path, status) -> None:
    assert Client().get(path).status_code == status


def test_behind_the_proxy_https_is_served_with_hsts(https_only) -> None:
    answer = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")

    assert answer.status_code == 200
    assert answer["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
